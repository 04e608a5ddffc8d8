using System.Numerics;
using DaxFs.Format;

namespace DaxFs.Allocation;

/// <summary>An extent of device blocks.</summary>
/// <param name="Start">First block.</param>
/// <param name="Count">Number of blocks.</param>
internal readonly record struct BlockRun(long Start, long Count)
{
    public long End => Start + Count;
}

/// <summary>BlockAllocator -- free space of the data area, in DRAM (rebuilt from the inodes at mount, which is
/// what fsck recomputes). The area is cut into 2 MiB groups (512 blocks, aligned by device block number). Large
/// files take whole free groups, so their extents are 2 MiB-aligned and PMD-mappable; small files take space from
/// groups already in use, so that whole free groups survive aging. Every operation touches a handful of 512-bit
/// group bitmaps and two ordered sets of groups: nothing scans the device.</summary>
internal sealed class BlockAllocator
{
    private readonly long _dataStart, _dataEnd;
    private readonly ulong[] _bits;                     // 1 = free, one bit per device block
    private readonly int[] _groupFree;
    private readonly GroupSet _fullGroups;     // every data block of the group free, group of 512
    private readonly GroupSet _partialGroups;  // some but not all free
    private readonly object _lock = new();
    private long _free;
    private long _reserved;
    private readonly long _pool; // kept for calls that free space, so that a full volume can always be emptied

    /// <summary>An allocator over blocks [dataStart, dataEnd) with everything in use (mount marks free), keeping
    /// <paramref name="pool"/> blocks back for calls that free space.</summary>
    public BlockAllocator(long dataStart, long dataEnd, long pool = 0)
    {
        _dataStart = dataStart;
        _dataEnd = dataEnd;
        _bits = new ulong[(dataEnd + 63) / 64];
        _groupFree = new int[(dataEnd + Layout.BlocksPerGroup - 1) / Layout.BlocksPerGroup];
        _fullGroups = new GroupSet(_groupFree.Length);
        _pool = pool;
        _partialGroups = new GroupSet(_groupFree.Length);
    }

    /// <summary>Free blocks not promised to a call in progress, less the pool kept for calls that free space
    /// (what statfs reports as available).</summary>
    public long FreeBlocks { get { lock (_lock) return Math.Max(0, _free - _reserved - _pool); } }

    /// <summary>Blocks kept back for calls that free space (unlink, rmdir, truncate, punch, removexattr): their
    /// log records may need a block, and a full volume must still be emptiable.</summary>
    public long Pool => _pool;

    /// <summary>Promises <paramref name="count"/> blocks to a call; ENOSPC if they are not there. A call that frees
    /// space (<paramref name="freeing"/>) may also use the pool.</summary>
    public void Reserve(long count, bool freeing = false)
    {
        if (!TryReserve(count, freeing))
            throw new DaxFsException(Errno.ENOSPC, $"{count} blocks are needed and {FreeBlocks} are free");
    }

    /// <summary>Promises blocks if they are there.</summary>
    public bool TryReserve(long count, bool freeing = false)
    {
        lock (_lock)
        {
            if (count > _free - _reserved - (freeing ? 0 : _pool))
                return false;
            _reserved += count;
            return true;
        }
    }

    /// <summary>Returns an unused promise.</summary>
    public void Unreserve(long count)
    {
        lock (_lock)
        {
            if (count > _reserved)
                throw new InvalidOperationException($"unreserving {count} blocks of {_reserved}");
            _reserved -= count;
        }
    }

    /// <summary>Allocates blocks already reserved (cannot fail for lack of space), appending the runs to
    /// <paramref name="runs"/>.</summary>
    public void AllocateReserved(long count, long hint, bool aligned, long fileBlock, List<BlockRun> runs)
    {
        lock (_lock)
        {
            if (count > _reserved)
                throw new InvalidOperationException($"allocating {count} reserved blocks of {_reserved}");
            _reserved -= count;
            try
            {
                Allocate(count, hint, aligned, fileBlock, runs);
            }
            catch
            {
                _reserved += count;
                throw;
            }
        }
    }

