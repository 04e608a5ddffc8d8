using System.Buffers.Binary;
using DaxFs.Format;
using DaxFs.Pmem;

namespace DaxFs.Journal;

/// <summary>Journal -- seed 003's redo journal. A transaction's metadata (inode images: the only structures ever
/// changed in place) is written to the log with non-temporal stores and committed by one fence; a torn transaction
/// fails its CRC and is ignored. Home locations are written later, in a batch (checkpoint), by replaying the log
/// in order -- the same code mount runs for recovery, so replaying twice equals replaying once.
/// <para>On Page devices (msync only) committed transactions wait in DRAM and reach the log at <see cref="Sync"/>,
/// after the data they expose: the kernel may write a dirty page back at any moment, so nothing that could expose
/// unsynchronized data is stored into the mapping before the data is durable.</para></summary>
/// <remarks>Log layout: transactions back to back from the start of the log, each 64-byte aligned:
/// <code>
/// header  32 B: magic "DXTX" u32, record count u32, sequence u64, length u32 (header to commit end), flags u32, reserved u64
/// record  16 B + data padded to 8: device offset u64, length u32, reserved u32
/// commit  16 B: sequence u64, magic "DXCM" u32, crc32c u32 of everything before it
/// </code>
/// The journal header block holds two 64-byte slots (magic, slot sequence, next transaction sequence, crc); the
/// valid slot with the higher slot sequence is current, so rewriting the other one is atomic.</remarks>
internal sealed class Journal
{
    public const int TxHeaderSize = 32;
    public const int RecordHeaderSize = 16;
    public const int CommitSize = 16;
    private const int SlotSize = 64;

    private readonly PmemDevice _dev;
    private readonly Superblock _sb;
    private readonly DirtyExtentTracker? _pageTracker;
    private readonly bool _page;
    private readonly object _lock = new();
    private readonly List<byte[]> _pending = []; // Page devices: committed, not yet in the log
    // Every record in the log, in log order: its home and where its bytes lie in the log. A checkpoint walks this
    // list newest first and writes each inode slot home once, from its newest image read back from the log (recovery
    // after a crash replays the log in order instead). Nothing of a transaction is copied in DRAM at commit.
    private readonly List<LoggedRecord> _logged = [];
    private bool _onlyWholeSlots = true; // every record is one whole inode image (else: replay in order)
    private ulong[]? _slotWritten;       // checkpoint: the inode slots already written home
    private readonly List<long> _slotsSet = [];

    private readonly record struct LoggedRecord(long Home, long LogPosition, int Length);
    private ulong _nextSeq;      // sequence of the next transaction to commit
    private ulong _firstSeq;     // sequence of the first transaction in the log (the header's)
    private ulong _slotSeq;
    private long _head;          // bytes of the log in use (CacheLine) / written at the last Sync (Page)
    private long _commits;
    private long _checkpoints;

    private Journal(PmemDevice dev, Superblock sb, DirtyExtentTracker? pageTracker, ulong nextSeq, ulong slotSeq)
    {
        _dev = dev;
        _sb = sb;
        _page = dev.Granularity == Granularity.Page;
        _pageTracker = pageTracker;
        _nextSeq = nextSeq;
        _firstSeq = nextSeq;
        _slotSeq = slotSeq;
    }

    /// <summary>Transactions committed since mount.</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Checkpoints since mount.</summary>
    public long Checkpoints => Interlocked.Read(ref _checkpoints);

    /// <summary>Bytes of log in use.</summary>
    public long Used => _head;

    /// <summary>Writes an empty journal (mkfs): header slot 0 with next sequence 1, slot 1 and the first log line zeroed.</summary>
    public static void Format(PmemDevice dev, Superblock sb)
    {
        dev.Fill(sb.JournalHeaderOffset, Layout.BlockSize, 0, PersistFlags.NoDrain); // slot 0 invalid
        dev.Fill(sb.LogOffset, Layout.BlockSize, 0, PersistFlags.NoDrain);
        // Slot index = slot sequence & 1, from the first header on: each reset then rewrites the other slot.
        WriteSlot(dev, sb, 1, 1, 1);
    }

