using System.Globalization;
using System.Runtime.CompilerServices;
using DaxFs.Pmem;

namespace DaxFs.Bench;

/// <summary>Settings of `daxfs bench map`.</summary>
/// <param name="Directory">Where the volumes and the anchor's file live; null: a huge=always tmpfs mounted for the run
/// when root, else /dev/shm (no 2 MiB pages).</param>
/// <param name="FileBytes">The large mapping (1 GiB in a full run; a power of two).</param>
/// <param name="MidFileBytes">The smaller mapping of the "latency follows dirty data, not file size" check (64 MiB).</param>
/// <param name="Rounds">Anchor/DaxFS alternations; figures are medians over rounds.</param>
/// <param name="IterationPercent">Scales iteration counts (100 = full).</param>
/// <param name="Seed">Offset generator seed, shared with the anchor.</param>
public sealed record MapSuiteOptions(string? Directory = null, long FileBytes = 1L << 30, long MidFileBytes = 64L << 20, int Rounds = 2,
    int IterationPercent = 100, ulong Seed = 11);

/// <summary>MapSuite -- direct-access mappings measured: fsync of async mappings under each dirty-tracking policy
/// (extent, page, page-fault log; against flushing the whole mapping), the write-protect fault the page policies add
/// to a first store, random loads through PMD and PTE mappings, map+write+persist+unmap of a 2 MiB file PMD vs PTE,
/// and a 64-byte store + Persist (and CopyPersist) through a sync mapping against PMDK's memcpy + pmem_persist, all in
/// one run.</summary>
public static class MapSuite
{
    private const long Mi2 = 2 << 20;

    /// <summary>Dirty sizes of the fsync curve (clipped to the mapping).</summary>
    public static readonly long[] CurveSizes = [64, 4096, 64 << 10, 2 << 20, 64 << 20, 1L << 30];

