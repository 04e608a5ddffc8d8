using System.Buffers.Binary;

namespace DaxFs.Format;

/// <summary>Record types of a per-inode log.</summary>
internal enum LogRecordType : byte
{
    /// <summary>Map [file block, +count) to device blocks (flag 1: unwritten).</summary>
    ExtentMap = 1,
    /// <summary>Unmap [file block, +count).</summary>
    ExtentUnmap = 2,
    /// <summary>Mark [file block, +count) written.</summary>
    ExtentConvert = 3,
    /// <summary>Mark [file block, +count) unwritten.</summary>
    ExtentUnwrite = 4,
    /// <summary>Directory entry added: ino, entry id, type, name.</summary>
    DirAdd = 5,
    /// <summary>Directory entry removed: entry id.</summary>
    DirRemove = 6,
}

/// <summary>One parsed log record.</summary>
internal readonly record struct LogRecord(LogRecordType Type, byte Flags, ulong A, ulong B, ulong C, byte[]? Name);

/// <summary>LogFormat -- the per-inode logs that hold a file's block map and a directory's entries on the media.
/// A log is a chain of 4 KiB blocks walked backwards from the inode's tail block; each block starts with a 64-byte
/// header, then 8-byte-aligned records. Blocks and records are only ever appended: a committed byte of a log is
/// never rewritten, so logs need no journaling (their appends are ordered before the commit of the inode that
/// counts them) and a freed log block can be reused at once without a revoke.
/// <code>
/// block header: magic "DXLG" u32, epoch u32, owner ino u64, prev block u64, first record index u64,
///               block index u32, generation u32, reserved, crc32c u32 at 60
/// record:       length u16, type u8, flags u8, crc32c u32 (seeded with owner, generation, epoch and index), payload
///   ExtentMap     file block u64, device block u64, count u64                    (32 bytes)
///   ExtentUnmap / ExtentConvert / ExtentUnwrite:  file block u64, count u64      (24 bytes)
///   DirAdd        ino u64, entry id u64, name length u16, type u8, 5 pad, name   (32 + name, padded to 8)
///   DirRemove     entry id u64                                                   (16 bytes)
/// </code>
/// A compaction rewrites the live state into a new chain with the next epoch; the epoch in every header and record
/// checksum makes a stale block or record from another life of the same block fail validation.</summary>
internal static class LogFormat
{
    public const int HeaderSize = Layout.LogBlockHeaderSize;
    public const int RecordHeader = 8;
    public const int MaxRecord = 32 + 256;

    /// <summary>The seed of a record's checksum.</summary>
    public static uint Seed(ulong ino, uint generation, uint epoch, ulong index) =>
        Crc.Seed(ino ^ ((ulong)generation << 32), index ^ ((ulong)epoch << 44));

    /// <summary>Encoded length of a record.</summary>
    public static int Length(LogRecordType type, int nameLength = 0) => type switch
    {
        LogRecordType.ExtentMap => 32,
        LogRecordType.DirAdd => 32 + ((nameLength + 7) & ~7),
        LogRecordType.DirRemove => 16,
        _ => 24,
    };