    /// <summary>Replays every committed transaction onto the home locations, makes them durable and resets the log;
    /// returns the journal ready for new transactions and how many were replayed. Idempotent. On a read-only device
    /// nothing is written and <paramref name="replayed"/> is minus the number of transactions waiting.</summary>
    public static Journal Recover(PmemDevice dev, Superblock sb, DirtyExtentTracker? pageTracker, out int replayed)
    {
        (ulong slotSeq, ulong nextSeq) = ReadHeader(dev, sb);
        var j = new Journal(dev, sb, pageTracker, nextSeq, slotSeq);
        if (dev.IsReadOnly)
        {
            replayed = -j.Scan(apply: false, out _); // negative: committed but not replayed
            return j;
        }
        replayed = j.ApplyLog(out ulong next);
        if (replayed > 0)
        {
            j._nextSeq = next;
            j.ResetHeader();
        }
        return j;
    }

    /// <summary>Counts and validates the committed transactions in the log without applying them (fsck).</summary>
    public static int CountCommitted(PmemDevice dev, Superblock sb)
    {
        (ulong slotSeq, ulong nextSeq) = ReadHeader(dev, sb);
        var j = new Journal(dev, sb, null, nextSeq, slotSeq);
        return j.Scan(apply: false, out _);
    }

    /// <summary>A transaction being built in a caller-owned buffer: records are appended after the header space,
    /// then <see cref="Commit(TxBuilder, bool)"/> seals it. Reused across calls to spare the allocations.</summary>
    public sealed class TxBuilder
    {
        internal byte[] Buffer = new byte[4096];
        internal int Length = TxHeaderSize;
        internal int Records;

        /// <summary>Starts an empty transaction.</summary>
        public void Reset()
        {
            Length = TxHeaderSize;
            Records = 0;
        }

        /// <summary>Adds a record of <paramref name="length"/> bytes for device offset <paramref name="offset"/> and
        /// returns the span to fill with its bytes.</summary>
        public Span<byte> Add(long offset, int length)
        {
            int need = Length + RecordHeaderSize + Align8(length) + CommitSize;
            if (need > Buffer.Length)
                Array.Resize(ref Buffer, Math.Max(need, Buffer.Length * 2));
            Span<byte> r = Buffer.AsSpan(Length, RecordHeaderSize + Align8(length));
            r.Clear();
            BinaryPrimitives.WriteInt64LittleEndian(r, offset);
            BinaryPrimitives.WriteInt32LittleEndian(r[8..], length);
            Length += r.Length;
            Records++;
            return r.Slice(RecordHeaderSize, length);
        }
    }

    /// <summary>Commits one transaction made of (device offset, bytes) records (tests and tools).</summary>
    public void Commit(IReadOnlyList<(long Offset, byte[] Data)> records)
    {
        var b = new TxBuilder();
        foreach (var (off, data) in records)
            data.CopyTo(b.Add(off, data.Length));
        Commit(b);
    }

