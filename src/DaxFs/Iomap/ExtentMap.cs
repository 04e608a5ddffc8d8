namespace DaxFs.Iomap;

/// <summary>One mapping of file blocks to device blocks.</summary>
/// <param name="FileBlock">First file block.</param>
/// <param name="DevBlock">First device block.</param>
/// <param name="Count">Blocks.</param>
/// <param name="Unwritten">Allocated but never written: reads as zeros (fallocate).</param>
internal readonly record struct Extent(long FileBlock, long DevBlock, long Count, bool Unwritten)
{
    public long FileEnd => FileBlock + Count;
}

/// <summary>ExtentMap -- a file's block map in DRAM: sorted, non-overlapping extents, neighbours merged when
/// they continue each other on the device with the same state. The on-media form is the inode's log of map,
/// unmap and convert records, which replay through these same operations.</summary>
internal sealed class ExtentMap
{
    private readonly List<Extent> _list = [];

    /// <summary>Number of extents.</summary>
    public int Count => _list.Count;

    /// <summary>Blocks mapped (written or unwritten).</summary>
    public long MappedBlocks { get; private set; }

    /// <summary>The extents in file order.</summary>
    public IReadOnlyList<Extent> Extents => _list;

    /// <summary>The extent holding <paramref name="fileBlock"/>, or the gap up to the next extent (a hole, clipped
    /// to <paramref name="maxCount"/>): kind, device block (for mapped/unwritten) and length in blocks.</summary>
    public (MapKind Kind, long DevBlock, long Count) Lookup(long fileBlock, long maxCount)
    {
        int i = IndexAtOrAfter(fileBlock);
        if (i < _list.Count && _list[i].FileBlock <= fileBlock)
        {
            Extent e = _list[i];
            long off = fileBlock - e.FileBlock;
            return (e.Unwritten ? MapKind.Unwritten : MapKind.Mapped, e.DevBlock + off, Math.Min(maxCount, e.Count - off));
        }
        long next = i < _list.Count ? _list[i].FileBlock : long.MaxValue;
        return (MapKind.Hole, 0, Math.Min(maxCount, next - fileBlock));
    }

    /// <summary>The device block right after the last mapped block at or before <paramref name="fileBlock"/> -- where
    /// an append should continue to stay contiguous; -1 if nothing is mapped before it.</summary>
    public long ContinuationHint(long fileBlock)
    {
        int i = IndexAtOrAfter(fileBlock);
        if (i < _list.Count && _list[i].FileBlock <= fileBlock)
            return _list[i].DevBlock + (fileBlock - _list[i].FileBlock);
        if (i == 0)
            return -1;
        Extent p = _list[i - 1];
        return p.DevBlock + p.Count + (fileBlock - p.FileEnd);
    }

    /// <summary>Maps [fileBlock, +count) to device blocks from <paramref name="devBlock"/>; whatever was mapped there
    /// is returned (device runs the caller frees).</summary>
    public List<Extent> Map(long fileBlock, long count, long devBlock, bool unwritten)
    {
        List<Extent> displaced = Unmap(fileBlock, count);
        Insert(new Extent(fileBlock, devBlock, count, unwritten));
        return displaced;
    }

    /// <summary>Removes the mapping of [fileBlock, +count), splitting extents at the edges; returns what was there.</summary>
    public List<Extent> Unmap(long fileBlock, long count)
    {
        var removed = new List<Extent>();
        if (count <= 0)
            return removed;
        long end = fileBlock + count;
        int i = IndexAtOrAfter(fileBlock);
        if (i < _list.Count && _list[i].FileBlock < fileBlock)
        {
            // Split the extent that straddles the start.
            Extent e = _list[i];
            long keep = fileBlock - e.FileBlock;
            _list[i] = e with { Count = keep };
            _list.Insert(i + 1, new Extent(fileBlock, e.DevBlock + keep, e.Count - keep, e.Unwritten));
            i++;
        }
        int first = i;
        while (i < _list.Count && _list[i].FileBlock < end)
        {
            Extent e = _list[i];
            if (e.FileEnd > end)
            {
                long cut = end - e.FileBlock;
                removed.Add(e with { Count = cut });
                _list[i] = new Extent(end, e.DevBlock + cut, e.Count - cut, e.Unwritten);
                MappedBlocks -= cut;
                break;
            }
            removed.Add(e);
            MappedBlocks -= e.Count;
            i++;
        }
        _list.RemoveRange(first, i - first); // an extent straddling the end was trimmed in place and stays
        return removed;
    }

    /// <summary>Marks the unwritten blocks of [fileBlock, +count) written (their data was just stored).</summary>
    public void Convert(long fileBlock, long count)
    {
        long end = fileBlock + count;
        long b = fileBlock;
        while (b < end)
        {
            var (kind, dev, n) = Lookup(b, end - b);
            if (kind == MapKind.Unwritten)
                Map(b, n, dev, unwritten: false);
            b += n;
        }
    }

    /// <summary>Marks the written blocks of [fileBlock, +count) unwritten (zero range without moving data).</summary>
    public void MarkUnwritten(long fileBlock, long count)
    {
        long end = fileBlock + count;
        long b = fileBlock;
        while (b < end)
        {
            var (kind, dev, n) = Lookup(b, end - b);
            if (kind == MapKind.Mapped)
                Map(b, n, dev, unwritten: true);
            b += n;
        }
    }

    /// <summary>Index of the first extent whose end is past <paramref name="fileBlock"/>.</summary>
    private int IndexAtOrAfter(long fileBlock)
    {
        int lo = 0, hi = _list.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_list[mid].FileEnd <= fileBlock)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>Inserts an extent into a gap, merging with neighbours that continue it.</summary>
    private void Insert(Extent e)
    {
        int i = IndexAtOrAfter(e.FileBlock);
        MappedBlocks += e.Count;
        if (i > 0)
        {
            Extent p = _list[i - 1];
            if (p.FileEnd == e.FileBlock && p.DevBlock + p.Count == e.DevBlock && p.Unwritten == e.Unwritten)
            {
                e = new Extent(p.FileBlock, p.DevBlock, p.Count + e.Count, e.Unwritten);
                _list.RemoveAt(--i);
            }
        }
        if (i < _list.Count)
        {
            Extent n = _list[i];
            if (e.FileEnd == n.FileBlock && e.DevBlock + e.Count == n.DevBlock && e.Unwritten == n.Unwritten)
            {
                e = e with { Count = e.Count + n.Count };
                _list.RemoveAt(i);
            }
        }
        _list.Insert(i, e);
    }
}

/// <summary>What a range of a file is backed by.</summary>
public enum MapKind
{
    /// <summary>Nothing: reads as zeros, takes no space.</summary>
    Hole,

    /// <summary>Allocated, never written: reads as zeros without touching the media.</summary>
    Unwritten,

    /// <summary>Allocated and written.</summary>
    Mapped,
}
