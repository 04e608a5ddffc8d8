using System.Reflection;
using DaxFs.Allocation;
using DaxFs.Format;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests.Allocation;

/// <summary>BlockAllocator on its own: allocate/free/claim/reserve/unreserve, ENOSPC and refused operations leaving
/// the state unchanged, 2 MiB groups (whole free groups for aligned requests, partly used ones filled first for
/// small ones), and a randomized comparison against a model that also checks the group sets the allocator keeps so
/// that it never scans.</summary>
public class BlockAllocatorTests(ITestOutputHelper output)
{
    private const long G = Layout.BlocksPerGroup;

    // An unaligned data area: a partial group at each end, ten whole groups between.
    private const long Start = 1000, End = 1024 + 10 * G + 13;

    /// <summary>Blocks kept back for calls that free space (the volume chooses; the unit tests keep some).</summary>
    private const long TestPool = 80;

    private static BlockAllocator Fresh(long start = Start, long end = End)
    {
        var a = new BlockAllocator(start, end, TestPool);
        a.FreeAll();
        return a;
    }

    /// <summary>Everything observable: free count, free groups, the bitmap, and the partial-group set.</summary>
    private static string State(BlockAllocator a)
    {
        var bits = new System.Text.StringBuilder();
        for (long b = Start - 2; b < End + 2; b++)
            bits.Append(a.IsFreeBlock(b) ? '1' : '0');
        return $"{a.FreeBlocks}/{a.FreeGroups}/{string.Join(",", PartialGroups(a))}/{bits}";
    }

