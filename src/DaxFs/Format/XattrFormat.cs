using System.Buffers.Binary;

namespace DaxFs.Format;

/// <summary>XattrFormat -- an inode's extended attributes, all in one 4 KiB block that is rewritten whole into a new
/// block on every change (copy on write: the inode's pointer switches in the same transaction).
/// <code>
/// header 32 B: magic "DXAX" u32, count u32, owner ino u64, used bytes u32, generation u32, reserved u32, crc32c u32 (of used bytes, crc as 0)
/// entry:       name length u8, reserved u8, value length u16, name, value
/// </code></summary>
internal static class XattrFormat
{
    public const int HeaderSize = 32;
    public const int MaxNameBytes = 255;

    /// <summary>Encoded bytes of a set of attributes.</summary>
    public static int Size(IEnumerable<(byte[] Name, byte[] Value)> set) => HeaderSize + set.Sum(e => 4 + e.Name.Length + e.Value.Length);

    /// <summary>Encodes a set into a block image.</summary>
    public static byte[] Encode(IReadOnlyList<(byte[] Name, byte[] Value)> set, ulong ino, uint generation)
    {
        var b = new byte[Layout.BlockSize];
        Span<byte> s = b;
        int p = HeaderSize;
        foreach (var (name, value) in set)
        {
            s[p] = (byte)name.Length;
            BinaryPrimitives.WriteUInt16LittleEndian(s[(p + 2)..], (ushort)value.Length);
            name.CopyTo(s[(p + 4)..]);
            value.CopyTo(s[(p + 4 + name.Length)..]);
            p += 4 + name.Length + value.Length;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(s, Layout.XattrMagic);
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], set.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(s[8..], ino);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], p);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], generation);
        BinaryPrimitives.WriteUInt32LittleEndian(s[28..], Crc.ComputeSkipping(s[..p], 28));
        return b;
    }

    /// <summary>Decodes and validates an xattr block of inode <paramref name="ino"/> read at <paramref name="offset"/>.</summary>
    public static List<(byte[] Name, byte[] Value)> Decode(ReadOnlySpan<byte> s, ulong ino, uint generation, long offset)
    {
        string what = $"xattr block of inode {ino}";
        if (BinaryPrimitives.ReadUInt32LittleEndian(s) != Layout.XattrMagic)
            throw new DaxFsCorruptedException(what, offset, "bad magic");
        int count = BinaryPrimitives.ReadInt32LittleEndian(s[4..]);
        int used = BinaryPrimitives.ReadInt32LittleEndian(s[16..]);
        if (used < HeaderSize || used > Layout.BlockSize)
            throw new DaxFsCorruptedException(what, offset, $"used length {used} is out of range");
        if (BinaryPrimitives.ReadUInt32LittleEndian(s[28..]) != Crc.ComputeSkipping(s[..used], 28))
            throw new DaxFsCorruptedException(what, offset, "checksum mismatch");
        if (BinaryPrimitives.ReadUInt64LittleEndian(s[8..]) != ino || BinaryPrimitives.ReadUInt32LittleEndian(s[20..]) != generation)
            throw new DaxFsCorruptedException(what, offset, "belongs to another inode");
        if (count < 0 || count > (used - HeaderSize) / 5)
            throw new DaxFsCorruptedException(what, offset, $"count {count} is out of range");
        var set = new List<(byte[], byte[])>(count);
        int p = HeaderSize;
        for (int i = 0; i < count; i++)
        {
            if (p + 4 > used)
                throw new DaxFsCorruptedException(what, offset, $"entry {i} runs past the used length");
            int nl = s[p];
            int vl = BinaryPrimitives.ReadUInt16LittleEndian(s[(p + 2)..]);
            if (nl == 0 || p + 4 + nl + vl > used)
                throw new DaxFsCorruptedException(what, offset, $"entry {i} has bad lengths");
            set.Add((s.Slice(p + 4, nl).ToArray(), s.Slice(p + 4 + nl, vl).ToArray()));
            p += 4 + nl + vl;
        }
        if (p != used)
            throw new DaxFsCorruptedException(what, offset, "entries do not fill the used length");
        return set;
    }
}
