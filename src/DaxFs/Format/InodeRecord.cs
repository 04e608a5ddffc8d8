using System.Buffers.Binary;

namespace DaxFs.Format;

/// <summary>InodeRecord -- one 256-byte inode slot as it lies on the media. A slot whose mode is 0 is free.
/// <code>
///   0 mode u32     4 nlink u32     8 uid u32     12 gid u32     16 size u64
///  24 atime i64   32 mtime i64    40 ctime i64  48 btime i64   56 generation u32   60 flags u32
///  64 blocks u64  72 rdev u64     80 xattr block u64            88 log tail block u64
///  96 log tail used u32   100 log block count u32   104 log record count u64   112 next dirent id u64
/// 120 parent u64 (directories)    128 inline area (120 bytes: a short symlink target)   248 log epoch u32
/// 252 crc32c u32 of bytes 0..251 seeded with the inode number
/// </code></summary>
internal struct InodeRecord
{
    public const int InlineOffset = 128;
    public const int InlineSize = 120;
    private const int CrcOffset = 252;

    /// <summary>Flag: the symlink target is in the inline area.</summary>
    public const uint FlagInlineTarget = 1;

    /// <summary>Otherwise the inline area holds the newest records of the inode's log (the log's tail, journaled
    /// with the inode itself, so most appends cost no separate store); bits 16..23 of the flags say how many bytes.</summary>
    public int InlineLogUsed
    {
        readonly get => (int)((Flags >> 16) & 0xFF);
        set => Flags = (Flags & ~0x00FF_0000u) | ((uint)value << 16);
    }

    public uint Mode;
    public uint Nlink;
    public uint Uid;
    public uint Gid;
    public long Size;
    public long AtimeNs;
    public long MtimeNs;
    public long CtimeNs;
    public long BtimeNs;
    public uint Generation;
    public uint Flags;
    public long Blocks;
    public ulong Rdev;
    public long XattrBlock;
    public long LogTailBlock;
    public int LogTailUsed;
    public int LogBlockCount;
    public long LogRecordCount;
    public ulong NextDirentId;
    public ulong Parent;
    public uint LogEpoch;
    public byte[]? Inline;

    /// <summary>Whether the slot holds an inode.</summary>
    public readonly bool InUse => Mode != 0;