    /// <summary>Seals and commits a built transaction. On CacheLine/Byte devices it is durable when this returns
    /// (non-temporal stores of the whole transaction, one fence); on Page devices at the next <see cref="Sync"/>.
    /// <paramref name="fenceFirst"/>: the caller's ordered stores (data, log records) are fenced here, right before the
    /// transaction's first store, rather than by the caller: the caller encodes its inode images while they drain.</summary>
    public void Commit(TxBuilder b, bool fenceFirst = false)
    {
        int length = b.Length + CommitSize;
        if (Align64(length) > _sb.LogBytes / 2)
            throw new DaxFsException(Errno.ENOSPC, $"a transaction of {length} bytes does not fit the {_sb.LogBytes}-byte journal");
        Span<byte> tx = b.Buffer.AsSpan(0, length);
        lock (_lock)
        {
            Seal(tx, b.Records, _nextSeq);
            if (_page)
            {
                _pending.Add(tx.ToArray());
                _nextSeq++;
                if (PendingBytes() > _sb.LogBytes / 2)
                    SyncLocked();
            }
            else
            {
                if (_head + Align64(length) > _sb.LogBytes)
                    CheckpointLocked();
                if (fenceFirst)
                    _dev.Drain();
                _dev.Copy(_sb.LogOffset + _head, tx, PersistFlags.NoDrain | PersistFlags.NonTemporal);
                Remember(_head, tx); // DRAM only: while the transaction's stores drain
                _dev.Drain();
                _head += Align64(length);
                _nextSeq++;
            }
            _commits++;
        }
    }

    /// <summary>Page devices: makes ordered data durable (msync of the dirty extents), then the waiting
    /// transactions (written to the log and msync'ed). CacheLine devices: nothing to do.</summary>
    public void Sync()
    {
        if (!_page)
            return;
        lock (_lock)
            SyncLocked();
    }

    /// <summary>Writes every committed transaction's records to their home locations, makes them durable and
    /// empties the log.</summary>
    public void Checkpoint()
    {
        lock (_lock)
        {
            if (_page)
                SyncLocked();
            CheckpointLocked();
        }
    }

    private void SyncLocked()
    {
        _pageTracker!.FlushDirty(clean: true); // ordered data before the commits that expose it
        if (_pending.Count == 0)
            return;
        if (_head + PendingBytes() > _sb.LogBytes)
            CheckpointLocked();
        long start = _head;
        foreach (byte[] tx in _pending)
        {
            _dev.Write(_sb.LogOffset + _head, tx);
            Remember(_head, tx);
            _head += Align64(tx.Length);
        }
        _dev.Persist(_sb.LogOffset + start, _head - start);
        _pending.Clear();
    }

    private long PendingBytes()
    {
        long n = 0;
        foreach (byte[] tx in _pending)
            n += Align64(tx.Length);
        return n;
    }

    private void CheckpointLocked()
    {
        if (_head == 0)
            return;
        if (_onlyWholeSlots)
        {
            // Newest first: each slot's newest image is written, older ones are skipped.
            long itStart = _sb.InodeTableStart * Layout.BlockSize;
            _slotWritten ??= new ulong[(_sb.InodeCount >> 6) + 1];
            for (int k = _logged.Count - 1; k >= 0; k--)
            {
                LoggedRecord r = _logged[k];
                long slot = (r.Home - itStart) / Layout.InodeSize;
                ref ulong word = ref _slotWritten[slot >> 6];
                ulong bit = 1UL << (int)(slot & 63);
                if ((word & bit) != 0)
                    continue;
                word |= bit;
                _slotsSet.Add(slot);
                WriteHome(r.Home, _dev.GetSpan(_sb.LogOffset + r.LogPosition, r.Length));
            }
            foreach (long slot in _slotsSet)
                _slotWritten[slot >> 6] = 0;
            _slotsSet.Clear();
        }
        else
        {
            foreach (LoggedRecord r in _logged)
                WriteHome(r.Home, _dev.GetSpan(_sb.LogOffset + r.LogPosition, r.Length));
        }
        if (_page)
            _pageTracker!.FlushDirty(clean: true);
        else
            _dev.Drain();
        _logged.Clear();
        if (_logged.Capacity > 1 << 16)
            _logged.Capacity = 1 << 16;
        _onlyWholeSlots = true;
        ResetHeader();
        _checkpoints++;
    }

    /// <summary>Stores a record's bytes at their home (made durable by the caller's flush or drain).</summary>
    private void WriteHome(long off, ReadOnlySpan<byte> data)
    {
        if (_page)
        {
            _dev.Write(off, data);
            _pageTracker!.MarkDirty(off, data.Length);
        }
        else
        {
            _dev.Copy(off, data, PersistFlags.NoDrain | PersistFlags.Temporal);
        }
    }

