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
/// unmap and convert records, which replay through these same operations.
/// <para>Stored as a list of sorted chunks of at most <see cref="ChunkMax"/> extents, so that a file fragmented
/// into a million extents still inserts and removes in O(chunk + chunks) rather than moving the whole array.</para></summary>
internal sealed class ExtentMap
{
    // 64 extents of 32 bytes: inserting or removing in a chunk moves at most 2 KiB.
    private const int ChunkMax = 64;
    private readonly List<Chunk> _chunks = [];
    private readonly List<long> _ends = []; // FileEnd of each chunk's last extent: the chunk search reads one array
    private int _count;
    private int _hintChunk = -1, _hintIndex; // the last position found: a call's lookups all fall on the same extent

    /// <summary>Number of extents.</summary>
    public int Count => _count;

    /// <summary>Blocks mapped (written or unwritten).</summary>
    public long MappedBlocks { get; private set; }

    /// <summary>The extents in file order.</summary>
    public IEnumerable<Extent> Extents
    {
        get
        {
            foreach (Chunk c in _chunks)
                for (int i = 0; i < c.Count; i++)
                    yield return c[i];
        }
    }

    /// <summary>Appends the extents in file order to <paramref name="list"/> (no enumerator to allocate).</summary>
    public void CopyTo(List<Extent> list)
    {
        foreach (Chunk c in _chunks)
            for (int i = 0; i < c.Count; i++)
                list.Add(c[i]);
    }

    /// <summary>The extent holding <paramref name="fileBlock"/>, or the gap up to the next extent (a hole, clipped
    /// to <paramref name="maxCount"/>): kind, device block (for mapped/unwritten) and length in blocks.</summary>
    public (MapKind Kind, long DevBlock, long Count) Lookup(long fileBlock, long maxCount)
    {
        var (c, i) = Find(fileBlock);
        if (c < _chunks.Count)
        {
            Extent e = _chunks[c][i];
            if (e.FileBlock <= fileBlock)
            {
                long off = fileBlock - e.FileBlock;
                return (e.Unwritten ? MapKind.Unwritten : MapKind.Mapped, e.DevBlock + off, Math.Min(maxCount, e.Count - off));
            }
            return (MapKind.Hole, 0, Math.Min(maxCount, e.FileBlock - fileBlock));
        }
        return (MapKind.Hole, 0, maxCount);
    }

    /// <summary>The device block right after the last mapped block at or before <paramref name="fileBlock"/> -- where
    /// an append should continue to stay contiguous; -1 if nothing is mapped before it.</summary>
    public long ContinuationHint(long fileBlock)
    {
        var (c, i) = Find(fileBlock);
        if (c < _chunks.Count && _chunks[c][i].FileBlock <= fileBlock)
            return _chunks[c][i].DevBlock + (fileBlock - _chunks[c][i].FileBlock);
        if (!Prev(ref c, ref i))
            return -1;
        Extent p = _chunks[c][i];
        return p.DevBlock + p.Count + (fileBlock - p.FileEnd);
    }

    /// <summary>Maps [fileBlock, +count) to device blocks from <paramref name="devBlock"/>; whatever was mapped there
    /// is returned (device runs the caller frees).</summary>
    public List<Extent> Map(long fileBlock, long count, long devBlock, bool unwritten)
    {
        var displaced = new List<Extent>();
        Map(fileBlock, count, devBlock, unwritten, displaced);
        return displaced;
    }

    /// <summary>As <see cref="Map(long, long, long, bool)"/>, appending what was mapped there to
    /// <paramref name="displaced"/> (the write path reuses one list per transaction).</summary>
    public void Map(long fileBlock, long count, long devBlock, bool unwritten, List<Extent> displaced)
    {
        if (TryReplace(new Extent(fileBlock, devBlock, count, unwritten), displaced))
            return;
        Unmap(fileBlock, count, displaced);
        Insert(new Extent(fileBlock, devBlock, count, unwritten));
    }

    /// <summary>Copy-on-write of exactly one extent (the usual case in a file fragmented by random overwrites): the new
    /// extent takes the old one's place when it continues neither neighbour -- what Unmap + Insert would leave, without
    /// moving the chunk's extents out and back.</summary>
    private bool TryReplace(Extent e, List<Extent> displaced)
    {
        var (c, i) = Find(e.FileBlock);
        if (c >= _chunks.Count || e.Count <= 0)
            return false;
        Chunk chunk = _chunks[c];
        Extent old = chunk[i];
        if (old.FileBlock != e.FileBlock || old.Count != e.Count)
            return false;
        int pc = c, pi = i;
        if (Prev(ref pc, ref pi) && Continues(_chunks[pc][pi], e))
            return false;
        int nc = c, ni = i;
        if (Next(ref nc, ref ni) && Continues(e, _chunks[nc][ni]))
            return false;
        displaced.Add(old);
        Set(c, i, e);
        return true;
    }

    /// <summary>Whether <paramref name="b"/> continues <paramref name="a"/> in file and on the device, in the same state.</summary>
    private static bool Continues(Extent a, Extent b) => a.FileEnd == b.FileBlock && a.DevBlock + a.Count == b.DevBlock && a.Unwritten == b.Unwritten;

