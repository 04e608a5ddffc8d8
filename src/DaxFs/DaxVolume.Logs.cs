using DaxFs.Format;
using DaxFs.Iomap;
using DaxFs.Journal;
using DaxFs.Namespace;

namespace DaxFs;

public sealed partial class DaxVolume
{
    private const int LogPayload = Layout.BlockSize - LogFormat.HeaderSize;


    /// <summary>Worst-case new log blocks to append records totalling <paramref name="bytes"/> (each at most
    /// <see cref="LogFormat.MaxRecord"/>), whatever the tail block holds.</summary>
    internal static long LogBlocksFor(long bytes) => bytes <= 0 ? 0 : (bytes + LogPayload - LogFormat.MaxRecord - 1) / (LogPayload - LogFormat.MaxRecord) + 1;

    /// <summary>Appends records to an inode's log. A record that fits goes into the inode's inline area (journaled
    /// with the inode image: no store of its own); otherwise the inline records and it move to the tail block's free
    /// space, or to a new block chained behind it (allocated from the transaction's reservation), as ordered stores.
    /// Committed log bytes are never touched.</summary>
    internal void AppendLog(Tx tx, Inode inode, ReadOnlySpan<LogRecord> records)
    {
        ref InodeRecord r = ref inode.Rec;
        bool inlineOk = (r.Flags & InodeRecord.FlagInlineTarget) == 0;
        Span<byte> one = stackalloc byte[LogFormat.MaxRecord];
        foreach (ref readonly LogRecord rec in records)
        {
            if (inlineOk && TryExtendInline(ref r, inode.Ino, rec))
                continue;
            int len = LogFormat.Length(rec.Type, rec.Name?.Length ?? 0);
            uint seed = LogFormat.Seed(inode.Ino, r.Generation, r.LogEpoch, (ulong)r.LogRecordCount);
            if (inlineOk && r.InlineLogUsed + len <= InodeRecord.InlineSize)
            {
                r.Inline ??= new byte[InodeRecord.InlineSize];
                LogFormat.Encode(r.Inline.AsSpan(r.InlineLogUsed), rec, seed);
                r.InlineLogUsed += len;
                r.LogRecordCount++;
                continue;
            }
            LogFormat.Encode(one, rec, seed);
            r.LogRecordCount++;
            // Older records first: the inline ones, then this one, all into blocks.
            int inlineBytes = r.InlineLogUsed;
            r.InlineLogUsed = 0;
            StoreInBlocks(tx, inode, r.Inline.AsSpan(0, inlineBytes), one[..len]);
            if (r.Inline is not null)
                Array.Clear(r.Inline);
        }
        tx.Touch(inode);
    }

    /// <summary>A map record that continues the log's last record -- an inline map record whose file and device
    /// blocks it extends, in the same state -- replaces it with the longer extent instead of adding a record: the
    /// inline area is part of the inode image, journaled whole, so the replacement is atomic, and replaying the
    /// longer record leaves the map the two would. Appends and sequential copy-on-write then keep a file's log at
    /// one record instead of one per call.</summary>
    private static bool TryExtendInline(ref InodeRecord r, ulong ino, in LogRecord rec)
    {
        if (rec.Type != LogRecordType.ExtentMap || r.InlineLogUsed == 0 || r.Inline is null)
            return false;
        // The last inline record (inline records are the newest of the log, back to back).
        int at = 0, len = 0;
        while (at + len < r.InlineLogUsed)
        {
            at += len;
            len = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(r.Inline.AsSpan(at));
            if (len == 0)
                return false;
        }
        Span<byte> last = r.Inline.AsSpan(at, len);
        if (len != LogFormat.Length(LogRecordType.ExtentMap) || (LogRecordType)last[2] != LogRecordType.ExtentMap || last[3] != rec.Flags)
            return false;
        ulong fileBlock = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(last[8..]);
        ulong devBlock = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(last[16..]);
        ulong count = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(last[24..]);
        if (fileBlock + count != rec.A || devBlock + count != rec.B)
            return false;
        uint seed = LogFormat.Seed(ino, r.Generation, r.LogEpoch, (ulong)(r.LogRecordCount - 1));
        LogFormat.Encode(last, new LogRecord(LogRecordType.ExtentMap, rec.Flags, fileBlock, devBlock, count + rec.C, null), seed);
        return true;
    }