    /// <summary>The allocator's set of partly free groups (private: it is what makes allocation O(groups touched)),
    /// whatever its representation (a sorted set, or a two-level bitmap with Contains).</summary>
    internal static long[] PartialGroups(BlockAllocator a)
    {
        FieldInfo f = typeof(BlockAllocator).GetField("_partialGroups", BindingFlags.NonPublic | BindingFlags.Instance)
            ?? throw new InvalidOperationException("BlockAllocator._partialGroups is gone: update the test's view of the group sets");
        object set = f.GetValue(a)!;
        if (set is SortedSet<long> sorted)
            return sorted.ToArray();
        MethodInfo contains = set.GetType().GetMethod("Contains", [typeof(long)])
            ?? throw new InvalidOperationException($"{set.GetType().Name} has no Contains(long)");
        var groupFree = (int[])typeof(BlockAllocator).GetField("_groupFree", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(a)!;
        var members = new List<long>();
        for (long g = 0; g < groupFree.Length; g++)
            if ((bool)contains.Invoke(set, [g])!)
                members.Add(g);
        return members.ToArray();
    }

    [Fact]
    public void NewAllocatorIsAllUsedUntilFreeAll()
    {
        var a = new BlockAllocator(Start, End, TestPool);
        Assert.Equal(0, a.FreeBlocks);
        Assert.Equal(0, a.FreeGroups);
        Assert.False(a.IsFreeBlock(Start));
        a.FreeAll();
        Assert.Equal(End - Start - a.Pool, a.FreeBlocks); // a pool is kept for calls that free space
        Assert.Equal(End - Start, a.TotalBlocks);
        Assert.Equal(TestPool, a.Pool);
        Assert.Equal(0, new BlockAllocator(Start, End).Pool);
        Assert.Equal(10, a.FreeGroups);
        Assert.Equal([Start / G, End / G], PartialGroups(a)); // the two cut groups are never "whole"
        Assert.False(a.IsFreeBlock(Start - 1));
        Assert.False(a.IsFreeBlock(End));
    }

    [Fact]
    public void SmallAllocationsFillPartlyUsedGroupsFirst()
    {
        BlockAllocator a = Fresh();
        List<BlockRun> r = a.Allocate(5, -1, aligned: false);
        Assert.Equal([new BlockRun(Start, 5)], r);
        Assert.Equal(10, a.FreeGroups);
        // The rest of the first (partial) group, then the last partial group, before any whole group is broken.
        long firstGroupLeft = 2 * G - Start - 5;
        r = a.Allocate(firstGroupLeft + 3, -1, aligned: false);
        Assert.Equal(firstGroupLeft + 3, r.Sum(x => x.Count));
        Assert.Equal(10, a.FreeGroups);
        Assert.Equal([new BlockRun(Start + 5, firstGroupLeft), new BlockRun(1024 + 10 * G, 3)], r);
    }

    [Fact]
    public void AlignedAllocationsTakeWholeGroups()
    {
        BlockAllocator a = Fresh();
        a.Allocate(3, -1, aligned: false); // something in a partial group
        List<BlockRun> r = a.Allocate(2 * G + 100, -1, aligned: true);
        Assert.Equal([new BlockRun(1024, 2 * G + 100)], r);
        Assert.Equal(0, r[0].Start % G);
        Assert.Equal(7, a.FreeGroups); // two taken whole, a third broken
        Assert.Contains(1024 / G + 2, PartialGroups(a));
    }

    [Fact]
    public void AlignedAllocationFallsBackToPartialGroupsWhenNoWholeGroupIsLeft()
    {
        BlockAllocator a = Fresh();
        a.Allocate(10 * G, -1, aligned: true);
        Assert.Equal(0, a.FreeGroups);
        long left = End - Start - 10 * G; // what is left (all of it inside the pool now)
        List<BlockRun> r = a.Allocate(left, -1, aligned: true);
        Assert.Equal(left, r.Sum(x => x.Count));
        Assert.Equal(0, a.FreeBlocks);
        Assert.Empty(PartialGroups(a));
    }

    [Fact]
    public void HintContinuesARun()
    {
        BlockAllocator a = Fresh();
        List<BlockRun> first = a.Allocate(10, -1, aligned: true);
        List<BlockRun> next = a.Allocate(20, first[0].End, aligned: true, fileBlock: 10);
        Assert.Equal([new BlockRun(first[0].End, 20)], next);
        // An aligned request continues a run only where file and device blocks stay congruent modulo 512.
        List<BlockRun> off = a.Allocate(5, next[0].End, aligned: true, fileBlock: 7);
        Assert.NotEqual(next[0].End, off[0].Start);
        Assert.Equal(7, off[0].Start % G);
        // A hint on a used block is ignored.
        List<BlockRun> other = a.Allocate(4, first[0].Start, aligned: false);
        Assert.DoesNotContain(other, x => x.Start < first[0].End + 20 && x.End > first[0].Start);
    }

    [Fact]
    public void EnospcLeavesTheStateUnchanged()
    {
        BlockAllocator a = Fresh();
        a.Allocate(777, -1, aligned: false);
        a.Reserve(100);
        string before = State(a);
        var e = Assert.Throws<DaxFsException>(() => a.Allocate(a.FreeBlocks + a.Pool + 1, -1, aligned: true));
        Assert.Equal(Errno.ENOSPC, e.Errno);
        Assert.Equal(before, State(a));
        e = Assert.Throws<DaxFsException>(() => a.Reserve(a.FreeBlocks + 1));
        Assert.Equal(Errno.ENOSPC, e.Errno);
        Assert.False(a.TryReserve(a.FreeBlocks + 1));
        Assert.Equal(before, State(a));
        // Reserved blocks are not for others: with everything reserved (the pool too, by a freeing call), a plain
        // allocation fails.
        a.Reserve(a.FreeBlocks + a.Pool, freeing: true);
        Assert.Equal(0, a.FreeBlocks);
        Assert.Throws<DaxFsException>(() => a.Allocate(1, -1, aligned: false));
        Assert.False(a.TryReserve(1, freeing: true));
    }

    [Fact]
    public void ReserveUnreserveAndAllocateReserved()
    {
        BlockAllocator a = Fresh();
        long total = a.FreeBlocks;
        // Only calls that free space may reserve into the pool.
        Assert.False(a.TryReserve(total + 1));
        Assert.True(a.TryReserve(total + 1, freeing: true));
        a.Unreserve(total + 1);
        a.Reserve(50);
        Assert.Equal(total - 50, a.FreeBlocks);
        Assert.True(a.TryReserve(10));
        Assert.Equal(total - 60, a.FreeBlocks);
        a.Unreserve(10);
        List<BlockRun> r = [new BlockRun(-5, 1)]; // runs are appended after what the list holds
        a.AllocateReserved(30, -1, aligned: false, 0, r);
        Assert.Equal(new BlockRun(-5, 1), r[0]);
        Assert.Equal(30, r.Skip(1).Sum(x => x.Count));
        Assert.Equal(total - 50, a.FreeBlocks); // 30 used + 20 still promised
        Assert.Throws<InvalidOperationException>(() => a.AllocateReserved(21, -1, aligned: false, 0, []));
        Assert.Throws<InvalidOperationException>(() => a.Unreserve(21));
        // A transaction's end: its freed runs and its unused reservation go back under one lock.
        Assert.Throws<InvalidOperationException>(() => a.Release([], 21));
        a.Release(r.Skip(1).Take(1).ToList(), 20);
        Assert.Equal(total - 30 + r[1].Count, a.FreeBlocks);
        // Reserved blocks can be allocated even when nothing else is free.
        BlockAllocator b = Fresh();
        b.Reserve(b.FreeBlocks + b.Pool, freeing: true);
        List<BlockRun> all = [];
        b.AllocateReserved(b.TotalBlocks, -1, aligned: true, 0, all);
        Assert.Equal(b.TotalBlocks, all.Sum(x => x.Count));
        Assert.Equal(0, b.FreeBlocks);
    }

    [Fact]
    public void FreeingTwiceOrOutsideIsRefusedAndChangesNothing()
    {
        BlockAllocator a = Fresh();
        List<BlockRun> r = a.Allocate(40, -1, aligned: true);
        a.Free(r[0].Start, 10);
        string before = State(a);
        Assert.Throws<InvalidOperationException>(() => a.Free(r[0].Start, 10));                 // all free already
        Assert.Throws<InvalidOperationException>(() => a.Free(r[0].Start + 5, 10));             // half free: nothing changes
        Assert.Throws<InvalidOperationException>(() => a.Free(Start - 1, 2));                   // outside the area
        Assert.Throws<InvalidOperationException>(() => a.Free(End - 1, 2));
        Assert.Throws<InvalidOperationException>(() => a.Free(r[0].Start + 20, 0));
        Assert.Equal(before, State(a));
        a.Free(r[0].Start + 10, 30);
        Assert.Equal(End - Start - a.Pool, a.FreeBlocks);
        Assert.Equal(10, a.FreeGroups); // the group is whole again
    }

    [Fact]
    public void ClaimIsAllOrNothing()
    {
        BlockAllocator a = Fresh();
        Assert.True(a.Claim(2000, 10));
        Assert.False(a.Claim(2000, 1));       // claimed twice
        string before = State(a);
        Assert.False(a.Claim(1995, 10));      // overlaps the first claim: nothing claimed
        Assert.False(a.Claim(Start - 1, 2));  // outside
        Assert.False(a.Claim(End - 1, 2));
        Assert.False(a.Claim(3000, 0));
        Assert.False(a.Claim(3000, -5));
        Assert.Equal(before, State(a));
        Assert.True(a.Claim(1995, 5));
        Assert.Equal(End - Start - 15 - a.Pool, a.FreeBlocks);
    }

    /// <summary>Random operations against a model: no block handed out twice, everything inside the data area,
    /// free counts, whole free groups and the partial-group set always exactly what the bitmap says.</summary>
    [Fact]
    public void RandomOperationsAgreeWithAModel()
    {
        int seed = Corruption.FuzzHarness.BaseSeed();
        output.WriteLine($"seed {seed} (DAXFS_FUZZ_SEED={seed} reruns it)");
        var rng = new Random(seed);
        long start = 700, end = 700 + 6 * G + 300;
        var a = new BlockAllocator(start, end, pool: rng.Next(0, 100));
        a.FreeAll();
        var used = new bool[end];
        var held = new List<BlockRun>();
        long reserved = 0;
        for (int step = 0; step < 4000; step++)
        {
            int op = rng.Next(10);
            string what = "";
            try
            {
                if (op < 4)
                {
                    long n = rng.Next(4) == 0 ? rng.Next(1, (int)(3 * G)) : rng.Next(1, 40);
                    bool aligned = rng.Next(2) == 0;
                    long hint = rng.Next(3) == 0 && held.Count > 0 ? held[rng.Next(held.Count)].End : -1;
                    what = $"Allocate({n}, {hint}, {aligned})";
                    long free = end - start - used.Count(u => u) - reserved; // a plain allocation may use the pool
                    if (n > free)
                    {
                        Assert.Equal(Errno.ENOSPC, Assert.Throws<DaxFsException>(() => a.Allocate(n, hint, aligned)).Errno);
                    }
                    else
                    {
                        List<BlockRun> runs = a.Allocate(n, hint, aligned);
                        Assert.Equal(n, runs.Sum(r => r.Count));
                        foreach (BlockRun r in runs)
                        {
                            for (long b = r.Start; b < r.End; b++)
                            {
                                Assert.True(b >= start && b < end, $"block {b} outside the data area");
                                Assert.False(used[b], $"block {b} handed out twice");
                                used[b] = true;
                            }
                            held.Add(r);
                        }
                    }
                }
                else if (op < 8 && held.Count > 0)
                {
                    int k = rng.Next(held.Count);
                    BlockRun r = held[k];
                    long off = rng.Next((int)r.Count), len = rng.Next(1, (int)(r.Count - off) + 1);
                    what = $"Free({r.Start + off}, {len})";
                    a.Free(r.Start + off, len);
                    for (long b = r.Start + off; b < r.Start + off + len; b++)
                        used[b] = false;
                    held.RemoveAt(k);
                    if (off > 0)
                        held.Add(new BlockRun(r.Start, off));
                    if (off + len < r.Count)
                        held.Add(new BlockRun(r.Start + off + len, r.Count - off - len));
                }
                else if (op == 8)
                {
                    long n = rng.Next(0, 200);
                    bool freeing = rng.Next(4) == 0;
                    what = $"TryReserve({n}, freeing: {freeing})";
                    long room = end - start - used.Count(u => u) - reserved - (freeing ? 0 : a.Pool);
                    bool ok = a.TryReserve(n, freeing);
                    Assert.Equal(n <= room, ok);
                    if (ok)
                        reserved += n;
                }
                else if (reserved > 0)
                {
                    long n = rng.NextInt64(1, reserved + 1);
                    what = $"Unreserve({n})";
                    a.Unreserve(n);
                    reserved -= n;
                }
                if (step % 5 == 0 || step == 3999)
                    CheckAgainstModel(a, used, start, end, reserved);
                else
                    Assert.Equal(Math.Max(0, end - start - used.Count(u => u) - reserved - a.Pool), a.FreeBlocks);
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                throw new InvalidOperationException($"seed {seed}, step {step}, {what}: {e.Message}", e);
            }
            catch (Xunit.Sdk.XunitException e)
            {
                throw new InvalidOperationException($"seed {seed}, step {step}, {what}: {e.Message}", e);
            }
        }
    }

    private static void CheckAgainstModel(BlockAllocator a, bool[] used, long start, long end, long reserved)
    {
        long free = 0;
        int wholeFree = 0;
        var partial = new List<long>();
        for (long g = start / G; g <= (end - 1) / G; g++)
        {
            long lo = Math.Max(g * G, start), hi = Math.Min((g + 1) * G, end);
            long f = 0;
            for (long b = lo; b < hi; b++)
            {
                bool isFree = a.IsFreeBlock(b);
                Assert.True(isFree == !used[b], $"block {b}: allocator says {(isFree ? "free" : "used")}");
                if (isFree)
                    f++;
            }
            free += f;
            if (f == G && hi - lo == G)
                wholeFree++;
            else if (f > 0)
                partial.Add(g);
        }
        Assert.Equal(Math.Max(0, free - reserved - a.Pool), a.FreeBlocks);
        Assert.Equal(wholeFree, a.FreeGroups);
        Assert.Equal(partial, PartialGroups(a));
    }

    /// <summary>A 4 GiB data area (2,048 groups): thousands of small allocations stay packed in the partly used
    /// groups (one group open at a time), large ones take whole aligned groups, and the group bookkeeping stays
    /// exact -- the structure that spares allocation a device scan.</summary>
    [Fact]
    public void GroupBookkeepingOnAFourGibibyteArea()
    {
        const long start = G, end = (4L << 30) / Layout.BlockSize;
        var a = new BlockAllocator(start, end);
        a.FreeAll();
        long groups = (end - start) / G;
        Assert.Equal(groups, a.FreeGroups);
        Assert.Empty(PartialGroups(a));
        var rng = new Random(7);
        long small = 0;
        for (int k = 0; k < 20_000; k++)
        {
            long n = rng.Next(1, 9);
            List<BlockRun> r = a.Allocate(n, -1, aligned: false);
            Assert.Single(r);
            small += n;
        }
        long touched = (small + G - 1) / G;
        Assert.Equal(groups - touched, a.FreeGroups);           // small files packed: no group broken needlessly
        Assert.True(PartialGroups(a).Length <= 1, $"{PartialGroups(a).Length} groups partly used");
        var big = new List<BlockRun>();
        for (int k = 0; k < 500; k++)
        {
            List<BlockRun> r = a.Allocate(2 * G, -1, aligned: true);
            Assert.All(r, x => Assert.Equal(0, x.Start % G));
            Assert.Equal(2 * G, r.Sum(x => x.Count));
            big.AddRange(r);
        }
        Assert.Equal(groups - touched - 1000, a.FreeGroups);
        foreach (BlockRun r in big)
            a.Free(r.Start, r.Count);
        Assert.Equal(groups - touched, a.FreeGroups);
        Assert.Equal(end - start - small - a.Pool, a.FreeBlocks);
    }
}
