using DaxFs.Allocation;
using DaxFs.Format;
using DaxFs.Iomap;
using DaxFs.Journal;
using DaxFs.Namespace;
using DaxFs.Pmem;
using IomapLoop = DaxFs.Iomap.Iomap;

namespace DaxFs;

public sealed partial class DaxVolume
{
    private const long MaxBlock = Layout.MaxFileBytes / Layout.BlockSize + 1;
    private long _inPlaceUnderMapping;

    /// <summary>Writes that replaced visible bytes in place because a live mapping covered them.</summary>
    public long InPlaceWritesUnderMappings => Interlocked.Read(ref _inPlaceUnderMapping);

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/> straight from the
    /// media (holes and unwritten extents as zeros); returns the bytes read (0 at or past the end). Never flushes,
    /// never writes (no atime update).</summary>
    public int Read(ulong ino, long offset, Span<byte> buffer)
    {
        ThrowIfDisposed();
        if (offset < 0)
            throw new DaxFsException(Errno.EINVAL, $"negative offset {offset}");
        Inode i = GetRegular(ino);
        EnterRead(i);
        try
        {
            long size = i.Rec.Size;
            if (offset >= size || buffer.IsEmpty)
                return 0;
            int n = (int)Math.Min(buffer.Length, size - offset);
            int done = 0;
            while (done < n)
            {
                IomapExtent e = IomapLoop.Begin(i.Map!, offset + done, n - done, IomapIntent.Read);
                Span<byte> dst = buffer.Slice(done, (int)e.Length);
                if (e.Kind == MapKind.Mapped)
                    _dev.Read(e.DevOffset, dst);
                else
                    dst.Clear();
                done += (int)e.Length;
            }
            return n;
        }
        finally
        {
            i.Lock.ExitReadLock();
        }
    }

    /// <summary>Visits the extents under [offset, offset+length) clipped to the size: <paramref name="visit"/> gets
    /// (device offset or -1 for zeros, length). Returns the bytes covered. The device bytes may change after this
    /// returns; a zero-copy reader holds a <see cref="BeginRead"/> lease instead.</summary>
    public long ReadExtents(ulong ino, long offset, long length, Action<long, long> visit)
    {
        using ReadLease lease = BeginRead(ino);
        return lease.Visit(offset, length, visit);
    }

    /// <summary>Holds regular file <paramref name="ino"/> for reading until the lease is disposed (FUSE replies with
    /// writev from the media while it is held).</summary>
    public ReadLease BeginRead(ulong ino)
    {
        ThrowIfDisposed();
        Inode i = GetRegular(ino);
        EnterRead(i);
        return new ReadLease(this, i);
    }

