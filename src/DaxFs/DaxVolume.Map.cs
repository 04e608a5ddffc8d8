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
    private const long Pmd = 2 << 20;
    private const int ManyRuns = 256;          // windows of more runs check vm.max_map_count before mapping
    private readonly object _mapLock = new();
    private long _pmdMapped, _pteMapped, _fbFile, _fbExtent, _fbShort, _fbNoHuge, _smallRequested;
    private int _backingHuge = -1;             // -1 unknown, 0 no, 1 yes: does the device give 2 MiB pages?
    private DirtyExtentTracker? _mapTracker;   // extents under async writable mappings
    private readonly Dictionary<int, int> _extentUsers = [];
    private IPageWriteTracker? _writeTracker;
    private string? _pageTrackingUnavailable;

    /// <summary>Counters of the mapping path (PMD units, PTE pages, fallbacks by reason).</summary>
    public MapStatistics MapStatistics => new(Interlocked.Read(ref _pmdMapped), Interlocked.Read(ref _pteMapped), Interlocked.Read(ref _fbFile),
        Interlocked.Read(ref _fbExtent), Interlocked.Read(ref _fbShort), Interlocked.Read(ref _fbNoHuge), Interlocked.Read(ref _smallRequested));

    /// <summary>The dirty-tracking policy in force for async mappings (Page may fall back to Extent).</summary>
    public DirtyTracking DirtyTracking
    {
        get
        {
            EnsureDirtyTracking();
            return _writeTracker is not null && _pageTrackingUnavailable is null ? _options.DirtyTracking : DirtyTracking.Extent;
        }
    }

    /// <summary>Why page-precise tracking is not in use, when it was asked for and is not; null otherwise.</summary>
    public string? PageTrackingUnavailableReason
    {
        get
        {
            EnsureDirtyTracking();
            return _pageTrackingUnavailable;
        }
    }

    /// <summary>Extents written back by async-mapping flushes since mount (what tests count instead of time).</summary>
    public long MappingExtentsFlushed => _mapTracker?.ExtentsFlushed ?? 0;

    /// <summary>Pages the page-precise policy found written and wrote back since mount.</summary>
    public long MappingPagesFlushed => Interlocked.Read(ref _pagesFlushed);

    private long _pagesFlushed;

    /// <summary>Maps [offset, offset+length) of regular file <paramref name="ino"/> into memory. See
    /// <see cref="DaxFile.Map(long, long, MapAccess, MapMode, MapPages)"/>.</summary>
    public DaxMapping Map(ulong ino, long offset, long length, MapAccess access, MapMode mode, MapPages pages = MapPages.Largest)
    {
        ThrowIfDisposed();
        if (offset < 0 || length <= 0)
            throw new DaxFsException(Errno.EINVAL, $"bad mapping range [{offset}, +{length})");
        if (offset + length > Layout.MaxFileBytes || offset + length < 0)
            throw new DaxFsException(Errno.EFBIG, $"mapping end {offset + length} is past the largest file");
        if (!Enum.IsDefined(access) || !Enum.IsDefined(mode) || !Enum.IsDefined(pages))
            throw new DaxFsException(Errno.EINVAL, $"mapping access {access} / mode {mode} / pages {pages} is invalid");
        if (mode == MapMode.Sync && _page)
            throw new DaxFsException(Errno.EOPNOTSUPP, "synchronous mappings need a pmem device (MAP_SYNC's EOPNOTSUPP): this device is " +
                $"Page-granular ({_dev.Info.GranularityReason})");
        if (access == MapAccess.ReadWrite && _dev.IsReadOnly)
            throw new DaxFsException(Errno.EROFS, "the volume is read-only");
        Inode i = GetRegular(ino);
        EnsureBackingProbed();
        EnterWrite(i);
        try
        {
            long size = i.Rec.Size;
            if (access == MapAccess.Read && offset + length > size)
                throw new DaxFsException(Errno.ENXIO, $"a read-only mapping of [{offset}, +{length}) reaches past the end of file ({size})");
            long start = offset & ~(long)(Layout.BlockSize - 1);
            long end = (offset + length + Layout.BlockSize - 1) & ~(long)(Layout.BlockSize - 1);
            if (access == MapAccess.ReadWrite)
                AllocateForMapping(i, start, end, offset + length);
            List<MapPiece> pieces = PlanPieces(i, start, end);
            int runs = pieces.Count;
            // Reading /proc/self/maps costs about a microsecond per mapping the process has (hundreds for the runtime
            // alone): only a window of many runs could pass the limit where a few would not, so only those check first.
            // A window of a few runs past the limit still fails cleanly (mmap's ENOMEM, below).
            var (limit, used) = runs > ManyRuns ? PmemWindow.MapCountLimit() : (long.MaxValue, 0);
            if (used + runs + 64 > limit)
                throw new DaxFsException(Errno.ENOMEM, $"mapping [{offset}, +{length}) needs {runs} separate kernel mappings (its extents are not contiguous); " +
                    $"with {used} in use the process would pass vm.max_map_count ({limit})");
            PmemWindow window = PmemWindow.Reserve(_dev, end - start, start, access == MapAccess.ReadWrite, pages == MapPages.Largest);
            DaxMapping m;
            try
            {
                foreach (MapPiece p in pieces)
                {
                    if (p.DevOffset >= 0)
                        window.MapDevice(p.WindowOffset, p.DevOffset, p.Length);
                    else
                        window.MapZeros(p.WindowOffset, p.Length);
                }
                long planned = CountGranularity(pieces, start, end, pages == MapPages.Small);
                m = new DaxMapping(this, i, offset, length, access, mode, window, start, pieces, planned);
                if (access == MapAccess.ReadWrite && mode == MapMode.Async)
                    StartDirtyTracking(m);
            }
            catch (Exception e) when (e is PmemException or DaxFsException)
            {
                window.Dispose();
                throw e is DaxFsException ? e : new DaxFsException(((PmemException)e).Errno is > 0 and var n ? (Errno)n : Errno.EIO, e.Message, e);
            }
            (i.Mappings ??= []).Add(m);
            i.Pins++;
            return m;
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <summary>A writable mapping: every hole and unwritten block in [start, end) becomes a zeroed, written block, and
    /// the size grows to <paramref name="newEnd"/> if it is past the end; committed before Map returns.</summary>
    private void AllocateForMapping(Inode i, long start, long end, long newEnd)
    {
        long b0 = start >> Layout.BlockShift, b1 = end >> Layout.BlockShift;
        long holes = CountHoles(i, b0, b1 - b0);
        long unwritten = 0; // unwritten extents: one conversion record each
        for (long b = b0; b < b1;)
        {
            var (kind, _, n) = i.Map!.Lookup(b, b1 - b);
            if (kind == MapKind.Unwritten)
                unwritten++;
            b += n;
        }
        long size = i.Rec.Size;
        if (holes == 0 && unwritten == 0 && newEnd <= size)
            return;
        using var tx = Tx.Begin(this);
        // Log records: at most one per allocated run (2 × holes is generous), one per unwritten extent converted.
        tx.Reserve(holes + LogBlocksFor((2 * holes + unwritten + 8) * 32));
        tx.BeginChanges();
        bool aligned = Math.Max(size, newEnd) >= Layout.GroupBytes;
        for (long b = b0; b < b1;)
        {
            var (kind, dev, n) = i.Map!.Lookup(b, b1 - b);
            if (kind == MapKind.Hole)
            {
                foreach (BlockRun run in tx.Allocate(n, i.Map.ContinuationHint(b), aligned, b))
                {
                    OrderedFill(tx, run.Start * Layout.BlockSize, run.Count * Layout.BlockSize, 0);
                    i.Map.Map(b, run.Count, run.Start, unwritten: false);
                    i.Rec.Blocks += run.Count;
                    AppendLog(tx, i, new LogRecord(LogRecordType.ExtentMap, 0, (ulong)b, (ulong)run.Start, (ulong)run.Count, null));
                    b += run.Count;
                }
                continue;
            }
            if (kind == MapKind.Unwritten)
            {
                OrderedFill(tx, dev * Layout.BlockSize, n * Layout.BlockSize, 0);
                i.Map.Convert(b, n);
                AppendLog(tx, i, new LogRecord(LogRecordType.ExtentConvert, 0, (ulong)b, (ulong)n, 0, null));
            }
            b += n;
        }
        if (newEnd > size)
        {
            ZeroTailForExtension(tx, i, size, newEnd);
            i.Rec.Size = newEnd;
        }
        i.Rec.MtimeNs = i.Rec.CtimeNs = NowNs();
        tx.Touch(i);
        MaybeCompact(tx, i);
        tx.Commit();
    }

    /// <summary>The window's runs: device-backed runs merged where the device offsets continue, zero pages for holes
    /// and unwritten extents (read mappings only have those).</summary>
    private static List<MapPiece> PlanPieces(Inode i, long start, long end)
    {
        var pieces = new List<MapPiece>();
        IomapLoop.Iterate(i.Map!, start, end - start, IomapIntent.Map, e =>
        {
            long w = e.FileOffset - start;
            long dev = e.Kind == MapKind.Mapped ? e.DevOffset : -1;
            if (pieces.Count > 0)
            {
                MapPiece last = pieces[^1];
                bool continues = dev < 0 ? last.DevOffset < 0 : last.DevOffset >= 0 && last.DevOffset + last.Length == dev;
                if (continues && last.WindowOffset + last.Length == w)
                {
                    last.Length += e.Length;
                    pieces[^1] = last;
                    return e.Length;
                }
            }
            pieces.Add(new MapPiece(w, dev, e.Length));
            return e.Length;
        });
        return pieces;
    }

    /// <summary>Counts 2 MiB units (PMD) and 4 KiB pages (PTE) of a new mapping, with each fallback's reason; returns
    /// the bytes planned as PMD (none when <paramref name="small"/>: the mapping asked for 4 KiB pages).</summary>
    private long CountGranularity(List<MapPiece> pieces, long start, long end, bool small)
    {
        long planned = 0, pte = 0;
        long firstUnit = start / Pmd * Pmd;
        for (long u = firstUnit; u < end; u += Pmd)
        {
            long a = Math.Max(u, start), b = Math.Min(u + Pmd, end);
            bool device = false;
            MapPiece? whole = null;
            foreach (MapPiece p in pieces)
            {
                long ps = start + p.WindowOffset, pe = ps + p.Length;
                if (pe <= a || ps >= b || p.DevOffset < 0)
                    continue;
                device = true;
                if (ps <= u && pe >= u + Pmd)
                    whole = p;
            }
            if (!device)
                continue;
            long pages = (b - a) / Layout.BlockSize;
            if (a != u || b != u + Pmd)
                Interlocked.Increment(ref _fbFile);
            else if (whole is not { } w)
                Interlocked.Increment(ref _fbShort);
            else if ((w.DevOffset + (u - start - w.WindowOffset)) % Pmd != 0)
                Interlocked.Increment(ref _fbExtent);
            else if (_backingHuge == 0)
                Interlocked.Increment(ref _fbNoHuge);
            else if (small)
                Interlocked.Increment(ref _smallRequested);
            else
            {
                Interlocked.Increment(ref _pmdMapped);
                planned += Pmd;
                continue;
            }
            pte += pages;
        }
        Interlocked.Add(ref _pteMapped, pte);
        return planned;
    }

    /// <summary>Once per volume: does the device's backing give 2 MiB pages? (A 2 MiB-aligned window over the data
    /// area, read-mapped, checked in /proc/self/smaps.)</summary>
    private void EnsureBackingProbed()
    {
        if (_backingHuge >= 0)
            return;
        lock (_mapLock)
        {
            if (_backingHuge >= 0)
                return;
            long dev = (_sb.DataStart * Layout.BlockSize + Pmd - 1) / Pmd * Pmd;
            if (dev + Pmd > _sb.DataEnd * Layout.BlockSize)
            {
                _backingHuge = 0;
                return;
            }
            try
            {
                using PmemWindow w = PmemWindow.Reserve(_dev, Pmd, 0, writable: false);
                w.MapDevice(0, dev, Pmd);
                _backingHuge = w.HugeMappedBytes() >= Pmd ? 1 : 0;
            }
            catch (PmemException)
            {
                _backingHuge = 0;
            }
        }
    }

    /// <summary>Starts dirty tracking for an async writable mapping: page write-protection if that policy is in force
    /// and the backing allows it, else marking its device extents.</summary>
    private void StartDirtyTracking(DaxMapping m)
    {
        EnsureDirtyTracking();
        if (_writeTracker is not null)
        {
            try
            {
                _writeTracker.Track(m.Window.Address, m.Window.Length);
                m.PageTracked = true;
                return;
            }
            catch (PmemException e)
            {
                _pageTrackingUnavailable = e.Message;
            }
        }
        lock (_mapLock)
        {
            _mapTracker ??= new DirtyExtentTracker(_dev);
            foreach (MapPiece p in m.Pieces)
            {
                if (p.DevOffset < 0)
                    continue;
                _mapTracker.MarkDirty(p.DevOffset, p.Length);
                for (long e = p.DevOffset / _mapTracker.ExtentSize; e <= (p.DevOffset + p.Length - 1) / _mapTracker.ExtentSize; e++)
                    if (m.DirtyExtents.Add((int)e))
                        _extentUsers[(int)e] = _extentUsers.GetValueOrDefault((int)e) + 1;
            }
        }
    }

    private void EnsureDirtyTracking()
    {
        if (_options.DirtyTracking == DirtyTracking.Extent || _writeTracker is not null || _pageTrackingUnavailable is not null)
            return;
        lock (_mapLock)
        {
            if (_writeTracker is not null || _pageTrackingUnavailable is not null)
                return;
            if (_dev.Kind == DeviceKind.DeviceDax || _dev.Info.MapSync)
            {
                _pageTrackingUnavailable = "userfaultfd write protection does not apply to DAX mappings (device-dax or MAP_SYNC files)";
                return;
            }
            string why;
            _writeTracker = _options.DirtyTracking == DirtyTracking.PageFault ? PageFaultLog.TryOpen(out why) : PageWriteTracker.TryOpen(out why);
            if (_writeTracker is null)
                _pageTrackingUnavailable = why;
        }
    }

    /// <summary>fsync's part for mappings: writes back what the file's async writable mappings may have dirtied
    /// (marked extents, or the pages the kernel saw written) and drains.</summary>
    private void FlushMappings(Inode i)
    {
        List<DaxMapping>? maps;
        EnterRead(i);
        try
        {
            maps = i.Mappings?.Where(m => m.Access == MapAccess.ReadWrite && m.Mode == MapMode.Async).ToList();
        }
        finally
        {
            i.Lock.ExitReadLock();
        }
        if (maps is null || maps.Count == 0)
            return;
        var extents = new HashSet<int>();
        foreach (DaxMapping m in maps)
        {
            if (m.PageTracked)
                FlushWrittenPages(m);
            else
                extents.UnionWith(m.DirtyExtents);
        }
        foreach (int e in extents)
            FlushExtent(e);
        _dev.Drain();
    }

    /// <summary>Writes back the pages of <paramref name="m"/> written since the last look (and protects them again).</summary>
    private void FlushWrittenPages(DaxMapping m)
    {
        var written = new List<(long Offset, long Length)>();
        _writeTracker!.TakeWritten(m.Window.Address, m.Window.Length, written);
        foreach (var (off, len) in written)
        {
            Interlocked.Add(ref _pagesFlushed, len / Layout.BlockSize);
            foreach (MapPiece p in m.Pieces)
            {
                long a = Math.Max(off, p.WindowOffset), b = Math.Min(off + len, p.WindowOffset + p.Length);
                if (a < b && p.DevOffset >= 0)
                    _dev.Flush(p.DevOffset + (a - p.WindowOffset), b - a);
            }
        }
    }

    private void FlushExtent(int e)
    {
        long s = e * _mapTracker!.ExtentSize;
        long len = Math.Min(_mapTracker.ExtentSize, _dev.Length - s);
        _dev.Flush(s, len);
        _mapTracker.CountFlushed(1);
    }

    /// <summary>Unmaps: an async writable mapping is written back first and its extents marked clean (unless another
    /// live mapping still covers them); the window is unmapped and the inode unpinned.</summary>
    internal void Unmap(DaxMapping m)
    {
        Inode i = m.Inode;
        try
        {
            if (m.Access == MapAccess.ReadWrite && m.Mode == MapMode.Async && _failed is null && _disposed == 0)
            {
                if (m.PageTracked)
                {
                    FlushWrittenPages(m);
                    _writeTracker!.Untrack(m.Window.Address, m.Window.Length);
                }
                else
                {
                    foreach (int e in m.DirtyExtents)
                        FlushExtent(e);
                    lock (_mapLock)
                    {
                        foreach (int e in m.DirtyExtents)
                        {
                            int left = _extentUsers.GetValueOrDefault(e) - 1;
                            if (left > 0)
                                _extentUsers[e] = left;
                            else
                            {
                                _extentUsers.Remove(e);
                                long s = e * _mapTracker!.ExtentSize;
                                _mapTracker.MarkClean(s, Math.Min(_mapTracker.ExtentSize, _dev.Length - s));
                            }
                        }
                    }
                }
                _dev.Drain();
                if (_page)
                    Sync();
            }
        }
        finally
        {
            m.Window.Dispose();
            if (!i.Freed)
            {
                i.Lock.EnterWriteLock();
                try
                {
                    i.Mappings?.Remove(m);
                }
                finally
                {
                    i.Lock.ExitWriteLock();
                }
            }
            Unpin(i.Ino);
        }
    }

    /// <summary>Whether a live mapping of the file covers any of [start, end) (bytes).</summary>
    private static bool MappedOver(Inode i, long start, long end)
    {
        if (i.Mappings is not { Count: > 0 } maps)
            return false;
        foreach (DaxMapping m in maps)
            if (m.WindowFileOffset < end && m.WindowFileOffset + m.Window.Length > start)
                return true;
        return false;
    }

    /// <summary>EBUSY when an operation would move or free blocks of [start, end) under a live mapping.</summary>
    private static void ThrowIfMapped(Inode i, long start, long end, string what)
    {
        if (MappedOver(i, start, end))
            throw new DaxFsException(Errno.EBUSY, $"{what} of inode {i.Ino} would move or free blocks under a live mapping");
    }

    /// <summary>After blocks of [start, end) were allocated or written, the zero pages of read mappings over them
    /// are replaced by the file's blocks (a DAX fault handler would refault them).</summary>
    private void RefreshMappings(Inode i, long start, long end)
    {
        if (i.Mappings is not { Count: > 0 } maps)
            return;
        foreach (DaxMapping m in maps)
        {
            for (int k = 0; k < m.Pieces.Count; k++)
            {
                MapPiece p = m.Pieces[k];
                long ps = m.WindowFileOffset + p.WindowOffset, pe = ps + p.Length;
                if (p.DevOffset >= 0 || pe <= start || ps >= end)
                    continue;
                // Re-plan this zero piece and map whatever is now written.
                List<MapPiece> now = PlanPieces(i, ps, pe);
                foreach (MapPiece q in now)
                    if (q.DevOffset >= 0)
                        m.Window.MapDevice(p.WindowOffset + q.WindowOffset, q.DevOffset, q.Length);
                m.Pieces.RemoveAt(k);
                foreach (MapPiece q in now)
                    m.Pieces.Insert(k++, new MapPiece(p.WindowOffset + q.WindowOffset, q.DevOffset, q.Length));
                k--;
            }
        }
    }
}