    /// <summary>Returns blocks freed by a durable transaction and the unused part of its reservation, under one lock.</summary>
    public void Release(List<BlockRun> freed, long unreserve)
    {
        lock (_lock)
        {
            if (unreserve > _reserved)
                throw new InvalidOperationException($"unreserving {unreserve} blocks of {_reserved}");
            foreach (BlockRun r in freed)
                FreeLocked(r.Start, r.Count);
            _reserved -= unreserve;
        }
    }

    /// <summary>Blocks of the data area.</summary>
    public long TotalBlocks => _dataEnd - _dataStart;

    /// <summary>Free 2 MiB groups (what large files can still get aligned).</summary>
    public int FreeGroups { get { lock (_lock) return _fullGroups.Count; } }

    /// <summary>Marks every data block free (mkfs, and mount before claiming the blocks inodes own).</summary>
    public void FreeAll()
    {
        lock (_lock)
        {
            Array.Clear(_bits);
            Array.Clear(_groupFree);
            _fullGroups.Clear();
            _partialGroups.Clear();
            _free = 0;
            SetRange(_dataStart, _dataEnd - _dataStart, true);
        }
    }

    /// <summary>Claims blocks an inode owns (mount). False if any of them was already claimed or is outside the
    /// data area: two owners, or a bad pointer.</summary>
    public bool Claim(long start, long count)
    {
        lock (_lock)
        {
            if (count <= 0 || start < _dataStart || start > _dataEnd - count)
                return false;
            for (long b = start; b < start + count; b++)
                if (!IsFree(b))
                    return false;
            SetRange(start, count, false);
            return true;
        }
    }

    /// <summary>Whether a block is free.</summary>
    public bool IsFreeBlock(long block)
    {
        lock (_lock)
            return block >= _dataStart && block < _dataEnd && IsFree(block);
    }

    /// <summary>Allocates <paramref name="count"/> blocks, as few runs as it can: first the run continuing at
    /// <paramref name="hint"/> (appends stay contiguous), then -- when <paramref name="aligned"/> -- whole free 2 MiB
    /// groups placed so that file block f lands on a device block congruent to f modulo 512 (<paramref name="fileBlock"/>
    /// is the file block of the first block asked for), which is what a PMD mapping needs; otherwise space in partly
    /// used groups. All or nothing: ENOSPC changes nothing.</summary>
    public List<BlockRun> Allocate(long count, long hint, bool aligned, long fileBlock = 0)
    {
        var runs = new List<BlockRun>();
        Allocate(count, hint, aligned, fileBlock, runs);
        return runs;
    }

    /// <summary>As <see cref="Allocate(long, long, bool, long)"/>, appending the runs to <paramref name="runs"/>
    /// (the write path reuses one list per transaction).</summary>
    public void Allocate(long count, long hint, bool aligned, long fileBlock, List<BlockRun> runs)
    {
        if (count <= 0)
            return;
        int first = runs.Count;
        lock (_lock)
        {
            if (count > _free - _reserved)
                throw new DaxFsException(Errno.ENOSPC, $"{count} blocks were needed and {_free - _reserved} are free");
            long need = count;
            long gsz = Layout.BlocksPerGroup;
            // An aligned allocation only continues a run that keeps file and device blocks congruent.
            bool hintOk = hint >= _dataStart && hint < _dataEnd && IsFree(hint) && (!aligned || hint % gsz == fileBlock % gsz);
            if (hintOk)
                need -= Take(hint, need, runs);
            if (aligned)
            {
                while (need > 0 && _fullGroups.Count > 0)
                {
                    long f = fileBlock + (count - need);
                    long g = _fullGroups.Min;
                    long within = f % gsz;
                    need -= Take(g * gsz + within, Math.Min(need, gsz - within), runs);
                }
            }
            while (need > 0)
            {
                long g = _partialGroups.Count > 0 ? _partialGroups.Min : _fullGroups.Min;
                if (g < 0)
                    throw new InvalidOperationException("allocator free count disagrees with its groups");
                need -= TakeFromGroup(g, need, runs);
            }
            Merge(runs, first);
        }
    }

    /// <summary>Returns blocks to the free pool.</summary>
    public void Free(long start, long count)
    {
        lock (_lock)
            FreeLocked(start, count);
    }