    /// <summary>Writes the 256 bytes of this inode (with its checksum) for inode number <paramref name="ino"/>.</summary>
    public readonly void Encode(Span<byte> s, ulong ino)
    {
        s[..Layout.InodeSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(s, Mode);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], Nlink);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], Gid);
        BinaryPrimitives.WriteInt64LittleEndian(s[16..], Size);
        BinaryPrimitives.WriteInt64LittleEndian(s[24..], AtimeNs);
        BinaryPrimitives.WriteInt64LittleEndian(s[32..], MtimeNs);
        BinaryPrimitives.WriteInt64LittleEndian(s[40..], CtimeNs);
        BinaryPrimitives.WriteInt64LittleEndian(s[48..], BtimeNs);
        BinaryPrimitives.WriteUInt32LittleEndian(s[56..], Generation);
        BinaryPrimitives.WriteUInt32LittleEndian(s[60..], Flags);
        BinaryPrimitives.WriteInt64LittleEndian(s[64..], Blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(s[72..], Rdev);
        BinaryPrimitives.WriteInt64LittleEndian(s[80..], XattrBlock);
        BinaryPrimitives.WriteInt64LittleEndian(s[88..], LogTailBlock);
        BinaryPrimitives.WriteInt32LittleEndian(s[96..], LogTailUsed);
        BinaryPrimitives.WriteInt32LittleEndian(s[100..], LogBlockCount);
        BinaryPrimitives.WriteInt64LittleEndian(s[104..], LogRecordCount);
        BinaryPrimitives.WriteUInt64LittleEndian(s[112..], NextDirentId);
        BinaryPrimitives.WriteUInt64LittleEndian(s[120..], Parent);
        BinaryPrimitives.WriteUInt32LittleEndian(s[248..], LogEpoch);
        if (Inline is { } inl)
            inl.AsSpan(0, Math.Min(inl.Length, InlineSize)).CopyTo(s[InlineOffset..]);
        if (Mode != 0)
            BinaryPrimitives.WriteUInt32LittleEndian(s[CrcOffset..], Crc.Compute(s[..CrcOffset], (uint)ino));
    }

    /// <summary>Parses and validates the slot of inode <paramref name="ino"/> read at <paramref name="offset"/>.
    /// A free slot (all of mode 0) needs no checksum; any other slot must pass every check.</summary>
    public static InodeRecord Decode(ReadOnlySpan<byte> s, ulong ino, long offset, Superblock sb)
    {
        var r = new InodeRecord { Mode = BinaryPrimitives.ReadUInt32LittleEndian(s) };
        if (r.Mode == 0)
            return r;
        string what = $"inode {ino}";
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(s[CrcOffset..]);
        uint want = Crc.Compute(s[..CrcOffset], (uint)ino);
        if (crc != want)
            throw new DaxFsCorruptedException(what, offset, $"checksum 0x{crc:x8} does not match its contents (0x{want:x8})");
        r.Nlink = BinaryPrimitives.ReadUInt32LittleEndian(s[4..]);
        r.Uid = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        r.Gid = BinaryPrimitives.ReadUInt32LittleEndian(s[12..]);
        r.Size = BinaryPrimitives.ReadInt64LittleEndian(s[16..]);
        r.AtimeNs = BinaryPrimitives.ReadInt64LittleEndian(s[24..]);
        r.MtimeNs = BinaryPrimitives.ReadInt64LittleEndian(s[32..]);
        r.CtimeNs = BinaryPrimitives.ReadInt64LittleEndian(s[40..]);
        r.BtimeNs = BinaryPrimitives.ReadInt64LittleEndian(s[48..]);
        r.Generation = BinaryPrimitives.ReadUInt32LittleEndian(s[56..]);
        r.Flags = BinaryPrimitives.ReadUInt32LittleEndian(s[60..]);
        r.Blocks = BinaryPrimitives.ReadInt64LittleEndian(s[64..]);
        r.Rdev = BinaryPrimitives.ReadUInt64LittleEndian(s[72..]);
        r.XattrBlock = BinaryPrimitives.ReadInt64LittleEndian(s[80..]);
        r.LogTailBlock = BinaryPrimitives.ReadInt64LittleEndian(s[88..]);
        r.LogTailUsed = BinaryPrimitives.ReadInt32LittleEndian(s[96..]);
        r.LogBlockCount = BinaryPrimitives.ReadInt32LittleEndian(s[100..]);
        r.LogRecordCount = BinaryPrimitives.ReadInt64LittleEndian(s[104..]);
        r.NextDirentId = BinaryPrimitives.ReadUInt64LittleEndian(s[112..]);
        r.Parent = BinaryPrimitives.ReadUInt64LittleEndian(s[120..]);
        r.LogEpoch = BinaryPrimitives.ReadUInt32LittleEndian(s[248..]);
        r.Inline = s.Slice(InlineOffset, InlineSize).ToArray();

        uint type = r.Mode & FileModes.TypeMask;
        if (!FileModes.IsValidType(type))
            throw new DaxFsCorruptedException(what, offset, $"mode 0o{Convert.ToString(r.Mode, 8)} has no valid file type");
        if (r.Size < 0 || r.Size > Layout.MaxFileBytes)
            throw new DaxFsCorruptedException(what, offset, $"size {r.Size} is out of range");
        if (r.Blocks < 0 || r.Blocks > sb.BlockCount)
            throw new DaxFsCorruptedException(what, offset, $"block count {r.Blocks} is out of range");
        if (r.XattrBlock != 0 && !InData(r.XattrBlock, sb))
            throw new DaxFsCorruptedException(what, offset, $"xattr block {r.XattrBlock} is outside the data area");
        if (r.InlineLogUsed > InlineSize || (r.InlineLogUsed & 7) != 0 || (r.InlineLogUsed != 0 && (r.Flags & FlagInlineTarget) != 0))
            throw new DaxFsCorruptedException(what, offset, $"inline log length {r.InlineLogUsed} is invalid");
        if (r.LogTailBlock == 0)
        {
            if (r.LogBlockCount != 0 || r.LogRecordCount < 0 || r.LogRecordCount > r.InlineLogUsed / 16)
                throw new DaxFsCorruptedException(what, offset, "has log records but no log block");
        }
        else
        {
            if (!InData(r.LogTailBlock, sb))
                throw new DaxFsCorruptedException(what, offset, $"log tail block {r.LogTailBlock} is outside the data area");
            if (r.LogTailUsed < Layout.LogBlockHeaderSize || r.LogTailUsed > Layout.BlockSize || (r.LogTailUsed & 7) != 0)
                throw new DaxFsCorruptedException(what, offset, $"log tail use {r.LogTailUsed} is out of range");
            if (r.LogBlockCount < 1 || r.LogBlockCount > sb.DataEnd - sb.DataStart)
                throw new DaxFsCorruptedException(what, offset, $"log block count {r.LogBlockCount} is out of range");
            if (r.LogRecordCount < 0 || r.LogRecordCount > (long)r.LogBlockCount * (Layout.BlockSize / 8) + r.InlineLogUsed / 16)
                throw new DaxFsCorruptedException(what, offset, $"log record count {r.LogRecordCount} is out of range");
        }
        if (type == FileModes.Directory && (r.Parent < 1 || r.Parent > (ulong)sb.InodeCount))
            throw new DaxFsCorruptedException(what, offset, $"parent inode {r.Parent} is out of range");
        if (type == FileModes.Symlink && (r.Size < 1 || r.Size > Layout.MaxSymlinkBytes))
            throw new DaxFsCorruptedException(what, offset, $"symbolic link target of {r.Size} bytes is out of range");
        if ((r.Flags & FlagInlineTarget) != 0 && (type != FileModes.Symlink || r.Size > InlineSize || r.Size < 1))
            throw new DaxFsCorruptedException(what, offset, $"inline symlink target of {r.Size} bytes is invalid");
        return r;
    }

    private static bool InData(long block, Superblock sb) => block >= sb.DataStart && block < sb.DataEnd;
}