    internal long VisitExtentsLocked(Inode i, long offset, long length, Action<long, long> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        if (offset < 0 || length < 0)
            throw new DaxFsException(Errno.EINVAL, $"bad range [{offset}, +{length})");
        long n = Math.Max(0, Math.Min(length, i.Rec.Size - offset));
        IomapLoop.Iterate(i.Map!, offset, n, IomapIntent.Read, e =>
        {
            visit(e.Kind == MapKind.Mapped ? e.DevOffset : -1, e.Length);
            return e.Length;
        });
        return n;
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>, atomically: bytes that replace visible
    /// data go to new blocks (copy on write) and the commit switches the map; bytes past the end of file and in
    /// unwritten extents are stored in place, invisible until the commit. Non-temporal stores, one fence before the
    /// commit, one for it. Under <see cref="DataMode.InPlace"/> bytes that replace visible data are stored where they
    /// lie instead (durable, not atomic). Returns the bytes written.</summary>
    public int Write(ulong ino, long offset, ReadOnlySpan<byte> data)
    {
        ThrowIfDisposed();
        if (offset < 0)
            throw new DaxFsException(Errno.EINVAL, $"negative offset {offset}");
        if (offset + (long)data.Length > Layout.MaxFileBytes)
            throw new DaxFsException(Errno.EFBIG, $"a write to {offset + data.Length} would pass the largest file size {Layout.MaxFileBytes}");
        Inode i = GetRegular(ino);
        if (data.IsEmpty)
            return 0;
        if (_inPlace && TryOverwriteInPlace(i, offset, data))
            return data.Length;
        EnterWrite(i);
        try
        {
            using var tx = Tx.Begin(this);
            long end = offset + data.Length;
            tx.Reserve(WriteReservation(i, offset, end));
            tx.BeginChanges();
            long size = i.Rec.Size;
            ZeroTailForExtension(tx, i, size, offset);
            WriteRange(tx, i, offset, end, data, size);
            long now = NowNs();
            i.Rec.Size = Math.Max(size, end);
            i.Rec.MtimeNs = i.Rec.CtimeNs = now;
            tx.Touch(i);
            MaybeCompact(tx, i);
            tx.Commit();
            RefreshMappings(i, offset & ~(long)(Layout.BlockSize - 1), end);
            return data.Length;
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <summary><see cref="DataMode.InPlace"/> on CacheLine/Byte devices: a write that only overwrites bytes the file
    /// has (inside its size, every block written, no live mapping) is stored into the file's blocks and fenced; the new
    /// times are journaled lazily. False, with nothing written, when the call needs the general path.</summary>
    private bool TryOverwriteInPlace(Inode i, long offset, ReadOnlySpan<byte> data)
    {
        EnterWrite(i);
        try
        {
            long end = offset + data.Length;
            if (end > i.Rec.Size || i.Mappings is { Count: > 0 })
                return false;
            ThrowIfFailed();
            ThrowIfReadOnly();
            ExtentMap map = i.Map!;
            long first = offset >> Layout.BlockShift, last = (end - 1) >> Layout.BlockShift;
            var (kind, dev, n) = map.Lookup(first, last - first + 1);
            if (kind != MapKind.Mapped)
                return false; // a hole or an unwritten extent: allocation or conversion, atomically
            // Over several extents, every one is checked before a byte is stored.
            for (long b = first + n; b <= last;)
            {
                var (k, _, m) = map.Lookup(b, last - b + 1);
                if (k != MapKind.Mapped)
                    return false;
                b += m;
            }
            for (long pos = offset, b0 = first; ;)
            {
                long segEnd = Math.Min(end, (b0 + n) << Layout.BlockShift);
                _dev.Copy(dev * Layout.BlockSize + (pos & (Layout.BlockSize - 1)), data.Slice((int)(pos - offset), (int)(segEnd - pos)),
                    PersistFlags.NoDrain);
                if (segEnd >= end)
                    break;
                pos = segEnd;
                b0 = pos >> Layout.BlockShift;
                (_, dev, n) = map.Lookup(b0, last - b0 + 1);
            }
            _dev.Drain();
            i.Rec.MtimeNs = i.Rec.CtimeNs = FileClock.CoarseAfter(i.Rec.CtimeNs);
            NoteTimesPending(i);
            return true;
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <summary>Notes that <paramref name="i"/>'s times changed without a commit (under its lock).</summary>
    private void NoteTimesPending(Inode i)
    {
        if (i.TimesPending)
            return;
        i.TimesPending = true;
        lock (_timesLock)
        {
            if (_timesPending.Count >= 4096)
                _timesPending.RemoveAll(x => !x.TimesPending || x.Freed); // journaled since, or gone
            _timesPending.Add(i);
        }
    }

    /// <summary>Journals the lazily kept times of <paramref name="i"/> (takes its write lock).</summary>
    private void CommitTimes(Inode i)
    {
        i.Lock.EnterWriteLock();
        try
        {
            if (!i.TimesPending || i.Freed)
                return;
            using var tx = Tx.Begin(this);
            tx.BeginChanges();
            tx.Touch(i);
            tx.Commit();
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <summary>Journals every inode's lazily kept times (sync, unmount).</summary>
    private void CommitPendingTimes()
    {
        Inode[] pending;
        lock (_timesLock)
        {
            if (_timesPending.Count == 0)
                return;
            pending = _timesPending.ToArray();
            _timesPending.Clear();
        }
        foreach (Inode i in pending)
            CommitTimes(i);
    }

    /// <summary>Blocks a write of [offset, end) may need: new data blocks (holes and copy-on-write) and log blocks
    /// for the worst-case number of map records.</summary>
    private long WriteReservation(Inode i, long offset, long end)
    {
        long b0 = offset >> Layout.BlockShift, b1 = (end - 1) >> Layout.BlockShift;
        long size = InPlaceLimit(i, i.Rec.Size);
        long visible = (size + Layout.BlockSize - 1) >> Layout.BlockShift;
        long data = TailCopyBlocks(i, i.Rec.Size, end), segments = 0;
        for (long b = b0; b <= b1;)
        {
            var (kind, _, n) = i.Map!.Lookup(b, b1 - b + 1);
            if (kind == MapKind.Hole)
                data += n;
            else if (kind == MapKind.Mapped)
            {
                long firstCow = b == b0 ? (offset < size ? b : long.MaxValue) : b;
                long cowEnd = Math.Min(b + n, visible);
                if (firstCow < cowEnd)
                    data += cowEnd - firstCow;
            }
            segments++;
            b += n;
        }
        long records = 2 * data + segments + 2;
        return data + LogBlocksFor(records * 32);
    }

    /// <summary>The write loop: iomap extents of [offset, end); each is written in place or into new blocks, and
    /// the map change is recorded in the inode's log. <paramref name="data"/> empty means zeros.</summary>
    private void WriteRange(Tx tx, Inode i, long offset, long end, ReadOnlySpan<byte> data, long size)
    {
        ExtentMap map = i.Map!;
        bool large = Math.Max(size, end) >= Layout.GroupBytes;
        // Bytes below the limit may still be seen after a crash (Page devices, an unsynced truncate down): not in place.
        long limit = InPlaceLimit(i, size);
        long visibleBlocks = (limit + Layout.BlockSize - 1) >> Layout.BlockShift;
        long pos = offset;
        while (pos < end)
        {
            long b0 = pos >> Layout.BlockShift;
            long bLast = (end - 1) >> Layout.BlockShift;
            var (kind, dev, n) = map.Lookup(b0, bLast - b0 + 1);
            // Under a live mapping the block map must not move: those bytes are written in place (not atomically,
            // as on any DAX file system with a program storing through a mapping at the same time).
            bool pinned = kind == MapKind.Mapped && MappedOver(i, b0 << Layout.BlockShift, (b0 + n) << Layout.BlockShift);
            // DataMode.InPlace (CacheLine/Byte devices only, where the limit is the size): the file's visible bytes are
            // stored over where they lie, not atomically.
            bool overwrite = _inPlace && kind == MapKind.Mapped && pos < size;
            if (kind == MapKind.Unwritten || (kind == MapKind.Mapped && (pos >= limit || pinned || overwrite)))
            {
                // In place: nothing visible changes before the commit (unwritten reads zeros; past EOF is unseen).
                long segEnd = Math.Min(end, (b0 + n) << Layout.BlockShift);
                StoreBlocks(tx, b0, n, dev, pos, segEnd, data, offset, size, kind == MapKind.Unwritten ? Prefill.Zero : Prefill.PastEof, 0);
                if (pinned && pos < size)
                    Interlocked.Increment(ref _inPlaceUnderMapping);
                if (kind == MapKind.Unwritten)
                {
                    map.Convert(b0, n);
                    AppendLog(tx, i, new LogRecord(LogRecordType.ExtentConvert, 0, (ulong)b0, (ulong)n, 0, null));
                }
                pos = segEnd;
                continue;
            }
            // New blocks: a hole, or copy on write of visible data.
            long count = kind == MapKind.Hole ? n : Math.Min(n, visibleBlocks - b0);
            long hint = kind == MapKind.Mapped ? -1 : map.ContinuationHint(b0);
            // 2 MiB-aligned fresh groups for allocations of 1 MiB or more and for a large file growing past its end (an append that
            // cannot continue in place starts a new aligned group); copy-on-write and small hole fills take space in
            // partly used groups, so that whole free groups survive aging.
            bool aligned = count >= Layout.BlocksPerGroup / 2 || (large && kind == MapKind.Hole && b0 >= visibleBlocks);
            long lookupBlock = b0;
            foreach (BlockRun run in tx.Allocate(count, hint, aligned, b0))
            {
                long segEnd = Math.Min(end, (b0 + run.Count) << Layout.BlockShift);
                long oldDev = kind == MapKind.Mapped ? dev + (b0 - lookupBlock) : 0;
                StoreBlocks(tx, b0, run.Count, run.Start, pos, segEnd, data, offset, size, kind == MapKind.Mapped ? Prefill.CopyOld : Prefill.Zero, oldDev);
                tx.Displaced.Clear();
                map.Map(b0, run.Count, run.Start, unwritten: false, tx.Displaced);
                foreach (Extent old in tx.Displaced)
                {
                    tx.Free(old.DevBlock, old.Count);
                    i.Rec.Blocks -= old.Count;
                }
                i.Rec.Blocks += run.Count;
                AppendLog(tx, i, new LogRecord(LogRecordType.ExtentMap, 0, (ulong)b0, (ulong)run.Start, (ulong)run.Count, null));
                b0 += run.Count;
                pos = segEnd;
            }
        }
    }

    /// <summary>What surrounds the written bytes in the first and last block of a segment.</summary>
    private enum Prefill
    {
        /// <summary>Zeros (new block for a hole; unwritten block being converted).</summary>
        Zero,
        /// <summary>The old block's visible bytes, zeros past the end of file (copy on write).</summary>
        CopyOld,
        /// <summary>A block whose written part is all past the end of file: zero from the end of file up to the write.</summary>
        PastEof,
    }

    /// <summary>Stores the bytes of [pos, segEnd) into device blocks [devBlock, +count) that hold file blocks
    /// [fileBlock, +count), preparing the partial first and last blocks as <paramref name="prefill"/> says.</summary>
    private void StoreBlocks(Tx tx, long fileBlock, long count, long devBlock, long pos, long segEnd, ReadOnlySpan<byte> data,
        long dataOffset, long size, Prefill prefill, long oldDevBlock)
    {
        long blockStart = fileBlock << Layout.BlockShift;
        long blocksEnd = (fileBlock + count) << Layout.BlockShift;
        long devBase = devBlock * Layout.BlockSize - blockStart; // device offset = file offset + devBase
        long oldBase = oldDevBlock * Layout.BlockSize - blockStart;
        // Head: [blockStart, pos) of the first block.
        if (pos > blockStart)
            Surround(tx, blockStart, pos, devBase, oldBase, size, prefill);
        // Tail: [segEnd, end of its block) when the segment ends inside a block.
        long tailBlockEnd = Math.Min(blocksEnd, (segEnd + Layout.BlockSize - 1) & ~((long)Layout.BlockSize - 1));
        if (segEnd < tailBlockEnd && prefill != Prefill.PastEof)
            Surround(tx, segEnd, tailBlockEnd, devBase, oldBase, size, prefill);
        if (data.IsEmpty)
            OrderedFill(tx, pos + devBase, segEnd - pos, 0);
        else
            OrderedWrite(tx, pos + devBase, data.Slice((int)(pos - dataOffset), (int)(segEnd - pos)));
    }

    /// <summary>Fills file bytes [from, to) of a block being written around: old visible bytes (copy on write) and
    /// zeros elsewhere, or (past EOF) zeros from the end of file on.</summary>
    private void Surround(Tx tx, long from, long to, long devBase, long oldBase, long size, Prefill prefill)
    {
        switch (prefill)
        {
            case Prefill.Zero:
                OrderedFill(tx, from + devBase, to - from, 0);
                break;
            case Prefill.CopyOld:
                long keep = Math.Clamp(size, from, to);
                if (keep > from)
                    OrderedWrite(tx, from + devBase, _dev.GetSpan(from + oldBase, (int)(keep - from)));
                OrderedFill(tx, keep + devBase, to - keep, 0);
                break;
            case Prefill.PastEof:
                long z = Math.Max(from, size);
                OrderedFill(tx, z + devBase, to - z, 0);
                break;
        }
    }

    /// <summary>Before the end of file moves up from <paramref name="size"/> to cover <paramref name="newStart"/> and
    /// beyond: the bytes of the old last block past the old end (left there by a truncate) must read as zeros. They
    /// are unseen until the commit, so they are zeroed in place.</summary>
    private void ZeroTailForExtension(Tx tx, Inode i, long size, long newStart)
    {
        if (newStart <= size || (size & (Layout.BlockSize - 1)) == 0)
            return;
        long b = size >> Layout.BlockShift;
        var (kind, dev, _) = i.Map!.Lookup(b, 1);
        if (kind != MapKind.Mapped)
            return;
        long blockEnd = (b + 1) << Layout.BlockShift;
        long to = Math.Min(blockEnd, newStart);
        if (size < InPlaceLimit(i, size))
        {
            // A crash may still show this block's bytes past the size (a truncate down not yet durable): copy on write.
            ZeroPartial(tx, i, size, to, size);
            return;
        }
        OrderedFill(tx, dev * Layout.BlockSize + (size - (b << Layout.BlockShift)), to - size, 0);
    }

    /// <summary>The block <see cref="ZeroTailForExtension"/> copies when growing from <paramref name="size"/> to
    /// <paramref name="newEnd"/> (for reservations): 1 while an unsynced truncate down protects the tail, else 0.</summary>
    private long TailCopyBlocks(Inode i, long size, long newEnd) =>
        newEnd > size && (size & (Layout.BlockSize - 1)) != 0 && size < InPlaceLimit(i, size) ? 1 : 0;

    /// <summary>Changes the size: down frees every block past the new end (preallocation included); up zeroes the old
    /// partial block's tail. Part of a setattr transaction.</summary>
    private void Truncate(Tx tx, Inode i, long newSize)
    {
        long size = i.Rec.Size;
        if (newSize <= size)
        {
            long first = (newSize + Layout.BlockSize - 1) >> Layout.BlockShift;
            List<Extent> gone = i.Map!.Unmap(first, MaxBlock - first);
            if (gone.Count > 0)
            {
                foreach (Extent e in gone)
                {
                    tx.Free(e.DevBlock, e.Count);
                    i.Rec.Blocks -= e.Count;
                }
                AppendLog(tx, i, new LogRecord(LogRecordType.ExtentUnmap, 0, (ulong)first, (ulong)(MaxBlock - first), 0, null));
            }
        }
        if (newSize > size)
            ZeroTailForExtension(tx, i, size, newSize);
        i.Rec.Size = newSize;
    }

    /// <summary>setattr: mode, owner, size, times. Changing the size of a non-regular file is refused.</summary>
    public InodeAttributes SetAttributes(ulong ino, SetAttributes changes)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(changes);
        Inode i = Get(ino);
        if (changes.Size is { } sz)
        {
            if (i.IsDir)
                throw new DaxFsException(Errno.EISDIR, $"inode {ino} is a directory");
            if (!i.IsRegular)
                throw new DaxFsException(Errno.EINVAL, $"inode {ino} is not a regular file");
            if (sz < 0)
                throw new DaxFsException(Errno.EINVAL, $"negative size {sz}");
            if (sz > Layout.MaxFileBytes)
                throw new DaxFsException(Errno.EFBIG, $"size {sz} is larger than the largest file {Layout.MaxFileBytes}");
        }
        EnterWrite(i);
        try
        {
            using var tx = Tx.Begin(this);
            if (changes.Size is { } newSize && newSize < i.Rec.Size)
                ThrowIfMapped(i, (newSize + Layout.BlockSize - 1) & ~(long)(Layout.BlockSize - 1), long.MaxValue, "truncate");
            if (changes.Size is not null)
                tx.Reserve(TailCopyBlocks(i, i.Rec.Size, changes.Size.Value) + LogBlocksFor(64), freeing: changes.Size <= i.Rec.Size);
            tx.BeginChanges();
            long now = NowNs();
            long sizeBefore = i.Rec.Size;
            if (changes.Size is { } size)
            {
                Truncate(tx, i, size);
                i.Rec.MtimeNs = now;
            }
            if (changes.Mode is { } mode)
                i.Rec.Mode = (i.Rec.Mode & FileModes.TypeMask) | (mode & FileModes.PermissionMask);
            if (changes.Uid is { } uid)
                i.Rec.Uid = uid;
            if (changes.Gid is { } gid)
                i.Rec.Gid = gid;
            if (changes.AtimeNs is { } at)
                i.Rec.AtimeNs = at;
            if (changes.MtimeNs is { } mt)
                i.Rec.MtimeNs = mt;
            i.Rec.CtimeNs = changes.CtimeNs ?? now;
            tx.Touch(i);
            MaybeCompact(tx, i);
            tx.Commit();
            if (changes.Size < sizeBefore)
                NoteTruncateDown(i, sizeBefore);
            return i.Attributes;
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <summary>fallocate(2): allocate (as unwritten, reading zeros), keep size, punch a hole, zero a range.
    /// Partial blocks at the edges of a punch or zero are rewritten by copy on write, so the call stays atomic.</summary>
    public void Fallocate(ulong ino, FallocateMode mode, long offset, long length)
    {
        ThrowIfDisposed();
        if ((mode & ~(FallocateMode.KeepSize | FallocateMode.PunchHole | FallocateMode.ZeroRange)) != 0)
            throw new DaxFsException(Errno.EOPNOTSUPP, $"fallocate mode 0x{(int)mode:x} is not supported");
        bool punch = (mode & FallocateMode.PunchHole) != 0, zero = (mode & FallocateMode.ZeroRange) != 0;
        bool keep = (mode & FallocateMode.KeepSize) != 0;
        if (punch && zero)
            throw new DaxFsException(Errno.EINVAL, "punch hole and zero range cannot be combined");
        if (punch && !keep)
            throw new DaxFsException(Errno.EOPNOTSUPP, "punch hole needs keep size");
        if (offset < 0 || length <= 0)
            throw new DaxFsException(Errno.EINVAL, $"bad range [{offset}, +{length})");
        if (offset + length > Layout.MaxFileBytes || offset + length < 0)
            throw new DaxFsException(Errno.EFBIG, $"range end {offset + length} is past the largest file");
        Inode i = Get(ino);
        if (i.IsDir)
            throw new DaxFsException(Errno.EISDIR, $"inode {ino} is a directory");
        if (!i.IsRegular)
            throw new DaxFsException(Errno.ENODEV, $"inode {ino} is not a regular file");
        long end = offset + length;
        EnterWrite(i);
        try
        {
            if (punch || zero)
                ThrowIfMapped(i, offset & ~(long)(Layout.BlockSize - 1), end, punch ? "punch hole" : "zero range");
            using var tx = Tx.Begin(this);
            long size = i.Rec.Size;
            long b0 = offset >> Layout.BlockShift, b1 = (end - 1) >> Layout.BlockShift;
            long fullFirst = (offset + Layout.BlockSize - 1) >> Layout.BlockShift, fullEnd = end >> Layout.BlockShift;
            // Page devices (not mounted sync): the zeroed blocks are visible until the call is durable, and a later
            // write into an unwritten extent goes in place -- so zero range gives the range fresh unwritten blocks.
            bool fresh = zero && _page && !_options.Sync;
            long holes = punch ? 0
                : fresh ? Math.Max(0, fullEnd - fullFirst)
                : CountHoles(i, zero ? fullFirst : b0, (zero ? fullEnd : b1 + 1) - (zero ? fullFirst : b0));
            long edges = (punch || zero) ? 2 : 0;
            tx.Reserve(holes + edges + TailCopyBlocks(i, i.Rec.Size, offset + length) + LogBlocksFor((2 * (holes + edges) + 9) * 32), freeing: punch || fresh);
            tx.BeginChanges();
            long now = NowNs();
            if (punch || zero)
            {
                // Partial edge blocks: rewrite their visible bytes with zeros by copy on write.
                ZeroPartial(tx, i, offset, Math.Min(end, (b0 + 1) << Layout.BlockShift), size);
                if (b1 > b0)
                    ZeroPartial(tx, i, b1 << Layout.BlockShift, end, size);
                if (fullEnd > fullFirst)
                {
                    if (punch || fresh)
                    {
                        List<Extent> gone = i.Map!.Unmap(fullFirst, fullEnd - fullFirst);
                        foreach (Extent e in gone)
                        {
                            tx.Free(e.DevBlock, e.Count);
                            i.Rec.Blocks -= e.Count;
                        }
                        if (gone.Count > 0)
                            AppendLog(tx, i, new LogRecord(LogRecordType.ExtentUnmap, 0, (ulong)fullFirst, (ulong)(fullEnd - fullFirst), 0, null));
                        if (fresh)
                            AllocateUnwritten(tx, i, fullFirst, fullEnd, Math.Max(size, end));
                    }
                    else
                    {
                        i.Map!.MarkUnwritten(fullFirst, fullEnd - fullFirst);
                        AppendLog(tx, i, new LogRecord(LogRecordType.ExtentUnwrite, 0, (ulong)fullFirst, (ulong)(fullEnd - fullFirst), 0, null));
                        AllocateUnwritten(tx, i, fullFirst, fullEnd, Math.Max(size, end));
                    }
                }
            }
            else
            {
                AllocateUnwritten(tx, i, b0, b1 + 1, Math.Max(size, end));
            }
            if (!keep && end > size)
            {
                ZeroTailForExtension(tx, i, size, end);
                i.Rec.Size = end;
                i.Rec.MtimeNs = now;
            }
            if (punch || zero)
                i.Rec.MtimeNs = now;
            i.Rec.CtimeNs = now;
            tx.Touch(i);
            MaybeCompact(tx, i);
            tx.Commit();
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    private static long CountHoles(Inode i, long b, long count)
    {
        long holes = 0;
        for (long end = b + count; b < end;)
        {
            var (kind, _, n) = i.Map!.Lookup(b, end - b);
            if (kind == MapKind.Hole)
                holes += n;
            b += n;
        }
        return holes;
    }

    /// <summary>Allocates unwritten blocks for every hole of file blocks [b, end).</summary>
    private void AllocateUnwritten(Tx tx, Inode i, long b, long end, long sizeHint)
    {
        bool aligned = sizeHint >= Layout.GroupBytes;
        while (b < end)
        {
            var (kind, _, n) = i.Map!.Lookup(b, end - b);
            if (kind != MapKind.Hole)
            {
                b += n;
                continue;
            }
            foreach (BlockRun run in tx.Allocate(n, i.Map.ContinuationHint(b), aligned, b))
            {
                i.Map.Map(b, run.Count, run.Start, unwritten: true);
                i.Rec.Blocks += run.Count;
                AppendLog(tx, i, new LogRecord(LogRecordType.ExtentMap, 1, (ulong)b, (ulong)run.Start, (ulong)run.Count, null));
                b += run.Count;
            }
        }
    }

    /// <summary>Makes file bytes [from, to) (inside one block) read as zeros: copy on write of a written block's
    /// visible bytes; zeros in place past the end of file; nothing for holes and unwritten blocks.</summary>
    private void ZeroPartial(Tx tx, Inode i, long from, long to, long size)
    {
        if (to <= from)
            return;
        long b = from >> Layout.BlockShift;
        long blockStart = b << Layout.BlockShift;
        if (from == blockStart && to == blockStart + Layout.BlockSize)
            return; // a whole block: the caller unmaps or marks it unwritten
        var (kind, dev, _) = i.Map!.Lookup(b, 1);
        if (kind != MapKind.Mapped)
            return;
        if (from >= InPlaceLimit(i, size))
        {
            OrderedFill(tx, dev * Layout.BlockSize + (from - blockStart), to - from, 0);
            return;
        }
        long fresh = tx.AllocateOne(-1);
        long devBase = fresh * Layout.BlockSize - blockStart, oldBase = dev * Layout.BlockSize - blockStart;
        Surround(tx, blockStart, from, devBase, oldBase, size, Prefill.CopyOld);
        OrderedFill(tx, from + devBase, to - from, 0);
        Surround(tx, to, blockStart + Layout.BlockSize, devBase, oldBase, size, Prefill.CopyOld);
        tx.Displaced.Clear();
        i.Map.Map(b, 1, fresh, unwritten: false, tx.Displaced);
        foreach (Extent old in tx.Displaced)
            tx.Free(old.DevBlock, old.Count);
        AppendLog(tx, i, new LogRecord(LogRecordType.ExtentMap, 0, (ulong)b, (ulong)fresh, 1, null));
    }

    /// <summary>lseek SEEK_DATA (<paramref name="data"/>) or SEEK_HOLE from <paramref name="offset"/>; unwritten
    /// extents count as holes; the end of file is a hole; ENXIO at or past the end.</summary>
    public long Seek(ulong ino, long offset, bool data)
    {
        ThrowIfDisposed();
        Inode i = GetRegular(ino);
        EnterRead(i);
        try
        {
            long size = i.Rec.Size;
            if (offset < 0 || offset >= size)
                throw new DaxFsException(Errno.ENXIO, $"offset {offset} is not within the file ({size} bytes)");
            long found = data ? -1 : size;
            IomapLoop.Iterate(i.Map!, offset, size - offset, IomapIntent.Read, e =>
            {
                bool isData = e.Kind == MapKind.Mapped;
                if (isData == data)
                {
                    found = e.FileOffset;
                    return 0;
                }
                return e.Length;
            });
            if (found < 0)
                throw new DaxFsException(Errno.ENXIO, $"no data after offset {offset}");
            return found;
        }
        finally
        {
            i.Lock.ExitReadLock();
        }
    }

    /// <summary>fsync/fdatasync: on Page devices everything completed becomes durable (msync of dirty data, then the
    /// journal); on CacheLine devices every call already was. fsync (not fdatasync) also journals the times that
    /// <see cref="DataMode.InPlace"/> overwrites keep lazily.</summary>
    public void Fsync(ulong ino, bool dataOnly = false)
    {
        ThrowIfDisposed();
        Inode i = Get(ino);
        if (i.Mappings is { Count: > 0 })
            FlushMappings(i);
        if (!dataOnly && i.TimesPending)
            CommitTimes(i);
        SyncCommitted();
    }

    /// <summary>The live regular file <paramref name="ino"/>; EISDIR / EINVAL otherwise.</summary>
    private Inode GetRegular(ulong ino)
    {
        Inode i = Get(ino);
        if (i.IsRegular)
            return i;
        throw new DaxFsException(i.IsDir ? Errno.EISDIR : Errno.EINVAL, $"inode {ino} is not a regular file");
    }
}

/// <summary>ReadLease -- a file held for reading (its read lock) while a reader hands the kernel pointers into its
/// blocks: no write can copy-on-write and free them, so no other file's bytes can appear in the reply. Dispose on the
/// thread that took it.</summary>
public sealed class ReadLease : IDisposable
{
    private readonly DaxVolume _volume;
    private Namespace.Inode? _inode;

    internal ReadLease(DaxVolume volume, Namespace.Inode inode)
    {
        _volume = volume;
        _inode = inode;
    }

    /// <summary>The file's size while the lease is held.</summary>
    public long Size => _inode?.Rec.Size ?? throw new ObjectDisposedException(nameof(ReadLease));

    /// <summary>Visits the extents of [offset, offset+length) clipped to the size: (device offset or -1 for zeros,
    /// length); returns the bytes covered.</summary>
    public long Visit(long offset, long length, Action<long, long> visit)
    {
        ObjectDisposedException.ThrowIf(_inode is null, this);
        return _volume.VisitExtentsLocked(_inode, offset, length, visit);
    }

    /// <summary>Releases the read lock.</summary>
    public void Dispose()
    {
        Namespace.Inode? i = Interlocked.Exchange(ref _inode, null);
        i?.Lock.ExitReadLock();
    }
}