    /// <summary>Runs the suite; <paramref name="progress"/> hears each step and the fraction done.</summary>
    public static BenchReport Run(MapSuiteOptions o, IProgress<(string Step, double Fraction)>? progress = null)
    {
        if (o.FileBytes < (8 << 20) || (o.FileBytes & (o.FileBytes - 1)) != 0)
            throw new BenchException($"--size must be a power of two of at least 8 MiB, not {o.FileBytes}");
        if (o.MidFileBytes > o.FileBytes || o.MidFileBytes < Mi2)
            throw new BenchException($"the smaller mapping ({o.MidFileBytes} bytes) must be between 2 MiB and the large one ({o.FileBytes})");
        string anchorBinary = Anchors.Build("pmdk_anchor", "pmem");
        string inprocLibrary = Anchors.BuildLibrary("pmdk_inproc", "pmem");
        using Backing backing = Backing.Acquire(o.Directory, 2 * o.FileBytes + o.FileBytes / 2 + (512L << 20));
        var anchor = new List<Dictionary<string, double>>();
        var ext = new List<Dictionary<string, double>>();
        var page = new List<Dictionary<string, double>>();
        var fault = new List<Dictionary<string, double>>();
        var facts = new Dictionary<string, string>();
        int steps = o.Rounds * 4 + 1, step = 0;
        progress?.Report(("warm-up (the JIT compiles the hot paths fully after a few thousand calls)", 0));
        WarmUp(backing.Directory, o, inprocLibrary);
        step++;
        for (int r = 0; r < o.Rounds; r++)
        {
            progress?.Report(($"round {r + 1}/{o.Rounds}: PMDK anchor", (double)step++ / steps));
            anchor.Add(RunAnchor(anchorBinary, backing.Directory, o));
            progress?.Report(($"round {r + 1}/{o.Rounds}: DaxFS, extent policy, sync mappings", (double)step++ / steps));
            ext.Add(RunVolume(backing.Directory, o, DirtyTracking.Extent, facts, inprocLibrary));
            progress?.Report(($"round {r + 1}/{o.Rounds}: DaxFS, page policy", (double)step++ / steps));
            page.Add(RunVolume(backing.Directory, o, DirtyTracking.Page, facts, inprocLibrary));
            progress?.Report(($"round {r + 1}/{o.Rounds}: DaxFS, page-fault log policy", (double)step++ / steps));
            fault.Add(RunVolume(backing.Directory, o, DirtyTracking.PageFault, facts, inprocLibrary));
        }
        progress?.Report(("done", 1));

        Fig A(string key, Func<double, double>? f = null) => new(anchor, key, f);
        Fig E(string key, Func<double, double>? f = null) => new(ext, key, f);
        Fig P(string key, Func<double, double>? f = null) => new(page, key, f);
        Fig F(string key, Func<double, double>? f = null) => new(fault, key, f);
        static double Us(double ns) => ns / 1000;
        static double PerSecond(double ns) => 1e9 / ns;
        string big = Timing.SizeName(o.FileBytes), mid = Timing.SizeName(o.MidFileBytes);
        var results = new List<BenchResult>();
        foreach (var (policy, D) in new (string, Func<string, Func<double, double>?, Fig>)[] { ("extent", E), ("page", P), ("pagefault", F) })
        {
            Fig whole = D("flush_whole_ns", Us);
            results.Add(Alone($"flush_whole_mapping_{big}_{policy}_volume", "us", whole));
            results.Add(Compared($"fsync_one_4KiB_{policy}", "us", D("fsync_4k_big_ns", Us), $"flush whole {big} mapping (no tracking)", whole, null));
            if (policy != "extent")
                results.Add(Compared($"fsync_one_4KiB_{policy}_vs_target", "us", D("fsync_4k_big_ns", Us), "issue target 5 us (absolute, not measured)",
                    Fig.Constant(5), "<= 1"));
            // Under the extent policy every extent of a live writable mapping counts as dirty, so this one follows the
            // mapping's size by construction: its target is the row after (the file's size, the same mapped bytes).
            results.Add(Compared($"fsync_one_4KiB_{policy}_{big}_vs_{mid}_mapping", "us", D("fsync_4k_big_ns", Us),
                $"same fsync in a {mid} mapping", D("fsync_4k_mid_ns", Us), policy == "extent" ? null : "<= 1.5"));
            results.Add(Compared($"fsync_one_4KiB_{policy}_{mid}_window_of_{big}_file_vs_{mid}_file", "us", D("fsync_4k_window_ns", Us),
                $"same fsync, a whole {mid} file mapped", D("fsync_4k_mid_file_ns", Us), "<= 1.5"));
            results.Add(Compared($"fsync_nothing_dirty_{policy}", "us", D("fsync_clean_ns", Us), $"flush whole {big} mapping (no tracking)", whole, null));
            foreach (long s in CurveSizes.Where(s => s <= o.FileBytes))
                results.Add(Compared($"fsync_dirty_{Timing.SizeName(s)}_{policy}", "us", D($"fsync_dirty_ns {s}", Us),
                    $"flush whole {big} mapping (no tracking)", whole, null));
            results.Add(Compared($"first_store_clean_page_{policy}", "ns", D("store_clean_ns", null), "store into an already-dirty page",
                D("store_dirty_ns", null), null));
            results.Add(Alone($"first_store_added_cost_{policy}", "ns", D("store_clean_ns", null).Minus(D("store_dirty_ns", null))));
        }
        results.Add(Compared("random_load_8B_pmd", "Mloads/s", E("load_pmd_mps"), "same loads, same file mapped with 4 KiB pages",
            E("load_pte_mps"), ">= 1.5"));
        results.Add(Compared("random_load_8B_dependent_pmd", "Mloads/s", E("load_dep_pmd_mps"), "same chain, same file mapped with 4 KiB pages",
            E("load_dep_pte_mps"), null));
        results.Add(Compared("random_load_8B_pmd_vs_misaligned_file", "Mloads/s", E("load_pmd_mps"), "same loads, a misaligned file (PTE)",
            E("load_misaligned_mps"), null));
        results.Add(Compared("random_load_8B_dependent_pmd_vs_misaligned_file", "Mloads/s", E("load_dep_pmd_mps"),
            "same chain, a misaligned file (PTE)", E("load_dep_misaligned_mps"), null));
        results.Add(Alone("random_load_8B_pmd_mapped_bytes_pmd", "bytes", E("load_pmd_smaps")));
        results.Add(Alone("random_load_8B_pmd_mapped_bytes_pte", "bytes", E("load_pte_smaps")));
        results.Add(Alone("random_load_8B_pmd_mapped_bytes_misaligned_file", "bytes", E("load_misaligned_smaps")));
        results.Add(Compared("map_write_persist_unmap_2MiB_pmd", "ops/s", E("mwpu_pmd_ns", PerSecond), "same, PTE-mapped",
            E("mwpu_pte_ns", PerSecond), ">= 2"));
        results.Add(Alone("map_write_persist_unmap_2MiB_pmd_latency", "us", E("mwpu_pmd_ns", Us)));
        results.Add(Alone("map_write_persist_unmap_2MiB_pte_latency", "us", E("mwpu_pte_ns", Us)));
        results.Add(Alone("map_write_persist_unmap_2MiB_pmd_mapped_bytes_pmd", "bytes", E("mwpu_pmd_smaps")));
        results.Add(Alone("map_write_persist_unmap_2MiB_pmd_mapped_bytes_pte", "bytes", E("mwpu_pte_smaps")));
        const string inproc = "PMDK memcpy 64 B + pmem_persist, same mapping, interleaved (libpmem in this process)";
        results.Add(Compared("store_persist_64B", "ns", E("store_persist_ns"), inproc, E("pmdk_store_persist_ns"), "<= 1.2"));
        results.Add(Compared("copy_persist_64B", "ns", E("copy_persist_ns"), inproc, E("pmdk_store_persist_ns"), null));
        results.Add(Compared("store_persist_64B_vs_own_file", "ns", E("store_persist_ns"), "PMDK memcpy 64 B + pmem_persist, its own file and process",
            A("store_persist_ns 64"), null));
        results.Add(Alone("store_persist_64B_pmd_mapped_bytes_daxfs", "bytes", E("store_persist_smaps")));
        results.Add(Alone("store_persist_64B_pmd_mapped_bytes_pmdk", "bytes", A("pmd_mapped_bytes 0")));

        var env = new Dictionary<string, string>
        {
            ["backing"] = backing.Description,
            ["huge_pages"] = backing.Huge ? "yes" : "no",
            ["file_bytes"] = o.FileBytes.ToString(CultureInfo.InvariantCulture),
            ["mid_file_bytes"] = o.MidFileBytes.ToString(CultureInfo.InvariantCulture),
            ["rounds"] = o.Rounds.ToString(CultureInfo.InvariantCulture),
            ["anchor"] = "PMDK libpmem: pmdk_inproc (loaded into this process, through DaxFS's own mapping, interleaved) and pmdk_anchor store_persist (PMEM_IS_PMEM_FORCE=1, its own file of the same size on the same backing)",
            ["kernel"] = Environment.OSVersion.VersionString,
            ["load"] = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?",
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in facts)
            env[k] = v;
        return new BenchReport("map", results, env);
    }