/// <summary>FileModes -- the S_IF* file types and permission bits (Linux values).</summary>
public static class FileModes
{
    /// <summary>Mask of the file type bits.</summary>
    public const uint TypeMask = 0xF000;
    /// <summary>Socket.</summary>
    public const uint Socket = 0xC000;
    /// <summary>Symbolic link.</summary>
    public const uint Symlink = 0xA000;
    /// <summary>Regular file.</summary>
    public const uint Regular = 0x8000;
    /// <summary>Block device.</summary>
    public const uint BlockDevice = 0x6000;
    /// <summary>Directory.</summary>
    public const uint Directory = 0x4000;
    /// <summary>Character device.</summary>
    public const uint CharDevice = 0x2000;
    /// <summary>FIFO.</summary>
    public const uint Fifo = 0x1000;
    /// <summary>Permission and set-id/sticky bits.</summary>
    public const uint PermissionMask = 0xFFF;

    /// <summary>Whether <paramref name="type"/> (already masked) is a file type.</summary>
    public static bool IsValidType(uint type) => type is Socket or Symlink or Regular or BlockDevice or Directory or CharDevice or Fifo;

    /// <summary>The d_type (DT_*) value for a mode, as readdir reports it.</summary>
    public static byte DirentType(uint mode) => (byte)((mode & TypeMask) >> 12);
}