    /// <summary>Notes the records of a transaction now in the log at <paramref name="position"/> for the next
    /// checkpoint (they were validated when built: they lie in the inode table).</summary>
    private void Remember(long position, ReadOnlySpan<byte> tx)
    {
        long itStart = _sb.InodeTableStart * Layout.BlockSize;
        int p = TxHeaderSize;
        int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(tx[4..]);
        for (int i = 0; i < count; i++)
        {
            long off = BinaryPrimitives.ReadInt64LittleEndian(tx[p..]);
            int len = BinaryPrimitives.ReadInt32LittleEndian(tx[(p + 8)..]);
            _logged.Add(new LoggedRecord(off, position + p + RecordHeaderSize, len));
            if (len != Layout.InodeSize || (off - itStart) % Layout.InodeSize != 0)
                _onlyWholeSlots = false;
            p += RecordHeaderSize + Align8(len);
        }
    }

    /// <summary>Applies the committed transactions from the start of the log and drains; returns how many.</summary>
    private int ApplyLog(out ulong nextSeq)
    {
        int n = Scan(apply: true, out nextSeq);
        if (n > 0)
        {
            if (_page)
                _pageTracker!.FlushDirty(clean: true);
            else
                _dev.Drain();
        }
        return n;
    }

    /// <summary>Points the header at an empty log (next sequence = the journal's) by rewriting the older slot.</summary>
    private void ResetHeader()
    {
        // The log's next transaction is the first one not in it yet: on Page devices the ones waiting for a Sync
        // already have sequences and are written after this reset.
        ulong next = _nextSeq - (ulong)_pending.Count;
        _slotSeq++;
        WriteSlot(_dev, _sb, (int)(_slotSeq & 1), _slotSeq, next);
        _firstSeq = next;
        _head = 0;
    }

    /// <summary>Walks the log: each transaction must carry the expected sequence, fit the log, and pass its CRC;
    /// the first that does not ends the log. With <paramref name="apply"/> its records are written home.</summary>
    private int Scan(bool apply, out ulong nextSeq)
    {
        long pos = 0;
        ulong expect = _firstSeq;
        int count = 0;
        long itStart = _sb.InodeTableStart * Layout.BlockSize;
        long itEnd = itStart + _sb.InodeCount * Layout.InodeSize;
        while (pos + TxHeaderSize + CommitSize <= _sb.LogBytes)
        {
            long at = _sb.LogOffset + pos;
            ReadOnlySpan<byte> h = _dev.GetSpan(at, TxHeaderSize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(h) != Layout.TxMagic || BinaryPrimitives.ReadUInt64LittleEndian(h[8..]) != expect)
                break;
            uint recordCount = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
            if (length < TxHeaderSize + CommitSize || length > _sb.LogBytes - pos || (length & 7) != 0)
                break;
            ReadOnlySpan<byte> tx = _dev.GetSpan(at, (int)length);
            ReadOnlySpan<byte> commit = tx[^CommitSize..];
            if (BinaryPrimitives.ReadUInt64LittleEndian(commit) != expect || BinaryPrimitives.ReadUInt32LittleEndian(commit[8..]) != Layout.CommitMagic
                || BinaryPrimitives.ReadUInt32LittleEndian(commit[12..]) != Crc.Compute(tx[..^4]))
                break; // torn or never committed: the log ends here
            // A committed transaction whose records do not parse, or that aim outside the inode table, is corruption.
            int rp = TxHeaderSize;
            int end = (int)length - CommitSize;
            for (uint i = 0; i < recordCount; i++)
            {
                if (rp + RecordHeaderSize > end)
                    throw new DaxFsCorruptedException($"journal transaction {expect}", at, $"record {i} runs past the transaction");
                long off = BinaryPrimitives.ReadInt64LittleEndian(tx[rp..]);
                int len = BinaryPrimitives.ReadInt32LittleEndian(tx[(rp + 8)..]);
                if (len <= 0 || rp + RecordHeaderSize + Align8(len) > end)
                    throw new DaxFsCorruptedException($"journal transaction {expect}", at, $"record {i} has bad length {len}");
                if (off < itStart || off > itEnd - len)
                    throw new DaxFsCorruptedException($"journal transaction {expect}", at, $"record {i} targets device offset {off}, outside the inode table");
                if (apply && _page)
                {
                    _dev.Write(off, tx.Slice(rp + RecordHeaderSize, len)); // msync'ed once, by the caller
                    _pageTracker!.MarkDirty(off, len);
                }
                else if (apply)
                {
                    _dev.Copy(off, tx.Slice(rp + RecordHeaderSize, len), PersistFlags.NoDrain | PersistFlags.Temporal);
                }
                rp += RecordHeaderSize + Align8(len);
            }
            if (rp != end)
                throw new DaxFsCorruptedException($"journal transaction {expect}", at, "records do not fill the transaction");
            count++;
            expect++;
            pos += Align64((int)length);
        }
        nextSeq = expect;
        return count;
    }