    /// <summary>Stores encoded records (already numbered) at the end of the inode's block chain, chaining new blocks
    /// as needed; consecutive records for one block are stored together.</summary>
    private void StoreInBlocks(Tx tx, Inode inode, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        ref InodeRecord r = ref inode.Rec;
        int total = CountRecords(first) + CountRecords(second);
        long index = r.LogRecordCount - total; // index of the first record being stored
        Span<byte> buf = tx.LogBuffer;
        int bufStart = 0, bufLen = 0;
        foreach (bool part in stackalloc[] { false, true })
        {
            ReadOnlySpan<byte> src = part ? second : first;
            while (!src.IsEmpty)
            {
                int len = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(src);
                if (r.LogTailBlock == 0 || r.LogTailUsed + len > Layout.BlockSize)
                {
                    if (bufLen > 0)
                        OrderedWrite(tx, r.LogTailBlock * Layout.BlockSize + bufStart, buf[..bufLen]);
                    long hint = r.LogTailBlock != 0 ? r.LogTailBlock + 1 : -1;
                    long block = tx.AllocateOne(hint);
                    LogFormat.EncodeHeader(buf, inode.Ino, r.Generation, r.LogEpoch, r.LogTailBlock, index, r.LogBlockCount);
                    bufStart = 0;
                    bufLen = LogFormat.HeaderSize;
                    inode.LogBlocks.Add(block);
                    r.LogTailBlock = block;
                    r.LogTailUsed = LogFormat.HeaderSize;
                    r.LogBlockCount++;
                    r.Blocks++;
                }
                else if (bufLen == 0)
                {
                    bufStart = r.LogTailUsed;
                }
                src[..len].CopyTo(buf[bufLen..]);
                bufLen += len;
                r.LogTailUsed += len;
                index++;
                src = src[len..];
            }
        }
        if (bufLen > 0)
            OrderedWrite(tx, r.LogTailBlock * Layout.BlockSize + bufStart, buf[..bufLen]);
    }

    /// <summary>Records in a run of encoded records (each starts with its length).</summary>
    private static int CountRecords(ReadOnlySpan<byte> s)
    {
        int n = 0;
        while (!s.IsEmpty)
        {
            s = s[System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(s)..];
            n++;
        }
        return n;
    }

    /// <summary>Appends one record.</summary>
    internal void AppendLog(Tx tx, Inode inode, in LogRecord record) => AppendLog(tx, inode, new ReadOnlySpan<LogRecord>(in record));

    /// <summary>Rewrites a log whose dead records outnumber its live ones four to one into a fresh chain of the next
    /// epoch (if the space is there; compaction is never a reason to fail a call). The old chain is freed after the
    /// commit. Four, not one: a compaction rewrites the live records, so the calls between two compactions pay for
    /// live / dead rewritten records each -- a shrinking directory (rm -r, the unlink benchmark) rewrote two records
    /// per unlink at one to one, half a record at four to one -- for logs at most five times their live size.</summary>
    internal void MaybeCompact(Tx tx, Inode inode)
    {
        ref InodeRecord r = ref inode.Rec;
        long live = inode.LiveRecords;
        if (r.LogRecordCount < 64 || r.LogRecordCount - live <= 4 * live + 32)
            return;
        CompactLog(tx, inode, live);
    }

    /// <summary>Rewrites the log into a fresh chain of the next epoch holding only the live state (if the space
    /// is there); the old chain is freed after the commit.</summary>
    internal void CompactLog(Tx tx, Inode inode, long live)
    {
        ref InodeRecord r = ref inode.Rec;
        List<LogRecord> records = tx.Records;
        records.Clear();
        records.EnsureCapacity((int)live);
        long bytes = 0;
        if (inode.Map is { } map)
        {
            foreach (Extent e in map.Extents)
                records.Add(new LogRecord(LogRecordType.ExtentMap, e.Unwritten ? (byte)1 : (byte)0, (ulong)e.FileBlock, (ulong)e.DevBlock, (ulong)e.Count, null));
            bytes = records.Count * 32L;
        }
        else if (inode.Dir is { } dir)
        {
            foreach (var (name, slot) in dir.All)
            {
                records.Add(new LogRecord(LogRecordType.DirAdd, 0, slot.Ino, slot.Id, slot.Type, name));
                bytes += LogFormat.Length(LogRecordType.DirAdd, name.Length);
            }
        }
        if (!tx.TryReserve(LogBlocksFor(bytes)))
            return;
        List<long> old = [.. inode.LogBlocks];
        inode.LogBlocks.Clear();
        r.Blocks -= old.Count;
        r.LogEpoch++;
        r.LogTailBlock = 0;
        r.LogTailUsed = 0;
        r.LogBlockCount = 0;
        r.LogRecordCount = 0;
        r.InlineLogUsed = 0;
        if (r.Inline is not null && (r.Flags & InodeRecord.FlagInlineTarget) == 0)
            Array.Clear(r.Inline);
        if (records.Count > 0)
            AppendLog(tx, inode, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(records));
        foreach (long b in old)
            tx.Free(b, 1);
        tx.Touch(inode);
    }
}