    /// <summary>Encodes a record (checksum included) into <paramref name="dst"/>; returns its length.</summary>
    public static int Encode(Span<byte> dst, in LogRecord r, uint seed)
    {
        int len = Length(r.Type, r.Name?.Length ?? 0);
        dst[..len].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)len);
        dst[2] = (byte)r.Type;
        dst[3] = r.Flags;
        switch (r.Type)
        {
            case LogRecordType.ExtentMap:
                BinaryPrimitives.WriteUInt64LittleEndian(dst[8..], r.A);
                BinaryPrimitives.WriteUInt64LittleEndian(dst[16..], r.B);
                BinaryPrimitives.WriteUInt64LittleEndian(dst[24..], r.C);
                break;
            case LogRecordType.DirAdd:
                BinaryPrimitives.WriteUInt64LittleEndian(dst[8..], r.A);
                BinaryPrimitives.WriteUInt64LittleEndian(dst[16..], r.B);
                BinaryPrimitives.WriteUInt16LittleEndian(dst[24..], (ushort)r.Name!.Length);
                dst[26] = (byte)r.C;
                r.Name.CopyTo(dst[32..]);
                break;
            case LogRecordType.DirRemove:
                BinaryPrimitives.WriteUInt64LittleEndian(dst[8..], r.A);
                break;
            default:
                BinaryPrimitives.WriteUInt64LittleEndian(dst[8..], r.A);
                BinaryPrimitives.WriteUInt64LittleEndian(dst[16..], r.B);
                break;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(dst[4..], Crc.ComputeSkipping(dst[..len], 4, seed));
        return len;
    }

    /// <summary>Decodes the record at the start of <paramref name="src"/>; null with a reason if it is not a valid
    /// record for this seed.</summary>
    public static LogRecord? Decode(ReadOnlySpan<byte> src, uint seed, out int length, out string? problem)
    {
        length = 0;
        problem = null;
        if (src.Length < RecordHeader)
        {
            problem = "truncated record";
            return null;
        }
        int len = BinaryPrimitives.ReadUInt16LittleEndian(src);
        var type = (LogRecordType)src[2];
        if (len < 16 || (len & 7) != 0 || len > src.Length || len > MaxRecord)
        {
            problem = $"record length {len} is invalid";
            return null;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(src[4..]) != Crc.ComputeSkipping(src[..len], 4, seed))
        {
            problem = "record checksum mismatch";
            return null;
        }
        LogRecord r;
        switch (type)
        {
            case LogRecordType.ExtentMap when len == 32:
                r = new LogRecord(type, src[3], BinaryPrimitives.ReadUInt64LittleEndian(src[8..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(src[16..]), BinaryPrimitives.ReadUInt64LittleEndian(src[24..]), null);
                break;
            case LogRecordType.ExtentUnmap or LogRecordType.ExtentConvert or LogRecordType.ExtentUnwrite when len == 24:
                r = new LogRecord(type, src[3], BinaryPrimitives.ReadUInt64LittleEndian(src[8..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(src[16..]), 0, null);
                break;
            case LogRecordType.DirAdd when len >= 40:
                int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(src[24..]);
                if (nameLen < 1 || nameLen > Layout.MaxNameBytes || Length(type, nameLen) != len)
                {
                    problem = $"directory entry name length {nameLen} is invalid";
                    return null;
                }
                r = new LogRecord(type, src[3], BinaryPrimitives.ReadUInt64LittleEndian(src[8..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(src[16..]), src[26], src.Slice(32, nameLen).ToArray());
                break;
            case LogRecordType.DirRemove when len == 16:
                r = new LogRecord(type, src[3], BinaryPrimitives.ReadUInt64LittleEndian(src[8..]), 0, 0, null);
                break;
            default:
                problem = $"record type {(int)type} with length {len} is unknown";
                return null;
        }
        length = len;
        return r;
    }

    /// <summary>Encodes a log block header.</summary>
    public static void EncodeHeader(Span<byte> dst, ulong ino, uint generation, uint epoch, long prev, long firstRecord, int blockIndex)
    {
        dst[..HeaderSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(dst, Layout.LogMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[4..], epoch);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[8..], ino);
        BinaryPrimitives.WriteInt64LittleEndian(dst[16..], prev);
        BinaryPrimitives.WriteInt64LittleEndian(dst[24..], firstRecord);
        BinaryPrimitives.WriteInt32LittleEndian(dst[32..], blockIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[36..], generation);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[60..], Crc.Compute(dst[..60]));
    }

    /// <summary>A validated log block header: previous block and first record index.</summary>
    public static (long Prev, long FirstRecord) DecodeHeader(ReadOnlySpan<byte> src, ulong ino, uint generation, uint epoch,
        int blockIndex, long offset)
    {
        string what = $"log block {blockIndex} of inode {ino}";
        if (BinaryPrimitives.ReadUInt32LittleEndian(src) != Layout.LogMagic)
            throw new DaxFsCorruptedException(what, offset, "bad magic");
        if (BinaryPrimitives.ReadUInt32LittleEndian(src[60..]) != Crc.Compute(src[..60]))
            throw new DaxFsCorruptedException(what, offset, "header checksum mismatch");
        if (BinaryPrimitives.ReadUInt64LittleEndian(src[8..]) != ino || BinaryPrimitives.ReadUInt32LittleEndian(src[4..]) != epoch
            || BinaryPrimitives.ReadUInt32LittleEndian(src[36..]) != generation)
            throw new DaxFsCorruptedException(what, offset, "belongs to another inode, generation or epoch");
        if (BinaryPrimitives.ReadInt32LittleEndian(src[32..]) != blockIndex)
            throw new DaxFsCorruptedException(what, offset, $"block index {BinaryPrimitives.ReadInt32LittleEndian(src[32..])} is out of order");
        return (BinaryPrimitives.ReadInt64LittleEndian(src[16..]), BinaryPrimitives.ReadInt64LittleEndian(src[24..]));
    }
}
