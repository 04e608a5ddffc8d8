using System.Globalization;
using System.Runtime.Intrinsics.X86;
using DaxFs.Pmem;

namespace DaxFs.Bench;

/// <summary>Settings of `daxfs bench pmem`.</summary>
/// <param name="Directory">Where the emulated-pmem device files go (tmpfs).</param>
/// <param name="DeviceBytes">Device size (1 GiB by default).</param>
/// <param name="Rounds">Anchor/DaxFS alternations; each figure is the median over rounds.</param>
/// <param name="IterationPercent">Scales the iteration counts (100 = full).</param>
/// <param name="Seed">Offset generator seed, shared with the anchor.</param>
public sealed record PmemSuiteOptions(string Directory = "/dev/shm", long DeviceBytes = 1L << 30, int Rounds = 5,
    int IterationPercent = 100, ulong Seed = 42);

/// <summary>PmemSuite -- the device layer against PMDK in one run: durable-copy latency by size at random 64-byte
/// aligned offsets, write-back latency, streaming bandwidth, dirty-extent flush against a whole-device flush, and
/// the cached/non-temporal crossover that sets the default threshold.</summary>
public static class PmemSuite
{
    private static readonly long[] Sizes = [64, 256, 4096, 65536, 2 << 20];
    private static readonly long[] SweepSizes = [64, 128, 192, 256, 384, 512, 1024, 2048, 4096];

    /// <summary>Runs the suite; <paramref name="progress"/> hears each step and the fraction done.</summary>
    public static BenchReport Run(PmemSuiteOptions o, IProgress<(string Step, double Fraction)>? progress = null)
    {
        string anchorBinary = Anchors.Build("pmdk_anchor", "pmem");
        var anchorRounds = new List<Dictionary<string, double>>();
        var daxRounds = new List<Dictionary<string, double>>();
        DeviceInfo? info = null;
        int steps = o.Rounds * 2 + 1, step = 0;
        for (int r = 0; r < o.Rounds; r++)
        {
            progress?.Report(($"round {r + 1}/{o.Rounds}: PMDK anchor", (double)step++ / steps));
            anchorRounds.Add(RunAnchor(anchorBinary, o));
            progress?.Report(($"round {r + 1}/{o.Rounds}: DaxFS", (double)step++ / steps));
            (var d, info) = RunDaxFs(o);
            daxRounds.Add(d);
        }
        progress?.Report(("cached vs non-temporal crossover", (double)step / steps));
        var sweep = Sweep(o);
        progress?.Report(("done", 1));

        double A(string key) => Timing.Median(anchorRounds.Select(x => x[key]));
        double D(string key) => Timing.Median(daxRounds.Select(x => x[key]));
        var results = new List<BenchResult>();
        foreach (long size in Sizes)
        {
            string target = size >= 256 ? "<= 1.2" : null!;
            results.Add(BenchResult.Compared($"copy_persist_{Timing.SizeName(size)}", "ns", D($"memcpy_persist_ns {size}"),
                "pmem_memcpy_persist", A($"memcpy_persist_ns {size}"), size >= 256 ? target : null));
        }
        foreach (long size in Sizes)
            results.Add(BenchResult.Compared($"persist_{Timing.SizeName(size)}", "ns", D($"persist_ns {size}"),
                "pmem_persist", A($"persist_ns {size}"), size >= 256 ? "<= 1.2" : null));
        results.Add(BenchResult.Compared("copy_persist_stream", "GiB/s", D("stream_gibs 0"), "pmem_memcpy_persist stream",
            A("stream_gibs 0"), ">= 0.95"));
        results.Add(BenchResult.Compared("persist_whole_device", "us", D("persist_device_ns 0") / 1000, "pmem_persist whole device",
            A("persist_device_ns 0") / 1000, "<= 1.2"));
        results.Add(BenchResult.Compared("flush_dirty_one_4KiB", "us", D("flush_dirty_ns 0") / 1000, "DaxFS whole-device flush",
            D("persist_device_ns 0") / 1000, null));
        foreach (var (size, t, nt) in sweep.Points)
        {
            results.Add(BenchResult.Alone($"copy_cached_{Timing.SizeName(size)}", "ns", t));
            results.Add(BenchResult.Alone($"copy_nontemporal_{Timing.SizeName(size)}", "ns", nt));
        }
        results.Add(BenchResult.Alone("nontemporal_crossover", "bytes", sweep.Crossover));
        var env = new Dictionary<string, string>
        {
            ["device"] = info?.ToString() ?? "",
            ["device_bytes"] = o.DeviceBytes.ToString(CultureInfo.InvariantCulture),
            ["rounds"] = o.Rounds.ToString(CultureInfo.InvariantCulture),
            ["anchor"] = "PMDK libpmem " + PmdkVersion() + ", PMEM_IS_PMEM_FORCE=1, same file system",
            ["kernel"] = Environment.OSVersion.VersionString,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
        };
        return new BenchReport("pmem", results, env);
    }