    private void FreeLocked(long start, long count)
    {
        if (count <= 0 || start < _dataStart || start > _dataEnd - count)
            throw new InvalidOperationException($"freeing blocks [{start}, +{count}) outside the data area");
        for (long b = start; b < start + count; b++)
            if (IsFree(b))
                throw new InvalidOperationException($"block {b} freed twice");
        SetRange(start, count, true);
    }

    /// <summary>Takes the free run starting exactly at <paramref name="start"/>, up to <paramref name="max"/> blocks.</summary>
    private long Take(long start, long max, List<BlockRun> runs)
    {
        long n = 0;
        while (n < max && start + n < _dataEnd && IsFree(start + n))
            n++;
        if (n > 0)
        {
            SetRange(start, n, false);
            runs.Add(new BlockRun(start, n));
        }
        return n;
    }

    /// <summary>Takes free runs of group <paramref name="g"/>, first fit, up to <paramref name="max"/> blocks.</summary>
    private long TakeFromGroup(long g, long max, List<BlockRun> runs)
    {
        long lo = Math.Max(g * Layout.BlocksPerGroup, _dataStart), hi = Math.Min((g + 1) * Layout.BlocksPerGroup, _dataEnd);
        long taken = 0;
        long b = lo;
        while (b < hi && taken < max)
        {
            // Skip used blocks a word at a time.
            ulong word = _bits[b >> 6] >> (int)(b & 63);
            if (word == 0)
            {
                b = (b | 63) + 1;
                continue;
            }
            b += BitOperations.TrailingZeroCount(word);
            if (b >= hi)
                break;
            long n = 0;
            while (b + n < hi && n < max - taken && IsFree(b + n))
                n++;
            SetRange(b, n, false);
            runs.Add(new BlockRun(b, n));
            taken += n;
            b += n;
        }
        return taken;
    }

    private bool IsFree(long b) => (_bits[b >> 6] & (1UL << (int)(b & 63))) != 0;

    /// <summary>Sets a range free or used and keeps group counts and sets right.</summary>
    private void SetRange(long start, long count, bool free)
    {
        long end = start + count;
        long b = start;
        while (b < end)
        {
            long g = b / Layout.BlocksPerGroup;
            long gEnd = Math.Min(end, (g + 1) * Layout.BlocksPerGroup);
            int changed = (int)(gEnd - b);
            // Word at a time where the range covers whole words.
            while (b < gEnd)
            {
                int bitIndex = (int)(b & 63);
                int n = (int)Math.Min(64 - bitIndex, gEnd - b);
                ulong mask = (n == 64 ? ulong.MaxValue : ((1UL << n) - 1)) << bitIndex;
                if (free)
                    _bits[b >> 6] |= mask;
                else
                    _bits[b >> 6] &= ~mask;
                b += n;
            }
            _groupFree[g] += free ? changed : -changed;
            _free += free ? changed : -changed;
            UpdateGroup(g);
        }
    }

    private void UpdateGroup(long g)
    {
        long lo = Math.Max(g * Layout.BlocksPerGroup, _dataStart), hi = Math.Min((g + 1) * Layout.BlocksPerGroup, _dataEnd);
        long capacity = hi - lo;
        int f = _groupFree[g];
        bool whole = capacity == Layout.BlocksPerGroup;
        if (f == capacity && whole)
        {
            _fullGroups.Add(g);
            _partialGroups.Remove(g);
        }
        else if (f > 0)
        {
            _fullGroups.Remove(g);
            _partialGroups.Add(g);
        }
        else
        {
            _fullGroups.Remove(g);
            _partialGroups.Remove(g);
        }
    }

    /// <summary>Joins runs that touch (a hinted run followed by the next group, for instance).</summary>
    private static void Merge(List<BlockRun> runs, int first)
    {
        int w = first;
        for (int r = first + 1; r < runs.Count; r++)
        {
            if (runs[w].End == runs[r].Start)
                runs[w] = new BlockRun(runs[w].Start, runs[w].Count + runs[r].Count);
            else
                runs[++w] = runs[r];
        }
        if (runs.Count > first)
            runs.RemoveRange(w + 1, runs.Count - w - 1);
    }
}
