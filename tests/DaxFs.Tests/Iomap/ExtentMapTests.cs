using DaxFs.Iomap;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests.Iomap;

/// <summary>ExtentMap against a per-block array model: random map/unmap/convert/mark-unwritten sequences, checked
/// block by block, with merging verified (no two neighbours that continue each other).</summary>
public class ExtentMapTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1, 600)]
    [InlineData(2, 5000)]
    [InlineData(3, 40000)]
    public void RandomOperationsMatchABlockModel(int seed, int blocks)
    {
        output.WriteLine($"seed {seed}, {blocks} blocks");
        var rnd = new Random(seed);
        var map = new ExtentMap();
        var model = new (long Dev, bool Unwritten)?[blocks];
        for (int step = 0; step < 4000; step++)
        {
            int op = rnd.Next(10);
            long b = rnd.Next(blocks);
            long n = Math.Min(blocks - b, rnd.Next(4) == 0 ? rnd.Next(1, blocks / 4 + 2) : rnd.Next(1, 9));
            if (op < 5)
            {
                long dev = rnd.Next(4) == 0 && b > 0 && model[b - 1] is { } p ? p.Dev + 1 : rnd.Next(1_000_000) * 10L;
                bool unw = rnd.Next(4) == 0;
                long displaced = map.Map(b, n, dev, unw).Sum(e => e.Count);
                long expect = 0;
                for (long k = 0; k < n; k++)
                {
                    if (model[b + k] is not null)
                        expect++;
                    model[b + k] = (dev + k, unw);
                }
                Assert.Equal(expect, displaced);
            }
            else if (op < 7)
            {
                map.Unmap(b, n);
                for (long k = 0; k < n; k++)
                    model[b + k] = null;
            }
            else if (op < 8)
            {
                map.Convert(b, n);
                for (long k = 0; k < n; k++)
                    if (model[b + k] is { } m)
                        model[b + k] = (m.Dev, false);
            }
            else if (op < 9)
            {
                map.MarkUnwritten(b, n);
                for (long k = 0; k < n; k++)
                    if (model[b + k] is { } m)
                        model[b + k] = (m.Dev, true);
            }
            else
            {
                Check(map, model, seed, step);
            }
        }
        Check(map, model, seed, -1);
    }

    private static void Check(ExtentMap map, (long Dev, bool Unwritten)?[] model, int seed, int step)
    {
        long mapped = 0;
        for (long b = 0; b < model.Length;)
        {
            var (kind, dev, n) = map.Lookup(b, model.Length - b);
            Assert.True(n >= 1, $"seed {seed} step {step}: empty lookup at {b}");
            for (long k = 0; k < n; k++)
            {
                var m = model[b + k];
                MapKind want = m is null ? MapKind.Hole : m.Value.Unwritten ? MapKind.Unwritten : MapKind.Mapped;
                Assert.True(want == kind, $"seed {seed} step {step}: block {b + k} is {kind}, model {want}");
                if (m is not null)
                {
                    Assert.True(m.Value.Dev == dev + k, $"seed {seed} step {step}: block {b + k} dev {dev + k}, model {m.Value.Dev}");
                    mapped++;
                }
            }
            b += n;
        }
        Assert.Equal(mapped, map.MappedBlocks);
        Extent? prev = null;
        int count = 0;
        foreach (Extent e in map.Extents)
        {
            count++;
            if (prev is { } p)
            {
                Assert.True(p.FileEnd <= e.FileBlock, $"seed {seed} step {step}: extents overlap or are out of order");
                Assert.False(p.FileEnd == e.FileBlock && p.DevBlock + p.Count == e.DevBlock && p.Unwritten == e.Unwritten,
                    $"seed {seed} step {step}: neighbours at {e.FileBlock} were not merged");
            }
            prev = e;
        }
        Assert.Equal(count, map.Count);
    }

    /// <summary>Copy-on-write of whole extents in a fragmented map (the shape random overwrites give a file): each
    /// remap replaces one extent, or continues the extent before or after it (and must merge), or is the same
    /// device run again; checked against the block model after every step.</summary>
    [Theory]
    [InlineData(11, 300)]
    [InlineData(12, 3000)]
    public void CopyOnWriteOfWholeExtentsMatchesABlockModel(int seed, int blocks)
    {
        output.WriteLine($"seed {seed}, {blocks} blocks");
        var rnd = new Random(seed);
        var map = new ExtentMap();
        var model = new (long Dev, bool Unwritten)?[blocks];
        for (long b = 0; b < blocks; b++)
        {
            long dev = 10 * b + 5 + rnd.Next(3); // never continues its neighbour
            map.Map(b, 1, dev, false);
            model[b] = (dev, false);
        }
        Check(map, model, seed, -2);
        for (int step = 0; step < 3000; step++)
        {
            // The extent holding a random block, remapped whole.
            long b = rnd.Next(blocks);
            var (kind, dev0, _) = map.Lookup(b, 1);
            long start = b;
            while (start > 0 && map.Lookup(start - 1, 1) is var (k, d, _) && k == kind && d == dev0 - (b - start) - 1)
                start--;
            var (_, startDev, n) = map.Lookup(start, blocks - start);
            int how = rnd.Next(5);
            long dev = how switch
            {
                0 when start > 0 && model[start - 1] is { } p => p.Dev + 1,      // continues the one before
                1 when start + n < blocks && model[start + n] is { } q => q.Dev - n, // continued by the one after
                2 => startDev,                                                    // the same run again
                _ => 1_000_000 + 10L * rnd.Next(1_000_000),
            };
            bool unw = rnd.Next(8) == 0;
            var displaced = map.Map(start, n, dev, unw);
            Assert.Equal(n, displaced.Sum(e => e.Count));
            for (long k = 0; k < n; k++)
                model[start + k] = (dev + k, unw);
            Check(map, model, seed, step);
        }
    }

    [Fact]
    public void ShortSearchAgreesWithBinarySearch()
    {
        var rnd = new Random(5);
        for (int len = 0; len <= 70; len++)
        {
            long[] a = new long[len];
            long v = rnd.Next(-50, 50);
            for (int k = 0; k < len; k++)
                a[k] = v += rnd.Next(1, 4);
            for (long key = (len > 0 ? a[0] : 0) - 3; key <= (len > 0 ? a[^1] : 0) + 3; key++)
                Assert.Equal(Sorted.FirstAbove<long>(a, key), Sorted.FirstAboveShort(a, key));
            Assert.Equal(0, Sorted.FirstAboveShort(a, long.MinValue));
            Assert.Equal(len, Sorted.FirstAboveShort(a, long.MaxValue));
        }
    }

    [Fact]
    public void ContinuationHintFollowsThePreviousExtent()
    {
        var map = new ExtentMap();
        Assert.Equal(-1, map.ContinuationHint(5));
        map.Map(0, 4, 100, false);
        Assert.Equal(104, map.ContinuationHint(4));
        Assert.Equal(106, map.ContinuationHint(6));
        Assert.Equal(102, map.ContinuationHint(2));
    }
}