    /// <summary>Writes the header and the commit record (sequence and CRC) around records already in place.</summary>
    private static void Seal(Span<byte> tx, int records, ulong seq)
    {
        tx[..TxHeaderSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(tx, Layout.TxMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(tx[4..], (uint)records);
        BinaryPrimitives.WriteUInt64LittleEndian(tx[8..], seq);
        BinaryPrimitives.WriteUInt32LittleEndian(tx[16..], (uint)tx.Length);
        Span<byte> commit = tx[^CommitSize..];
        BinaryPrimitives.WriteUInt64LittleEndian(commit, seq);
        BinaryPrimitives.WriteUInt32LittleEndian(commit[8..], Layout.CommitMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(commit[12..], Crc.Compute(tx[..^4]));
    }

    /// <summary>The current header: the valid slot with the higher slot sequence.</summary>
    private static (ulong SlotSeq, ulong NextSeq) ReadHeader(PmemDevice dev, Superblock sb)
    {
        (ulong, ulong)? best = null;
        for (int i = 0; i < 2; i++)
        {
            ReadOnlySpan<byte> s = dev.GetSpan(sb.JournalHeaderOffset + i * SlotSize, SlotSize);
            if (BinaryPrimitives.ReadUInt64LittleEndian(s) != Layout.JournalMagic || BinaryPrimitives.ReadUInt32LittleEndian(s[60..]) != Crc.Compute(s[..60]))
                continue;
            ulong slotSeq = BinaryPrimitives.ReadUInt64LittleEndian(s[8..]);
            ulong next = BinaryPrimitives.ReadUInt64LittleEndian(s[16..]);
            if (best is null || slotSeq > best.Value.Item1)
                best = (slotSeq, next);
        }
        return best ?? throw new DaxFsCorruptedException("journal header", sb.JournalHeaderOffset, "neither header slot is valid");
    }

    private static void WriteSlot(PmemDevice dev, Superblock sb, int slot, ulong slotSeq, ulong nextSeq)
    {
        Span<byte> s = stackalloc byte[SlotSize];
        s.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(s, Layout.JournalMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(s[8..], slotSeq);
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], nextSeq);
        BinaryPrimitives.WriteUInt32LittleEndian(s[60..], Crc.Compute(s[..60]));
        dev.Copy(sb.JournalHeaderOffset + slot * SlotSize, s, PersistFlags.Temporal);
    }

    public static int Align8(int n) => (n + 7) & ~7;

    public static int Align64(int n) => (n + 63) & ~63;

    private static long Align64(long n) => (n + 63) & ~63L;
}