    /// <summary>Removes the mapping of [fileBlock, +count), splitting extents at the edges; returns what was there.</summary>
    public List<Extent> Unmap(long fileBlock, long count)
    {
        var removed = new List<Extent>();
        Unmap(fileBlock, count, removed);
        return removed;
    }

    /// <summary>As <see cref="Unmap(long, long)"/>, appending what was there to <paramref name="removed"/>.</summary>
    public void Unmap(long fileBlock, long count, List<Extent> removed)
    {
        if (count <= 0)
            return;
        long end = fileBlock + count;
        var (c, i) = Find(fileBlock);
        while (c < _chunks.Count)
        {
            Chunk chunk = _chunks[c];
            Extent e = chunk[i];
            if (e.FileBlock >= end)
                break;
            if (e.FileBlock < fileBlock)
            {
                // Straddles the start: keep the head, and the tail too if it straddles the end as well.
                long keep = fileBlock - e.FileBlock;
                Set(c, i, e with { Count = keep });
                if (e.FileEnd > end)
                {
                    long cut = end - e.FileBlock;
                    removed.Add(new Extent(fileBlock, e.DevBlock + keep, end - fileBlock, e.Unwritten));
                    MappedBlocks -= end - fileBlock;
                    InsertAt(c, i + 1, new Extent(end, e.DevBlock + cut, e.Count - cut, e.Unwritten));
                    break;
                }
                removed.Add(new Extent(fileBlock, e.DevBlock + keep, e.Count - keep, e.Unwritten));
                MappedBlocks -= e.Count - keep;
                if (!Next(ref c, ref i))
                    break;
                continue;
            }
            if (e.FileEnd > end)
            {
                long cut = end - e.FileBlock;
                removed.Add(e with { Count = cut });
                MappedBlocks -= cut;
                Set(c, i, new Extent(end, e.DevBlock + cut, e.Count - cut, e.Unwritten));
                break;
            }
            removed.Add(e);
            MappedBlocks -= e.Count;
            RemoveAt(ref c, ref i);
        }
    }

    /// <summary>Marks the unwritten blocks of [fileBlock, +count) written (their data was just stored).</summary>
    public void Convert(long fileBlock, long count) => SetState(fileBlock, count, MapKind.Unwritten, unwritten: false);

    /// <summary>Marks the written blocks of [fileBlock, +count) unwritten (zero range without moving data).</summary>
    public void MarkUnwritten(long fileBlock, long count) => SetState(fileBlock, count, MapKind.Mapped, unwritten: true);

    private void SetState(long fileBlock, long count, MapKind from, bool unwritten)
    {
        long end = fileBlock + count;
        long b = fileBlock;
        while (b < end)
        {
            var (kind, dev, n) = Lookup(b, end - b);
            if (kind == from)
                Map(b, n, dev, unwritten);
            b += n;
        }
    }

