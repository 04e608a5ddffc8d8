namespace DaxFs.Pmem;

/// <summary>DirtyExtentTracker -- seed 000's coarse dirty tracking: the device is cut into extents (2 MiB by
/// default) and a range that may hold unflushed stores marks the extents it covers. <see cref="FlushDirty"/>
/// writes back only marked extents, so its cost grows with what was dirtied, never with the device size.</summary>
/// <remarks>Thread-safe. Marking an already-dirty extent is one atomic OR; the first mark of an extent also
/// appends it to the dirty list that flushing walks.</remarks>
public sealed class DirtyExtentTracker
{
    private readonly PmemDevice _device;
    private readonly long _extentSize;
    private readonly int _extentCount;
    private readonly ulong[] _bits;
    private readonly object _listLock = new();
    private List<int> _dirty = [];
    private long _extentsFlushed;

    /// <summary>Default extent size: 2 MiB, one PMD.</summary>
    public const long DefaultExtentSize = 2 << 20;

    /// <summary>Tracks <paramref name="device"/> in <paramref name="extentCount"/> extents (null: as many
    /// 2 MiB extents as cover it). Extent sizes are rounded up to whole 4 KiB pages.</summary>
    public DirtyExtentTracker(PmemDevice device, int? extentCount = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        _device = device;
        long length = device.Length;
        if (extentCount is { } n)
        {
            if (n <= 0)
                throw new ArgumentOutOfRangeException(nameof(extentCount), $"extent count must be positive, not {n}");
            _extentSize = Math.Max(4096, (length + n - 1) / n + 4095 & ~4095L);
        }
        else
        {
            _extentSize = DefaultExtentSize;
        }
        _extentCount = (int)((length + _extentSize - 1) / _extentSize);
        _bits = new ulong[(_extentCount + 63) / 64];
    }

    /// <summary>Bytes per extent.</summary>
    public long ExtentSize => _extentSize;

    /// <summary>Number of extents the device is cut into.</summary>
    public int ExtentCount => _extentCount;

    /// <summary>Extents written back by <see cref="FlushDirty"/> since creation (what tests count instead of time).</summary>
    public long ExtentsFlushed => Interlocked.Read(ref _extentsFlushed);

    /// <summary>Adds to <see cref="ExtentsFlushed"/> for extents a caller wrote back itself.</summary>
    public void CountFlushed(int extents) => Interlocked.Add(ref _extentsFlushed, extents);

    /// <summary>Extents currently marked dirty.</summary>
    public int DirtyCount
    {
        get
        {
            int c = 0;
            foreach (ulong w in _bits)
                c += System.Numerics.BitOperations.PopCount(w);
            return c;
        }
    }

    /// <summary>Whether the extent holding <paramref name="offset"/> is marked.</summary>
    public bool IsDirty(long offset)
    {
        int e = ExtentOf(offset);
        return (Volatile.Read(ref _bits[e >> 6]) & (1UL << e)) != 0;
    }

    /// <summary>Marks the extents covering [offset, offset+length). Call it after the stores it covers (or before
    /// the mapping that will make them), never between a flush and the store it should cover.</summary>
    public void MarkDirty(long offset, long length)
    {
        if (!Range(offset, length, out int first, out int last))
            return;
        for (int e = first; e <= last; e++)
        {
            ulong bit = 1UL << e;
            if ((Volatile.Read(ref _bits[e >> 6]) & bit) != 0)
                continue;
            if ((Interlocked.Or(ref _bits[e >> 6], bit) & bit) == 0)
            {
                lock (_listLock)
                    _dirty.Add(e);
            }
        }
    }

    /// <summary>Clears the marks of the extents covering [offset, offset+length) without flushing them.</summary>
    public void MarkClean(long offset, long length)
    {
        if (!Range(offset, length, out int first, out int last))
            return;
        for (int e = first; e <= last; e++)
            Interlocked.And(ref _bits[e >> 6], ~(1UL << e));
    }

    /// <summary>Writes back every dirty extent and drains once; with <paramref name="clean"/> the extents are
    /// unmarked first (a store that races the flush marks its extent again). Without it they stay marked, as the
    /// extents of a live writable mapping must. Returns the number of extents flushed. Cost: O(dirty extents).</summary>
    public int FlushDirty(bool clean = false)
    {
        List<int> work;
        lock (_listLock)
        {
            work = _dirty;
            _dirty = new List<int>(work.Count);
        }
        int flushed = 0, processed = 0;
        try
        {
            for (; processed < work.Count; processed++)
            {
                int e = work[processed];
                ulong bit = 1UL << e;
                bool wasDirty = clean
                    ? (Interlocked.And(ref _bits[e >> 6], ~bit) & bit) != 0
                    : (Volatile.Read(ref _bits[e >> 6]) & bit) != 0;
                if (!wasDirty)
                    continue; // marked clean since it was listed
                long start = (long)e * _extentSize;
                _device.Flush(start, Math.Min(_extentSize, _device.Length - start));
                flushed++;
            }
            _device.Drain();
        }
        finally
        {
            // Relist what is still marked and nobody else listed: kept extents (not cleaning), and on failure every
            // extent not reached. An extent cleaned here and marked again was listed by MarkDirty itself.
            lock (_listLock)
            {
                for (int i = 0; i < work.Count; i++)
                {
                    int e = work[i];
                    if ((!clean || i >= processed) && (Volatile.Read(ref _bits[e >> 6]) & (1UL << e)) != 0)
                        _dirty.Add(e);
                }
            }
            Interlocked.Add(ref _extentsFlushed, flushed);
        }
        return flushed;
    }

    /// <summary>The extent index holding a device offset.</summary>
    private int ExtentOf(long offset)
    {
        if ((ulong)offset >= (ulong)_device.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"offset {offset} is outside the {_device.Length}-byte device");
        return (int)(offset / _extentSize);
    }

    /// <summary>First and last extent of a range; false for an empty range; throws for a bad one.</summary>
    private bool Range(long offset, long length, out int first, out int last)
    {
        if (offset < 0 || length < 0 || length > _device.Length - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, +{length}) is outside the {_device.Length}-byte device");
        first = last = 0;
        if (length == 0)
            return false;
        first = (int)(offset / _extentSize);
        last = (int)((offset + length - 1) / _extentSize);
        return true;
    }
}