    /// <summary>One figure over the rounds: each round's value (transformed) and their median.</summary>
    private sealed class Fig
    {
        public double[] Rounds { get; }

        public Fig(List<Dictionary<string, double>> rounds, string key, Func<double, double>? f) =>
            Rounds = rounds.Select(x => f is null ? x[key] : f(x[key])).ToArray();

        private Fig(double[] rounds) => Rounds = rounds;

        public static Fig Constant(double v) => new([v]);

        public Fig Minus(Fig other) => new(Rounds.Zip(other.Rounds, (a, b) => a - b).ToArray());
    }

    private static BenchResult Compared(string name, string unit, Fig value, string anchor, Fig anchorValue, string? target) =>
        BenchResult.Compared(name, unit, value.Rounds, anchor, anchorValue.Rounds, target);

    private static BenchResult Alone(string name, string unit, Fig value) => BenchResult.Alone(name, unit, value.Rounds);

    /// <summary>Runs the DaxFS side on small files until tiered compilation has settled (<see cref="Timing.WarmUp"/>):
    /// the anchors are ahead-of-time compiled C, and the measured passes should see optimized code too.</summary>
    private static void WarmUp(string dir, MapSuiteOptions o, string inprocLibrary)
    {
        var small = o with { FileBytes = 8 << 20, MidFileBytes = 2 << 20, IterationPercent = 20 };
        var scratch = new Dictionary<string, string>();
        Timing.WarmUp(() =>
        {
            RunVolume(dir, small, DirtyTracking.Extent, scratch, inprocLibrary);
            RunVolume(dir, small, DirtyTracking.Page, scratch, inprocLibrary);
            RunVolume(dir, small, DirtyTracking.PageFault, scratch, inprocLibrary);
        }, TimeSpan.FromSeconds(2));
    }

    /// <summary>The anchor: PMDK's 64-byte store + pmem_persist over a file of the same size on the same backing.</summary>
    private static Dictionary<string, double> RunAnchor(string binary, string dir, MapSuiteOptions o)
    {
        string path = Path.Combine(dir, $"daxfs-bench-map-anchor-{Environment.ProcessId}.img");
        return Anchors.RunPmdk(binary, path, $"{o.FileBytes} {o.IterationPercent} {o.Seed} store_persist", TimeSpan.FromMinutes(5));
    }

