using DaxFs.Allocation;
using DaxFs.Format;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests.Core;

/// <summary>BlockAllocator against a per-block model: random allocations (aligned or not, with hints) and frees
/// never hand out a block twice, keep the free count, and keep the set of whole free 2 MiB groups exact.</summary>
public class AllocatorModelTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public void RandomAllocateAndFreeKeepEveryInvariant(int seed)
    {
        output.WriteLine($"seed {seed}");
        var rnd = new Random(seed);
        const long start = 1000, end = 1000 + 40 * 512 + 77;
        var a = new BlockAllocator(start, end);
        a.FreeAll();
        var owned = new bool[end];
        var held = new List<BlockRun>();
        for (int step = 0; step < 3000; step++)
        {
            if (held.Count > 0 && rnd.Next(3) == 0)
            {
                int k = rnd.Next(held.Count);
                BlockRun r = held[k];
                held.RemoveAt(k);
                a.Free(r.Start, r.Count);
                for (long b = r.Start; b < r.End; b++)
                    owned[b] = false;
            }
            else
            {
                long n = rnd.Next(5) == 0 ? rnd.Next(1, 1200) : rnd.Next(1, 9);
                bool aligned = rnd.Next(3) == 0;
                long hint = held.Count > 0 && rnd.Next(2) == 0 ? held[^1].End : -1;
                long free = a.FreeBlocks;
                if (n > free)
                {
                    Assert.Throws<DaxFsException>(() => a.Allocate(n, hint, aligned));
                    Assert.Equal(free, a.FreeBlocks);
                    continue;
                }
                List<BlockRun> runs = a.Allocate(n, hint, aligned);
                Assert.Equal(n, runs.Sum(r => r.Count));
                foreach (BlockRun r in runs)
                {
                    for (long b = r.Start; b < r.End; b++)
                    {
                        Assert.True(b >= start && b < end, $"seed {seed} step {step}: block {b} outside the area");
                        Assert.False(owned[b], $"seed {seed} step {step}: block {b} handed out twice");
                        owned[b] = true;
                    }
                    held.Add(r);
                }
                if (aligned && n >= Layout.BlocksPerGroup && hint < 0 && runs.Count == 1)
                    Assert.True(runs[0].Start % Layout.BlocksPerGroup == 0 || runs[0].Start == start,
                        $"seed {seed} step {step}: aligned allocation at {runs[0].Start}");
            }
            long ownedCount = owned.Count(o => o);
            Assert.Equal(end - start - ownedCount, a.FreeBlocks);
            int wholeFree = 0;
            for (long g = (start + 511) / 512; (g + 1) * 512 <= end; g++)
                if (Enumerable.Range(0, 512).All(i => !owned[g * 512 + i]))
                    wholeFree++;
            Assert.Equal(wholeFree, a.FreeGroups);
        }
    }
}
