using System.Buffers.Binary;
using DaxFs.Format;
using DaxFs.Pmem;
using JournalLog = DaxFs.Journal.Journal;

namespace DaxFs.Tests.Corruption;

/// <summary>Media -- reads and edits the on-media structures of an unmounted DaxFS device, the way a corruption (or
/// a hand-made repair case) changes them: superblocks, inode slots, per-inode logs, journal transactions. Every
/// writer can recompute the structure's checksum (so that the check behind it is reached) or leave it stale.</summary>
internal static class Media
{
    public const int SuperblockCrcOffset = 508;
    public const int InodeCrcOffset = 252;
    public const int JournalSlotSize = 64;

    /// <summary>Where the volume looks for the backup superblock: the last block of the device.</summary>
    public static long BackupSuperblockOffset(PmemDevice dev) => (dev.Length / Layout.BlockSize - 1) * Layout.BlockSize;

    /// <summary>The geometry mount would use (primary, else backup).</summary>
    public static Superblock Geometry(PmemDevice dev) => DaxVolume.ReadSuperblock(dev);

    public static byte[] Read(PmemDevice dev, long offset, int length) => dev.GetSpan(offset, length).ToArray();

    public static void Write(PmemDevice dev, long offset, ReadOnlySpan<byte> bytes) => dev.CopyPersist(offset, bytes);

    public static void WriteByte(PmemDevice dev, long offset, byte value) => dev.CopyPersist(offset, [value]);

    public static byte ReadByte(PmemDevice dev, long offset) => dev.GetSpan(offset, 1)[0];

    // ---- superblock -------------------------------------------------------------------------------------------

    /// <summary>Edits the 512 bytes of the superblock at <paramref name="at"/>.</summary>
    public static void PatchSuperblock(PmemDevice dev, long at, Action<byte[]> mutate, bool fixCrc)
    {
        byte[] s = Read(dev, at, Superblock.Size);
        mutate(s);
        if (fixCrc)
            FixSuperblockCrc(s);
        Write(dev, at, s);
    }

    public static void FixSuperblockCrc(byte[] s) =>
        BinaryPrimitives.WriteUInt32LittleEndian(s.AsSpan(SuperblockCrcOffset), Crc.Compute(s.AsSpan(0, SuperblockCrcOffset)));