    /// <summary>The anchor program on its own file; its "metric size value" lines as a dictionary.</summary>
    private static Dictionary<string, double> RunAnchor(string binary, PmemSuiteOptions o)
    {
        string path = Path.Combine(o.Directory, $"daxfs-bench-anchor-{Environment.ProcessId}.img");
        return Anchors.RunPmdk(binary, path, $"{o.DeviceBytes} {o.IterationPercent} {o.Seed}", TimeSpan.FromMinutes(10));
    }

    /// <summary>The DaxFS side: the same measurements, in the same order, on a device of the same size.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static (Dictionary<string, double>, DeviceInfo) RunDaxFs(PmemSuiteOptions o)
    {
        string path = Path.Combine(o.Directory, $"daxfs-bench-pmem-{Environment.ProcessId}.img");
        File.Delete(path);
        using var dev = PmemDevice.Create(path, o.DeviceBytes, new PmemOpenOptions { EmulatePmem = true, Exclusive = false });
        File.Delete(path); // the mapping keeps it alive
        dev.FillPersist(0, dev.Length, 0);
        var d = new Dictionary<string, double>();
        ArraySegment<byte> src = Timing.AlignedBuffer(2 << 20);
        for (int i = 0; i < src.Count; i++)
            src[i] = (byte)(i * 131 + 7);
        long[] t = new long[20000];
        long[] batch = new long[8];
        foreach (long size in Sizes)
        {
            // Small operations are timed in batches of 8 (the clock costs about as much as they do), as in the anchor.
            int k = size <= 4096 ? 8 : 1;
            int n = Timing.Iterations(size, o.IterationPercent) / k;
            ulong slots = (ulong)((dev.Length - size) / 64);
            ReadOnlySpan<byte> s = src.AsSpan(0, (int)size);
            var rng = new Timing.XorShift64(o.Seed + (ulong)size);
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < k; j++)
                    batch[j] = (long)(rng.Next() % slots) * 64;
                long t0 = Timing.NowNs();
                for (int j = 0; j < k; j++)
                    dev.CopyPersist(batch[j], s);
                t[i] = Timing.NowNs() - t0;
            }
            d[$"memcpy_persist_ns {size}"] = Timing.Median(t, n) / k;
            rng = new Timing.XorShift64(o.Seed + (ulong)size + 1);
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < k; j++)
                {
                    batch[j] = (long)(rng.Next() % slots) * 64;
                    dev.Write(batch[j], s);
                }
                Sse2.MemoryFence(); // the stores (and their cache misses) complete before the clock starts, as in the anchor
                long t0 = Timing.NowNs();
                for (int j = 0; j < k; j++)
                    dev.Persist(batch[j], size);
                t[i] = Timing.NowNs() - t0;
            }
            d[$"persist_ns {size}"] = Timing.Median(t, n) / k;
        }

        double best = 0;
        long whole = dev.Length & ~((1L << 20) - 1);
        for (int pass = 0; pass < 3; pass++)
        {
            long t0 = Timing.NowNs();
            for (long off = 0; off + (1 << 20) <= dev.Length; off += 1 << 20)
                dev.CopyPersist(off, src.AsSpan((int)(off & (1 << 20)), 1 << 20));
            best = Math.Max(best, whole / (double)(Timing.NowNs() - t0) * 1e9 / (1 << 30));
        }
        d["stream_gibs 0"] = best;

        var r2 = new Timing.XorShift64(o.Seed + 99);
        for (int i = 0; i < 5; i++)
        {
            long dst = (long)(r2.Next() % (ulong)((dev.Length - 4096) / 64)) * 64;
            dev.Write(dst, src.AsSpan(0, 4096));
            Sse2.MemoryFence();
            long t0 = Timing.NowNs();
            dev.Persist(0, dev.Length);
            t[i] = Timing.NowNs() - t0;
        }
        d["persist_device_ns 0"] = Timing.Median(t, 5);

        var tracker = new DirtyExtentTracker(dev);
        int m = Math.Max(11, 200 * o.IterationPercent / 100);
        for (int i = 0; i < m; i++)
        {
            long dst = (long)(r2.Next() % (ulong)((dev.Length - 4096) / 64)) * 64;
            dev.Write(dst, src.AsSpan(0, 4096));
            tracker.MarkDirty(dst, 4096);
            Sse2.MemoryFence();
            long t0 = Timing.NowNs();
            tracker.FlushDirty(clean: true);
            t[i] = Timing.NowNs() - t0;
        }
        d["flush_dirty_ns 0"] = Timing.Median(t, m);
        return (d, dev.Info);
    }

    /// <summary>Cached stores + write-back against streaming stores, by size, at random offsets; the crossover is the
    /// smallest size from which streaming stays at least as fast.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static (List<(long Size, double Cached, double Streaming)> Points, long Crossover) Sweep(PmemSuiteOptions o)
    {
        string path = Path.Combine(o.Directory, $"daxfs-bench-sweep-{Environment.ProcessId}.img");
        File.Delete(path);
        using var dev = PmemDevice.Create(path, o.DeviceBytes, new PmemOpenOptions { EmulatePmem = true, Exclusive = false });
        File.Delete(path);
        dev.FillPersist(0, dev.Length, 0);
        ArraySegment<byte> src = Timing.AlignedBuffer(4096);
        long[] t = new long[20000];
        var points = new List<(long, double, double)>();
        foreach (long size in SweepSizes)
        {
            const int k = 8; // timed in batches of 8, like the latency figures
            int n = Timing.Iterations(size, o.IterationPercent) / k;
            ulong slots = (ulong)((dev.Length - size) / 64);
            long[] batch = new long[k];
            double Measure(PersistFlags flags, ulong seed)
            {
                var rng = new Timing.XorShift64(seed);
                for (int i = 0; i < n; i++)
                {
                    for (int j = 0; j < k; j++)
                        batch[j] = (long)(rng.Next() % slots) * 64;
                    long t0 = Timing.NowNs();
                    for (int j = 0; j < k; j++)
                        dev.Copy(batch[j], src.AsSpan(0, (int)size), flags);
                    t[i] = Timing.NowNs() - t0;
                }
                return Timing.Median(t, n) / k;
            }
            points.Add((size, Measure(PersistFlags.Temporal, o.Seed + 7), Measure(PersistFlags.NonTemporal, o.Seed + 7)));
        }
        long crossover = SweepSizes[^1] * 2;
        for (int i = points.Count - 1; i >= 0 && points[i].Item3 <= points[i].Item2 * 1.02; i--)
            crossover = points[i].Item1;
        return (points, crossover);
    }

    /// <summary>The installed libpmem version, from dpkg; "?" if unknown.</summary>
    private static string PmdkVersion()
    {
        try
        {
            var (code, output) = Anchors.Run("dpkg-query", "-W -f=${Version} libpmem-dev", null, TimeSpan.FromSeconds(10));
            return code == 0 ? output.Trim() : "?";
        }
        catch (BenchException)
        {
            return "?";
        }
    }
}