    /// <summary>Position of the first extent whose end is past <paramref name="fileBlock"/> ((chunks, 0) if none).</summary>
    private (int Chunk, int Index) Find(long fileBlock)
    {
        // The remembered position answers when its extent is the first one ending past fileBlock. The chunk is
        // checked against the chunk ends first (an array every lookup reads): a random lookup then rejects the hint
        // without touching the remembered chunk's extents, which are cold.
        int hc = _hintChunk, hi0 = _hintIndex;
        int lo;
        if ((uint)hc < (uint)_chunks.Count && fileBlock < _ends[hc] && (hc == 0 || _ends[hc - 1] <= fileBlock))
        {
            Chunk hch = _chunks[hc];
            if ((uint)hi0 < (uint)hch.Count && hch[hi0].FileEnd > fileBlock && (hi0 == 0 || hch[hi0 - 1].FileEnd <= fileBlock))
                return (hc, hi0);
            lo = hc; // the right chunk, another extent in it
        }
        else
        {
            lo = Sorted.FirstAbove<long>(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ends), fileBlock);
            if (lo == _chunks.Count)
                return (lo, 0);
        }
        int a = _chunks[lo].FirstEndingAfter(fileBlock);
        _hintChunk = lo;
        _hintIndex = a;
        return (lo, a);
    }

    private bool Next(ref int c, ref int i)
    {
        if (++i < _chunks[c].Count)
            return true;
        i = 0;
        return ++c < _chunks.Count;
    }

    private bool Prev(ref int c, ref int i)
    {
        if (c >= _chunks.Count)
        {
            if (_chunks.Count == 0)
                return false;
            c = _chunks.Count - 1;
            i = _chunks[c].Count - 1;
            return true;
        }
        if (--i >= 0)
            return true;
        if (--c < 0)
            return false;
        i = _chunks[c].Count - 1;
        return true;
    }

    /// <summary>Inserts at (c, i) (c == chunks means append), splitting a chunk that grows too big.</summary>
    private void InsertAt(int c, int i, Extent e)
    {
        _count++;
        if (_chunks.Count == 0)
        {
            _chunks.Add(new Chunk(e));
            _ends.Add(e.FileEnd);
            return;
        }
        if (c >= _chunks.Count)
        {
            c = _chunks.Count - 1;
            i = _chunks[c].Count;
        }
        Chunk chunk = _chunks[c];
        chunk.Insert(i, e);
        _ends[c] = chunk[^1].FileEnd;
        if (chunk.Count > ChunkMax)
        {
            Chunk tail = chunk.SplitAt(ChunkMax / 2);
            _chunks.Insert(c + 1, tail);
            _ends[c] = chunk[^1].FileEnd;
            _ends.Insert(c + 1, tail[^1].FileEnd);
        }
    }

    /// <summary>Removes the extent at (c, i); (c, i) then points at the next extent.</summary>
    private void RemoveAt(ref int c, ref int i)
    {
        _count--;
        Chunk chunk = _chunks[c];
        chunk.RemoveAt(i);
        if (chunk.Count == 0)
        {
            _chunks.RemoveAt(c);
            _ends.RemoveAt(c);
            i = 0;
            return;
        }
        _ends[c] = chunk[^1].FileEnd;
        if (i >= chunk.Count)
        {
            i = 0;
            c++;
        }
    }

    /// <summary>Replaces the extent at (c, i), keeping the chunk's end current.</summary>
    private void Set(int c, int i, Extent e)
    {
        Chunk chunk = _chunks[c];
        chunk[i] = e;
        if (i == chunk.Count - 1)
            _ends[c] = e.FileEnd;
    }

    /// <summary>Inserts an extent into a gap, merging with neighbours that continue it.</summary>
    private void Insert(Extent e)
    {
        MappedBlocks += e.Count;
        var (c, i) = Find(e.FileBlock);
        int pc = c, pi = i;
        if (Prev(ref pc, ref pi))
        {
            Extent p = _chunks[pc][pi];
            if (Continues(p, e))
            {
                if (!(c < _chunks.Count && Continues(e, _chunks[c][i])))
                {
                    // An append or a sequential copy-on-write: the extent before grows in place.
                    Set(pc, pi, p with { Count = p.Count + e.Count });
                    return;
                }
                e = new Extent(p.FileBlock, p.DevBlock, p.Count + e.Count, e.Unwritten);
                RemoveAt(ref pc, ref pi);
                (c, i) = (pc, pi);
            }
        }
        if (c < _chunks.Count)
        {
            Extent n = _chunks[c][i];
            if (Continues(e, n))
            {
                Set(c, i, e with { Count = e.Count + n.Count });
                return;
            }
        }
        InsertAt(c, i, e);
    }

    /// <summary>One sorted run of extents, with each extent's file end also in an array of its own: a search probes
    /// 8-byte ends (eight to a cache line) instead of 32-byte extents, so a lookup in a cold, fragmented map misses
    /// the cache fewer times. Arrays grow by doubling up to <see cref="ChunkMax"/> + 1 (a file of one extent keeps
    /// a few dozen bytes).</summary>
    private sealed class Chunk
    {
        private Extent[] _items;
        private long[] _ends;

        public Chunk(Extent e)
        {
            _items = new Extent[4];
            _ends = new long[4];
            _items[0] = e;
            _ends[0] = e.FileEnd;
            Count = 1;
        }

        private Chunk(Extent[] items, long[] ends, int count)
        {
            _items = items;
            _ends = ends;
            Count = count;
        }

        public int Count { get; private set; }

        public Extent this[int i]
        {
            get => (uint)i < (uint)Count ? _items[i] : throw new ArgumentOutOfRangeException(nameof(i));
            set
            {
                if ((uint)i >= (uint)Count)
                    throw new ArgumentOutOfRangeException(nameof(i));
                _items[i] = value;
                _ends[i] = value.FileEnd;
            }
        }

        /// <summary>Index of the first extent ending past <paramref name="fileBlock"/> (Count if none).</summary>
        public int FirstEndingAfter(long fileBlock) => Sorted.FirstAboveShort(_ends.AsSpan(0, Count), fileBlock);

        public void Insert(int i, Extent e)
        {
            if ((uint)i > (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(i));
            if (Count == _items.Length)
            {
                Array.Resize(ref _items, Math.Min(2 * _items.Length, ChunkMax + 1));
                Array.Resize(ref _ends, _items.Length);
            }
            Array.Copy(_items, i, _items, i + 1, Count - i);
            Array.Copy(_ends, i, _ends, i + 1, Count - i);
            _items[i] = e;
            _ends[i] = e.FileEnd;
            Count++;
        }

        public void RemoveAt(int i)
        {
            if ((uint)i >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(i));
            Count--;
            Array.Copy(_items, i + 1, _items, i, Count - i);
            Array.Copy(_ends, i + 1, _ends, i, Count - i);
        }

        /// <summary>Moves extents [at, Count) into a new chunk and returns it.</summary>
        public Chunk SplitAt(int at)
        {
            int n = Count - at;
            var items = new Extent[ChunkMax + 1];
            var ends = new long[ChunkMax + 1];
            Array.Copy(_items, at, items, 0, n);
            Array.Copy(_ends, at, ends, 0, n);
            Count = at;
            return new Chunk(items, ends, n);
        }
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