    /// <summary>Writes <paramref name="value"/> little-endian into a field of <paramref name="width"/> bytes.</summary>
    public static void SetField(byte[] s, int offset, int width, long value)
    {
        switch (width)
        {
            case 4:
                BinaryPrimitives.WriteUInt32LittleEndian(s.AsSpan(offset), unchecked((uint)value));
                break;
            case 8:
                BinaryPrimitives.WriteInt64LittleEndian(s.AsSpan(offset), value);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(width), width, "fields are 4 or 8 bytes");
        }
    }

    // ---- inodes -----------------------------------------------------------------------------------------------

    public static InodeRecord ReadInode(PmemDevice dev, Superblock sb, ulong ino) =>
        InodeRecord.Decode(dev.GetSpan(sb.InodeOffset(ino), Layout.InodeSize), ino, sb.InodeOffset(ino), sb);

    /// <summary>Writes an inode record with a correct checksum (the core's own encoder).</summary>
    public static void WriteInode(PmemDevice dev, Superblock sb, ulong ino, in InodeRecord rec)
    {
        var b = new byte[Layout.InodeSize];
        rec.Encode(b, ino);
        Write(dev, sb.InodeOffset(ino), b);
    }

    /// <summary>Reads, changes and writes back an inode record (checksum recomputed by the encoder).</summary>
    public static void EditInode(PmemDevice dev, Superblock sb, ulong ino, Func<InodeRecord, InodeRecord> edit) =>
        WriteInode(dev, sb, ino, edit(ReadInode(dev, sb, ino)));

    /// <summary>Edits the raw 256 bytes of an inode slot; <paramref name="fixCrc"/> recomputes its checksum.</summary>
    public static void PatchInodeRaw(PmemDevice dev, Superblock sb, ulong ino, Action<byte[]> mutate, bool fixCrc)
    {
        byte[] raw = Read(dev, sb.InodeOffset(ino), Layout.InodeSize);
        mutate(raw);
        if (fixCrc)
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(InodeCrcOffset), Crc.Compute(raw.AsSpan(0, InodeCrcOffset), (uint)ino));
        Write(dev, sb.InodeOffset(ino), raw);
    }

    /// <summary>Inode numbers of the slots in use (mode != 0), whatever their checksum.</summary>
    public static List<ulong> UsedSlots(PmemDevice dev, Superblock sb)
    {
        var used = new List<ulong>();
        for (ulong ino = 1; ino <= (ulong)sb.InodeCount; ino++)
            if (BinaryPrimitives.ReadUInt32LittleEndian(dev.GetSpan(sb.InodeOffset(ino), 4)) != 0)
                used.Add(ino);
        return used;
    }

    // ---- per-inode logs ---------------------------------------------------------------------------------------

    /// <summary>One record of an inode's log as found on the media: in a log block, or (<paramref name="Inline"/>) in
    /// the inode's inline area, where the newest records live (then <paramref name="Offset"/> is the device offset
    /// inside the inode slot, and the inode's checksum covers the record).</summary>
    public sealed record LogRecordInfo(long Offset, int Length, long Index, int BlockIndex, LogRecord Record, bool Inline = false);

    /// <summary>Records in the inline area of <paramref name="r"/>.</summary>
    private static int InlineRecords(in InodeRecord r)
    {
        int n = 0;
        for (int p = 0; p < r.InlineLogUsed; n++)
            p += BinaryPrimitives.ReadUInt16LittleEndian(r.Inline.AsSpan(p));
        return n;
    }

    /// <summary>The blocks of an inode's log (head to tail) and all its records (block records, then the inline
    /// ones), decoded with the core's decoder. Throws if the log does not decode.</summary>
    public static (List<long> Blocks, List<LogRecordInfo> Records) ReadLog(PmemDevice dev, Superblock sb, ulong ino)
    {
        InodeRecord r = ReadInode(dev, sb, ino);
        long blockRecords = r.LogRecordCount - InlineRecords(r);
        var blocks = new List<long>();
        var firsts = new List<long>();
        long b = r.LogTailBlock;
        for (int k = r.LogBlockCount - 1; k >= 0 && b != 0; k--)
        {
            long off = b * Layout.BlockSize;
            (long prev, long first) = LogFormat.DecodeHeader(dev.GetSpan(off, LogFormat.HeaderSize), ino, r.Generation, r.LogEpoch, k, off);
            blocks.Add(b);
            firsts.Add(first);
            b = prev;
        }
        blocks.Reverse();
        firsts.Reverse();
        var records = new List<LogRecordInfo>();
        long index = 0;
        for (int k = 0; k < blocks.Count; k++)
        {
            long off = blocks[k] * Layout.BlockSize;
            bool tail = k == blocks.Count - 1;
            long until = tail ? blockRecords : firsts[k + 1];
            int limit = tail ? r.LogTailUsed : Layout.BlockSize;
            byte[] block = Read(dev, off, Layout.BlockSize);
            int pos = LogFormat.HeaderSize;
            while (index < until)
            {
                LogRecord? rec = LogFormat.Decode(block.AsSpan(pos, limit - pos), LogFormat.Seed(ino, r.Generation, r.LogEpoch, (ulong)index), out int len, out string? problem);
                if (rec is null)
                    throw new InvalidOperationException($"log record {index} of inode {ino} does not decode: {problem}");
                records.Add(new LogRecordInfo(off + pos, len, index, k, rec.Value));
                pos += len;
                index++;
            }
        }
        for (int p = 0; p < r.InlineLogUsed; index++)
        {
            LogRecord? rec = LogFormat.Decode(r.Inline.AsSpan(p, r.InlineLogUsed - p), LogFormat.Seed(ino, r.Generation, r.LogEpoch, (ulong)index), out int len, out string? problem);
            if (rec is null)
                throw new InvalidOperationException($"inline log record {index} of inode {ino} does not decode: {problem}");
            records.Add(new LogRecordInfo(sb.InodeOffset(ino) + InodeRecord.InlineOffset + p, len, index, -1, rec.Value, Inline: true));
            p += len;
        }
        return (blocks, records);
    }

    /// <summary>The records of an inode's log that lie in log blocks (not inline).</summary>
    public static List<LogRecordInfo> BlockRecords(PmemDevice dev, Superblock sb, ulong ino) =>
        ReadLog(dev, sb, ino).Records.Where(r => !r.Inline).ToList();

    /// <summary>Replaces a log record in place by <paramref name="replacement"/> (same encoded length), with a checksum
    /// that validates: the record's own checks are what fails, not its CRC (nor, inline, the inode's).</summary>
    public static void RewriteLogRecord(PmemDevice dev, Superblock sb, ulong ino, LogRecordInfo at, LogRecord replacement)
    {
        InodeRecord r = ReadInode(dev, sb, ino);
        var buf = new byte[Layout.BlockSize];
        int len = LogFormat.Encode(buf, replacement, LogFormat.Seed(ino, r.Generation, r.LogEpoch, (ulong)at.Index));
        if (len != at.Length)
            throw new ArgumentException($"replacement record is {len} bytes, the original {at.Length}", nameof(replacement));
        WriteLogBytes(dev, sb, ino, at, buf.AsSpan(0, len));
    }

    /// <summary>Writes raw bytes over a record (block or inline; inline, the inode's checksum is recomputed).</summary>
    public static void WriteLogBytes(PmemDevice dev, Superblock sb, ulong ino, LogRecordInfo at, ReadOnlySpan<byte> bytes)
    {
        if (!at.Inline)
        {
            Write(dev, at.Offset, bytes);
            return;
        }
        byte[] raw = bytes.ToArray();
        PatchInodeRaw(dev, sb, ino, s => raw.CopyTo(s, (int)(at.Offset - sb.InodeOffset(ino))), fixCrc: true);
    }

    /// <summary>The raw bytes of a record.</summary>
    public static byte[] ReadLogBytes(PmemDevice dev, LogRecordInfo at) => Read(dev, at.Offset, at.Length);

    /// <summary>Appends a record (valid checksum) to an inode's log and counts it in the inode, as the core would:
    /// into the inline area if it fits there, else -- with the inline records before it -- at the tail of the last
    /// log block (which must have room).</summary>
    public static void AppendLogRecord(PmemDevice dev, Superblock sb, ulong ino, LogRecord record)
    {
        InodeRecord r = ReadInode(dev, sb, ino);
        int len = LogFormat.Length(record.Type, record.Name?.Length ?? 0);
        var buf = new byte[len];
        LogFormat.Encode(buf, record, LogFormat.Seed(ino, r.Generation, r.LogEpoch, (ulong)r.LogRecordCount));
        if ((r.Flags & InodeRecord.FlagInlineTarget) == 0 && r.InlineLogUsed + len <= InodeRecord.InlineSize)
        {
            r.Inline ??= new byte[InodeRecord.InlineSize];
            buf.CopyTo(r.Inline, r.InlineLogUsed);
            r.InlineLogUsed += len;
        }
        else
        {
            int inl = r.InlineLogUsed;
            if (r.LogTailBlock == 0 || r.LogTailUsed + inl + len > Layout.BlockSize)
                throw new InvalidOperationException($"inode {ino} has no room for a {len}-byte record (inline {inl} bytes, tail block {r.LogTailBlock} at {r.LogTailUsed})");
            byte[] spill = [.. r.Inline.AsSpan(0, inl), .. buf];
            Write(dev, r.LogTailBlock * Layout.BlockSize + r.LogTailUsed, spill);
            r.LogTailUsed += spill.Length;
            r.InlineLogUsed = 0;
            if (r.Inline is not null)
                Array.Clear(r.Inline);
        }
        r.LogRecordCount++;
        WriteInode(dev, sb, ino, r);
    }

    /// <summary>Takes the newest record off an inode's log (uncounts it: the bytes stay).</summary>
    public static LogRecordInfo DropLastLogRecord(PmemDevice dev, Superblock sb, ulong ino)
    {
        LogRecordInfo last = ReadLog(dev, sb, ino).Records[^1];
        InodeRecord r = ReadInode(dev, sb, ino);
        if (last.Inline)
            r.InlineLogUsed -= last.Length;
        else
            r.LogTailUsed -= last.Length;
        r.LogRecordCount--;
        WriteInode(dev, sb, ino, r);
        return last;
    }

    /// <summary>Rewrites the 64-byte header of log block <paramref name="block"/> with the given fields (valid CRC).</summary>
    public static void RewriteLogHeader(PmemDevice dev, long block, ulong ino, uint generation, uint epoch, long prev, long firstRecord, int blockIndex)
    {
        var h = new byte[LogFormat.HeaderSize];
        LogFormat.EncodeHeader(h, ino, generation, epoch, prev, firstRecord, blockIndex);
        Write(dev, block * Layout.BlockSize, h);
    }

    // ---- journal ----------------------------------------------------------------------------------------------

    /// <summary>One journal header slot as found on the media.</summary>
    public sealed record JournalSlot(int Index, bool Valid, ulong SlotSeq, ulong NextSeq);

    public static JournalSlot[] JournalSlots(PmemDevice dev, Superblock sb)
    {
        var slots = new JournalSlot[2];
        for (int i = 0; i < 2; i++)
        {
            ReadOnlySpan<byte> s = dev.GetSpan(sb.JournalHeaderOffset + i * JournalSlotSize, JournalSlotSize);
            bool valid = BinaryPrimitives.ReadUInt64LittleEndian(s) == Layout.JournalMagic
                && BinaryPrimitives.ReadUInt32LittleEndian(s[60..]) == Crc.Compute(s[..60]);
            slots[i] = new JournalSlot(i, valid, BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s[16..]));
        }
        return slots;
    }

    /// <summary>The current slot: the valid one with the higher slot sequence (null: none valid).</summary>
    public static JournalSlot? CurrentSlot(PmemDevice dev, Superblock sb) =>
        JournalSlots(dev, sb).Where(s => s.Valid).OrderByDescending(s => s.SlotSeq).FirstOrDefault();

    /// <summary>One committed transaction in the journal log.</summary>
    public sealed record TxInfo(long Offset, int Length, ulong Seq, int RecordCount);

    /// <summary>The committed transactions a replay would apply, in order (header, sequence, length and CRC checks;
    /// record contents are not checked).</summary>
    public static List<TxInfo> Transactions(PmemDevice dev, Superblock sb)
    {
        var list = new List<TxInfo>();
        JournalSlot? cur = CurrentSlot(dev, sb);
        if (cur is null)
            return list;
        ulong expect = cur.NextSeq;
        long pos = 0;
        while (pos + JournalLog.TxHeaderSize + JournalLog.CommitSize <= sb.LogBytes)
        {
            long at = sb.LogOffset + pos;
            ReadOnlySpan<byte> h = dev.GetSpan(at, JournalLog.TxHeaderSize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(h) != Layout.TxMagic || BinaryPrimitives.ReadUInt64LittleEndian(h[8..]) != expect)
                break;
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
            if (length < JournalLog.TxHeaderSize + JournalLog.CommitSize || length > sb.LogBytes - pos || (length & 7) != 0)
                break;
            ReadOnlySpan<byte> tx = dev.GetSpan(at, (int)length);
            ReadOnlySpan<byte> commit = tx[^JournalLog.CommitSize..];
            if (BinaryPrimitives.ReadUInt64LittleEndian(commit) != expect || BinaryPrimitives.ReadUInt32LittleEndian(commit[8..]) != Layout.CommitMagic
                || BinaryPrimitives.ReadUInt32LittleEndian(commit[12..]) != Crc.Compute(tx[..^4]))
                break;
            list.Add(new TxInfo(at, (int)length, expect, (int)BinaryPrimitives.ReadUInt32LittleEndian(h[4..])));
            expect++;
            pos += (length + 63) & ~63L;
        }
        return list;
    }

    /// <summary>A transaction in the journal's format (header, records, commit with CRC).</summary>
    public static byte[] EncodeTransaction(IReadOnlyList<(long Offset, byte[] Data)> records, ulong seq)
    {
        int length = JournalLog.TxHeaderSize + JournalLog.CommitSize + records.Sum(r => JournalLog.RecordHeaderSize + JournalLog.Align8(r.Data.Length));
        var tx = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(tx, Layout.TxMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(tx.AsSpan(4), (uint)records.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(tx.AsSpan(8), seq);
        BinaryPrimitives.WriteUInt32LittleEndian(tx.AsSpan(16), (uint)length);
        int p = JournalLog.TxHeaderSize;
        foreach (var (off, data) in records)
        {
            BinaryPrimitives.WriteInt64LittleEndian(tx.AsSpan(p), off);
            BinaryPrimitives.WriteInt32LittleEndian(tx.AsSpan(p + 8), data.Length);
            data.CopyTo(tx.AsSpan(p + JournalLog.RecordHeaderSize));
            p += JournalLog.RecordHeaderSize + JournalLog.Align8(data.Length);
        }
        Span<byte> commit = tx.AsSpan(length - JournalLog.CommitSize);
        BinaryPrimitives.WriteUInt64LittleEndian(commit, seq);
        BinaryPrimitives.WriteUInt32LittleEndian(commit[8..], Layout.CommitMagic);
        FixTransactionCrc(tx);
        return tx;
    }

    /// <summary>Recomputes the commit CRC of a whole transaction image.</summary>
    public static void FixTransactionCrc(byte[] tx) =>
        BinaryPrimitives.WriteUInt32LittleEndian(tx.AsSpan(tx.Length - 4), Crc.Compute(tx.AsSpan(0, tx.Length - 4)));
}