    /// <summary>One volume with the given dirty-tracking policy: the async-mapping figures; on the extent-policy
    /// volume also the sync-mapping figures (PMD vs PTE loads, map+write+persist+unmap, store+persist).</summary>
    private static Dictionary<string, double> RunVolume(string dir, MapSuiteOptions o, DirtyTracking policy, Dictionary<string, string> facts,
        string inprocLibrary)
    {
        bool syncToo = policy == DirtyTracking.Extent;
        long bytes = o.FileBytes + o.MidFileBytes + (syncToo ? o.FileBytes + 4 * Mi2 : 0) + o.FileBytes / 16 + (64L << 20);
        string path = Path.Combine(dir, $"daxfs-bench-map-{Environment.ProcessId}.img");
        File.Delete(path);
        var d = new Dictionary<string, double>();
        try
        {
            using (DaxVolume v = DaxVolume.Create(path, bytes, new PmemOpenOptions { EmulatePmem = true, Exclusive = false, Prefault = true },
                mount: new MountOptions { DirtyTracking = policy }))
            {
                File.Delete(path); // the mapping keeps it alive
                string p = policy.ToString().ToLowerInvariant();
                facts[$"{p}_policy"] = v.DirtyTracking == policy ? $"{v.DirtyTracking} in force"
                    : $"{v.DirtyTracking} in force instead: {v.PageTrackingUnavailableReason}";
                facts[$"{p}_volume_device"] = v.Device.Info.ToString();
                using DaxFile big = WriteFile(v, "/big", o.FileBytes, misaligned: false);
                using DaxFile mid = WriteFile(v, "/mid", o.MidFileBytes, misaligned: false);
                AsyncFigures(v, big, mid, o, d);
                if (syncToo)
                {
                    using DaxFile pte = WriteFile(v, "/pte", o.FileBytes, misaligned: true);
                    using DaxFile s1 = WriteFile(v, "/small-pmd", Mi2, misaligned: false);
                    using DaxFile s2 = WriteFile(v, "/small-pte", Mi2, misaligned: true);
                    SyncFigures(big, pte, s1, s2, o, d, facts, inprocLibrary);
                    facts["map_statistics"] = v.MapStatistics.ToString();
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
        return d;
    }

    /// <summary>A batch of 64-byte stores, each made durable with <see cref="DaxMapping.Persist"/>: the timed loop in
    /// a method of its own, as the anchor's is (inside the suite's long method the JIT spilled the loop's values to
    /// the stack around every call).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void StorePersistBatch(DaxMapping mp, long[] dst, ReadOnlySpan<byte> src)
    {
        foreach (long at in dst)
        {
            src.CopyTo(mp.GetSpan(at, 64));
            mp.Persist(at, 64);
        }
    }

    /// <summary>The same bytes made durable with <see cref="DaxMapping.CopyPersist"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void CopyPersistBatch(DaxMapping mp, long[] dst, ReadOnlySpan<byte> src)
    {
        foreach (long at in dst)
            mp.CopyPersist(at, src);
    }

    /// <summary>The same stores made by PMDK through the same mapping: one call into libpmem's side
    /// (anchors/pmdk_inproc.c) per batch.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PmdkBatch(delegate* unmanaged[SuppressGCTransition]<nint, long*, int, nint, void> batch, nint mapping,
        long[] dst, ArraySegment<byte> src)
    {
        fixed (long* at = dst)
        fixed (byte* s = src.AsSpan())
            batch(mapping, at, dst.Length, (nint)s);
    }

    /// <summary>A file of <paramref name="bytes"/> written with non-zero data. Aligned: 1 MiB writes, which the allocator
    /// places in 2 MiB-aligned groups congruent with file offsets (PMD-mappable). Misaligned: a 4 KiB file first takes
    /// a block of a free group, then the file is sized and filled in 512 KiB hole fills that continue contiguously after
    /// it, so every device offset is off by whole pages from its file offset modulo 2 MiB: the volume must map it with
    /// 4 KiB pages (its fallback counter says "misaligned extent"), as a DAX file system must.</summary>
    private static DaxFile WriteFile(DaxVolume v, string name, long bytes, bool misaligned)
    {
        ArraySegment<byte> buf = Timing.AlignedBuffer(1 << 20);
        buf.AsSpan().Fill(0x5a);
        DaxFile f;
        if (misaligned)
        {
            using (DaxFile pad = v.CreateFile(name + "-pad"))
                pad.Write(0, buf.AsSpan(0, 4096));
            f = v.CreateFile(name);
            f.SetLength(bytes);
            for (long off = 0; off < bytes; off += 512 << 10)
                f.Write(off, buf.AsSpan(0, 512 << 10));
        }
        else
        {
            f = v.CreateFile(name);
            for (long off = 0; off < bytes; off += 1 << 20)
                f.Write(off, buf.AsSpan(0, (int)Math.Min(1 << 20, bytes - off)));
        }
        return f;
    }

    private static int Scaled(int n, MapSuiteOptions o, int min = 11) => Math.Max(min, n * o.IterationPercent / 100);

    /// <summary>Async mappings: fsync after one 4 KiB store (large and small mapping), the whole-mapping flush it is
    /// compared with, the fsync-against-dirty-bytes curve, and the first store into a clean page against a store into a
    /// dirty one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AsyncFigures(DaxVolume v, DaxFile big, DaxFile mid, MapSuiteOptions o, Dictionary<string, double> d)
    {
        long[] t = new long[4096];
        var rng = new Timing.XorShift64(o.Seed + 1);
        ArraySegment<byte> src = Timing.AlignedBuffer(4096);
        src.AsSpan().Fill(0x33);
        long bigPages = o.FileBytes / 4096;
        using (DaxMapping m = big.Map(0, o.FileBytes, MapAccess.ReadWrite, MapMode.Async))
        {
            // The big and the mid mapping side by side, sample for sample: the ratio of the two then shows what the
            // mapping's size costs, not what the machine did between two separate measurements.
            using (DaxMapping mm = mid.Map(0, o.MidFileBytes, MapAccess.ReadWrite, MapMode.Async))
                (d["fsync_4k_big_ns"], d["fsync_4k_mid_ns"]) = FsyncAfterOneStore(big, m, mid, mm, () => rng.Next(), src, o);
            {
                int n = Budgeted(Scaled(100, o), t, () =>
                {
                    long t0 = Timing.NowNs();
                    big.Flush();
                    return Timing.NowNs() - t0;
                });
                d["fsync_clean_ns"] = Timing.Median(t, n);
            }

            int nw = Scaled(7, o, 3);
            for (int i = 0; i < nw; i++)
            {
                long off = (long)(rng.Next() % (ulong)bigPages) * 4096;
                src.AsSpan().CopyTo(m.GetSpan(off, 4096));
                long t0 = Timing.NowNs();
                m.Persist(0, o.FileBytes);
                t[i] = Timing.NowNs() - t0;
            }
            d["flush_whole_ns"] = Timing.Median(t, nw);
            big.Flush();

            byte value = 1;
            foreach (long s in CurveSizes.Where(s => s <= o.FileBytes))
            {
                int n = s <= (64 << 10) ? Scaled(200, o) : s <= Mi2 ? Scaled(40, o) : s <= (64 << 20) ? Scaled(7, o, 3) : Scaled(3, o, 3);
                long slots = (o.FileBytes - s) / Math.Min(s, 4096) + 1;
                n = Budgeted(n, t, () =>
                {
                    long off = (long)(rng.Next() % (ulong)slots) * Math.Min(s, 4096);
                    m.GetSpan(off, (int)s).Fill(value++);
                    long t0 = Timing.NowNs();
                    big.Flush();
                    return Timing.NowNs() - t0;
                }, min: 3);
                d[$"fsync_dirty_ns {s}"] = Timing.Median(t, n);
            }

            // First store into a clean page (after fsync: write-protected again under the page policy) against a store
            // into a page already written since. Both right after an fsync, both with the page's translation warmed
            // first (a load from line 0 for the clean page, a store to line 0 for the dirty one), both to a line not
            // touched yet, so that they differ only in the write-protect fault. Batches of 8.
            const int k = 8;
            long[] at = new long[k];
            long[] tClean = new long[t.Length], tDirty = new long[t.Length];
            int nb = Math.Min(Scaled(300, o), t.Length), done = 0;
            var budget = System.Diagnostics.Stopwatch.StartNew();
            unsafe
            {
                byte* b = (byte*)m.Pointer;
                long sink = 0;
                for (; done < nb && (done < 5 || budget.Elapsed < Budget); done++)
                {
                    int i = done;
                    big.Flush();
                    for (int j = 0; j < k; j++)
                        at[j] = (long)(rng.Next() % (ulong)bigPages) * 4096;
                    for (int j = 0; j < k; j++)
                        sink += *(long*)(b + at[j]);
                    long t0 = Timing.NowNs();
                    for (int j = 0; j < k; j++)
                        *(long*)(b + at[j] + 1024) = i;
                    tClean[i] = Timing.NowNs() - t0;
                    big.Flush();
                    for (int j = 0; j < k; j++)
                        at[j] = (long)(rng.Next() % (ulong)bigPages) * 4096;
                    for (int j = 0; j < k; j++)
                        *(long*)(b + at[j]) = i;
                    t0 = Timing.NowNs();
                    for (int j = 0; j < k; j++)
                        *(long*)(b + at[j] + 2048) = i;
                    tDirty[i] = Timing.NowNs() - t0;
                }
                GC.KeepAlive(sink);
            }
            d["store_clean_ns"] = Timing.Median(tClean, done) / k;
            d["store_dirty_ns"] = Timing.Median(tDirty, done) / k;
            big.Flush();
        }

        // A window of the big file as long as the mid file, against the whole mid file, sample for sample: the same
        // mapped (possibly dirty) bytes in a file 16 times larger. What the file's size costs an fsync: for the extent
        // policy, whose "dirty" is "under a writable mapping", this is its latency-follows-dirty-data figure.
        using (DaxMapping w = big.Map(0, o.MidFileBytes, MapAccess.ReadWrite, MapMode.Async))
        using (DaxMapping mm = mid.Map(0, o.MidFileBytes, MapAccess.ReadWrite, MapMode.Async))
            (d["fsync_4k_window_ns"], d["fsync_4k_mid_file_ns"]) = FsyncAfterOneStore(big, w, mid, mm, () => rng.Next(), src, o);
    }

    /// <summary>Median fsync of <paramref name="a"/> and of <paramref name="b"/>, each after one 4 KiB store at a random
    /// page of its mapping (<paramref name="ma"/>, <paramref name="mb"/>: the whole file), alternating sample by sample.
    /// A few unmeasured rounds first (caches, branch predictors), then the measured ones: up to the count or the time
    /// budget (an extent-policy fsync of 1 GiB takes tens of milliseconds), at least 5 pairs.</summary>
    private static (double A, double B) FsyncAfterOneStore(DaxFile a, DaxMapping ma, DaxFile b, DaxMapping mb, Func<ulong> next,
        ArraySegment<byte> src, MapSuiteOptions o)
    {
        long[] ta = new long[4096], tb = new long[4096], pair = new long[4096];
        a.Flush();
        b.Flush();
        long Sample(DaxFile f, DaxMapping m)
        {
            long off = (long)(next() % (ulong)(m.Length / 4096)) * 4096;
            src.AsSpan().CopyTo(m.GetSpan(off, 4096));
            long t0 = Timing.NowNs();
            f.Flush();
            return Timing.NowNs() - t0;
        }
        int n = 0;
        for (int pass = 0; pass < 2; pass++)
        {
            int k = 0;
            n = Budgeted(pass == 0 ? 5 : Scaled(300, o), pair, () =>
            {
                int i = k++;
                ta[i] = Sample(a, ma);
                tb[i] = Sample(b, mb);
                return ta[i] + tb[i];
            });
        }
        return (Timing.Median(ta, n), Timing.Median(tb, n));
    }

    /// <summary>Time budget of one figure of the async part.</summary>
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(1.2);

    /// <summary>Runs <paramref name="sample"/> (which returns the nanoseconds it timed) up to <paramref name="n"/> times
    /// or until <see cref="Budget"/> has passed, at least <paramref name="min"/> times; returns how many samples.</summary>
    private static int Budgeted(int n, long[] t, Func<long> sample, int min = 5)
    {
        n = Math.Min(n, t.Length);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int i = 0;
        for (; i < n && (i < min || sw.Elapsed < Budget); i++)
            t[i] = sample();
        return i;
    }

    /// <summary>Sync mappings: random loads PMD vs PTE, map+write+persist+unmap of 2 MiB PMD vs PTE, 64-byte
    /// store + Persist.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SyncFigures(DaxFile big, DaxFile pte, DaxFile s1, DaxFile s2, MapSuiteOptions o, Dictionary<string, double> d,
        Dictionary<string, string> facts, string inprocLibrary)
    {
        // 2. Random 8-byte loads over pre-faulted mappings. The target compares the aligned file mapped with 2 MiB pages
        // against the same file mapped with 4 KiB pages (MapPages.Small): the same physical pages, so where they lie in
        // host memory is not in the ratio. The misaligned file (PTE as a DAX file system meets it) is a row of its own.
        // Nine short alternations, the order flipped each time, the median rate of each: drift on a shared machine
        // falls on both sides alike.
        using (DaxMapping mp = big.Map(0, o.FileBytes, MapAccess.ReadWrite, MapMode.Sync))
        using (DaxMapping ms = big.Map(0, o.FileBytes, MapAccess.ReadWrite, MapMode.Sync, MapPages.Small))
        using (DaxMapping mt = pte.Map(0, o.FileBytes, MapAccess.ReadWrite, MapMode.Sync))
        {
            MappingGranularity gp = mp.Granularity, gs = ms.Granularity, gt = mt.Granularity;
            d["load_pmd_smaps"] = gp.PmdBytes;
            d["load_pte_smaps"] = gs.PmdBytes;
            d["load_misaligned_smaps"] = gt.PmdBytes;
            facts["granularity_aligned_file"] = gp.ToString();
            facts["granularity_aligned_file_small_pages"] = gs.ToString();
            facts["granularity_misaligned_file"] = gt.ToString();
            long loads = Math.Max(1 << 16, (8L << 20) * o.IterationPercent / 100) / 3;
            long chained = Math.Max(1 << 14, loads / 4);
            nint[] bases = [mp.Pointer, ms.Pointer, mt.Pointer];
            foreach (nint b in bases)
                RandomLoads(b, o.FileBytes, 1 << 16, o.Seed);
            var rates = new List<double>[] { [], [], [] };
            var chains = new List<double>[] { [], [], [] };
            for (int r = 0; r < 9; r++)
            {
                for (int q = 0; q < 3; q++)
                {
                    int w = r % 2 == 0 ? q : 2 - q;
                    rates[w].Add(RandomLoads(bases[w], o.FileBytes, loads, o.Seed + (ulong)r));
                    // The same with each address depending on the value loaded before it: no overlap between loads, so
                    // every TLB miss's page walk is paid in full (the independent loads overlap many of them).
                    chains[w].Add(DependentLoads(bases[w], o.FileBytes, chained, o.Seed + (ulong)r));
                }
            }
            d["load_pmd_mps"] = Timing.Median(rates[0]);
            d["load_pte_mps"] = Timing.Median(rates[1]);
            d["load_misaligned_mps"] = Timing.Median(rates[2]);
            d["load_dep_pmd_mps"] = Timing.Median(chains[0]);
            d["load_dep_pte_mps"] = Timing.Median(chains[1]);
            d["load_dep_misaligned_mps"] = Timing.Median(chains[2]);

            // 4. 64-byte store + Persist through the sync mapping, interleaved batch by batch with the same stores made
            // by PMDK (memcpy + pmem_persist, libpmem loaded into this process) through the same mapping, and with
            // DaxMapping.CopyPersist (non-temporal from the crossover on); the order rotates each sample, a warm-up
            // pass first. Offsets are drawn as the anchor draws them, a batch of 8 per method per sample.
            ArraySegment<byte> src = Timing.AlignedBuffer(64);
            for (int i = 0; i < 64; i++)
                src[i] = (byte)(i * 131 + 7);
            const int k = 8;
            int n = Timing.Iterations(64, o.IterationPercent) / k;
            long[][] t = [new long[n], new long[n], new long[n]];
            long[] dst = new long[k];
            ulong slots = (ulong)((o.FileBytes - 64) / 64);
            var pmdk = (delegate* unmanaged[SuppressGCTransition]<nint, long*, int, nint, void>)Anchors.Export(inprocLibrary,
                "pmdk_store_persist_batch");
            for (int pass = 0; pass < 2; pass++)
            {
                var rng = new Timing.XorShift64(o.Seed + 64 + 2);
                for (int i = 0; i < n; i++)
                {
                    for (int q = 0; q < 3; q++)
                    {
                        int w = (i + q) % 3;
                        for (int j = 0; j < k; j++)
                            dst[j] = (long)(rng.Next() % slots) * 64;
                        long t0 = Timing.NowNs();
                        if (w == 0)
                            StorePersistBatch(mp, dst, src);
                        else if (w == 1)
                            CopyPersistBatch(mp, dst, src);
                        else
                            PmdkBatch(pmdk, mp.Pointer, dst, src);
                        t[w][i] = Timing.NowNs() - t0;
                    }
                }
            }
            d["store_persist_ns"] = Timing.Median(t[0], n) / k;
            d["copy_persist_ns"] = Timing.Median(t[1], n) / k;
            d["pmdk_store_persist_ns"] = Timing.Median(t[2], n) / k;
            d["store_persist_smaps"] = mp.Granularity.PmdBytes;
        }

        // 3. Map + write 2 MiB + persist + unmap, PMD-mappable file against a misaligned one, alternating.
        ArraySegment<byte> two = Timing.AlignedBuffer((int)Mi2);
        two.AsSpan().Fill(0x6b);
        using (DaxMapping g1 = s1.Map(0, Mi2, MapAccess.ReadWrite, MapMode.Sync))
            d["mwpu_pmd_smaps"] = g1.Granularity.PmdBytes;
        using (DaxMapping g2 = s2.Map(0, Mi2, MapAccess.ReadWrite, MapMode.Sync))
            d["mwpu_pte_smaps"] = g2.Granularity.PmdBytes;
        int nm = Scaled(300, o);
        long[] ta = new long[nm], tb = new long[nm];
        for (int pass = 0; pass < 2; pass++)
        {
            int n = pass == 0 ? Math.Min(nm, 30) : nm;
            for (int i = 0; i < n; i++)
            {
                ta[i] = MapWritePersistUnmap(s1, two);
                tb[i] = MapWritePersistUnmap(s2, two);
            }
        }
        d["mwpu_pmd_ns"] = Timing.Median(ta, nm);
        d["mwpu_pte_ns"] = Timing.Median(tb, nm);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long MapWritePersistUnmap(DaxFile f, ArraySegment<byte> data)
    {
        long t0 = Timing.NowNs();
        using (DaxMapping m = f.Map(0, data.Count, MapAccess.ReadWrite, MapMode.Sync))
        {
            data.AsSpan().CopyTo(m.GetSpan(0, data.Count));
            m.Persist(0, data.Count);
        }
        return Timing.NowNs() - t0;
    }

    /// <summary>Independent random 8-byte loads over [p, p+length) (length a power of two); millions of loads per second.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static unsafe double RandomLoads(nint p, long length, long count, ulong seed)
    {
        ulong mask = (ulong)(length / 8 - 1);
        ulong s = seed | 1, sum = 0;
        ulong* b = (ulong*)p;
        long t0 = Timing.NowNs();
        for (long i = 0; i < count; i++)
        {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            sum += b[s & mask];
        }
        long ns = Timing.NowNs() - t0;
        GC.KeepAlive(sum);
        return count / (double)ns * 1000;
    }

    /// <summary>Random 8-byte loads where each address mixes in the value loaded before it (a dependency chain:
    /// latency-bound, one TLB miss at a time); millions of loads per second.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static unsafe double DependentLoads(nint p, long length, long count, ulong seed)
    {
        ulong mask = (ulong)(length / 8 - 1);
        ulong s = seed | 1;
        ulong* b = (ulong*)p;
        long t0 = Timing.NowNs();
        for (long i = 0; i < count; i++)
        {
            s ^= b[s & mask];
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s |= 1;
        }
        long ns = Timing.NowNs() - t0;
        GC.KeepAlive(s);
        return count / (double)ns * 1000;
    }

    /// <summary>Where the run's files live: a huge=always tmpfs mounted for the run (unmounted on dispose, also on
    /// failure), or a given directory / /dev/shm.</summary>
    private sealed class Backing : IDisposable
    {
        private string? _mounted;
        private ConsoleCancelEventHandler? _onCancel;

        public required string Directory { get; init; }
        public required string Description { get; init; }
        public required bool Huge { get; init; }

        public static Backing Acquire(string? directory, long bytes)
        {
            if (directory is not null)
                return new Backing { Directory = directory, Description = $"{directory} (given with --dir; not mounted by the run)", Huge = HasHugePages(directory) };
            if (!Environment.IsPrivilegedProcess)
                return new Backing
                {
                    Directory = "/dev/shm",
                    Description = "/dev/shm: fallback, not root so no huge=always tmpfs could be mounted (no 2 MiB pages: PMD figures show the fallback)",
                    Huge = HasHugePages("/dev/shm"),
                };
            string dir = Path.Combine(Path.GetTempPath(), $"daxfs-bench-map-huge-{Environment.ProcessId}");
            System.IO.Directory.CreateDirectory(dir);
            long gib = Math.Max(1, (bytes + (1L << 30) - 1) >> 30);
            var (code, output) = Anchors.Run("mount", $"-t tmpfs -o huge=always,size={gib}G none {dir}", null, TimeSpan.FromSeconds(30));
            if (code != 0)
            {
                System.IO.Directory.Delete(dir);
                return new Backing
                {
                    Directory = "/dev/shm",
                    Description = $"/dev/shm: fallback, mounting a huge=always tmpfs failed ({output.Trim()})",
                    Huge = HasHugePages("/dev/shm"),
                };
            }
            var b = new Backing { Directory = dir, Description = $"tmpfs huge=always,size={gib}G mounted at {dir} for this run", Huge = true };
            b._mounted = dir;
            b._onCancel = (_, _) => b.Dispose();
            Console.CancelKeyPress += b._onCancel;
            return b;
        }

        /// <summary>Whether files created under <paramref name="dir"/> get huge pages (a tmpfs mounted huge=always or
        /// within_size, from /proc/mounts).</summary>
        private static bool HasHugePages(string dir)
        {
            try
            {
                string full = Path.GetFullPath(dir).TrimEnd('/');
                string best = "";
                bool huge = false;
                foreach (string line in File.ReadLines("/proc/mounts"))
                {
                    string[] f = line.Split(' ');
                    if (f.Length < 4 || f[2] != "tmpfs")
                        continue;
                    string mp = f[1].TrimEnd('/');
                    if ((full == mp || full.StartsWith(mp + "/", StringComparison.Ordinal) || mp.Length == 0) && mp.Length >= best.Length)
                    {
                        best = mp;
                        huge = f[3].Contains("huge=always", StringComparison.Ordinal) || f[3].Contains("huge=within_size", StringComparison.Ordinal);
                    }
                }
                return huge;
            }
            catch (IOException)
            {
                return false;
            }
        }

        public void Dispose()
        {
            string? dir = Interlocked.Exchange(ref _mounted, null);
            if (dir is null)
                return;
            if (_onCancel is not null)
                Console.CancelKeyPress -= _onCancel;
            var (code, _) = Anchors.Run("umount", dir, null, TimeSpan.FromSeconds(30));
            if (code != 0)
                Anchors.Run("umount", $"-l {dir}", null, TimeSpan.FromSeconds(30));
            try
            {
                System.IO.Directory.Delete(dir);
            }
            catch (IOException)
            {
            }
        }
    }
}
