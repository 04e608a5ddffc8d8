using System.Globalization;
using System.Runtime.CompilerServices;
using DaxFs.Pmem;

namespace DaxFs.Bench;

/// <summary>Settings of `daxfs bench fs`.</summary>
/// <param name="Directory">tmpfs directory for the DaxFS device, the PMDK file and the kernel's files.</param>
/// <param name="Rounds">Anchor/DaxFS alternations; figures are medians over rounds.</param>
/// <param name="IterationPercent">Scales iteration counts and the sequential write size (100 = full: 10,000 ops, 1 GiB).</param>
/// <param name="Seed">Offset generator seed.</param>
public sealed record FsSuiteOptions(string Directory = "/dev/shm", int Rounds = 3, int IterationPercent = 100, ulong Seed = 7);

/// <summary>FsSuite -- file system calls, each durable on return on emulated pmem, against the kernel doing the same
/// on tmpfs (which makes nothing durable) and against PMDK's raw durable copy: median latency of 4 KiB overwrite,
/// 4 KiB append, create, unlink and rename, and 1 GiB sequential write bandwidth.</summary>
public static class FsSuite
{
    /// <summary>Runs the suite.</summary>
    public static BenchReport Run(FsSuiteOptions o, IProgress<(string Step, double Fraction)>? progress = null)
    {
        string kernel = Anchors.Build("kernel_fs_anchor");
        string pmdk = Anchors.Build("pmdk_anchor", "pmem");
        string inproc = Anchors.BuildLibrary("pmdk_inproc", "pmem");
        var k = new List<Dictionary<string, double>>();
        var p = new List<Dictionary<string, double>>();
        var d = new List<Dictionary<string, double>>();
        string device = "";
        int steps = o.Rounds * 3, step = 0;
        for (int r = 0; r < o.Rounds; r++)
        {
            progress?.Report(($"round {r + 1}/{o.Rounds}: kernel on tmpfs", (double)step++ / steps));
            k.Add(RunKernel(kernel, o));
            progress?.Report(($"round {r + 1}/{o.Rounds}: DaxFS", (double)step++ / steps));
            string volume = Path.Combine(o.Directory, $"daxfs-bench-fs-{Environment.ProcessId}.img");
            try
            {
                (var dd, device) = RunDaxFs(o, volume, inproc);
                d.Add(dd);
                // PMDK over the pages DaxFS just used: where a page lies in host memory moves a durable 4 KiB copy
                // by tens of per cent from one file to the next on this kind of machine.
                progress?.Report(($"round {r + 1}/{o.Rounds}: PMDK on the same pages", (double)step++ / steps));
                p.Add(Anchors.RunPmdkOn(pmdk, volume, $"0 {Math.Max(1, o.IterationPercent / 3)} {o.Seed} existing", TimeSpan.FromMinutes(10)));
            }
            finally
            {
                File.Delete(volume);
            }
        }
        progress?.Report(("done", 1));
        double[] K(string key) => k.Select(x => x[key]).ToArray();
        double[] P(string key) => p.Select(x => x[key]).ToArray();
        double[] D(string key) => d.Select(x => x[key]).ToArray();
        var results = new List<BenchResult>
        {
            BenchResult.Compared("overwrite_4KiB", "ns", D("overwrite_ns"), InProc, D("pmdk_persist_overwrite_ns"), "<= 1.2"),
            // Mounted with DataMode.InPlace: the overwrite durable on return but not atomic (as ext4-DAX's).
            BenchResult.Compared("overwrite_4KiB_inplace", "ns", D("overwrite_inplace_ns"),
                "pmem_memcpy_persist 4 KiB, libpmem in this process, into the blocks of the file overwritten, alternating blocks",
                D("pmdk_persist_overwrite_inplace_ns"), "<= 1.2"),
            // The same raw persist followed by one locked instruction, and the in-place overwrite against it: SFENCE lets
            // consecutive persists overlap their write-back, a locked instruction (any lock a call takes) waits for it.
            BenchResult.Compared("persist_then_locked_op_4KiB", "ns", D("pmdk_persist_locked_inplace_ns"),
                "pmem_memcpy_persist 4 KiB alone, the same blocks, alternating blocks", D("pmdk_persist_overwrite_inplace_ns"), null),
            BenchResult.Compared("overwrite_4KiB_inplace_vs_locked_persist", "ns", D("overwrite_inplace_ns"),
                "pmem_memcpy_persist 4 KiB + one locked instruction, the same blocks, alternating blocks", D("pmdk_persist_locked_inplace_ns"), null),
            BenchResult.Compared("append_4KiB", "ns", D("append_ns"), InProc, D("pmdk_persist_append_ns"), "<= 1.5"),
            // An append's floor in a file system that locks per call: block persist, one 64-byte record line persisted
            // after it, one locked instruction -- against the raw persist, and the append against it.
            BenchResult.Compared("append_floor_locked_4KiB", "ns", D("pmdk_append_floor_locked_ns"), InProc, D("pmdk_persist_append_ns"), null),
            BenchResult.Compared("append_4KiB_vs_locked_floor", "ns", D("append_ns"),
                "PMDK 4 KiB persist + 64 B line persist + one locked instruction, in this process, alternating blocks", D("pmdk_append_floor_locked_ns"), null),
            BenchResult.Compared("create", "ns", D("create_ns"), "kernel tmpfs open(O_CREAT)+close", K("create_ns"), "<= 0.3"),
            BenchResult.Compared("unlink", "ns", D("unlink_ns"), "kernel tmpfs unlink", K("unlink_ns"), "<= 0.3"),
            BenchResult.Compared("rename", "ns", D("rename_ns"), "kernel tmpfs rename", K("rename_ns"), null),
            BenchResult.Compared("sequential_write", "GiB/s", D("seq_gibs"), "pmem_memcpy_persist stream, same pages", P("stream_gibs 0"), ">= 0.9"),
            BenchResult.Compared("overwrite_4KiB_vs_kernel", "ns", D("overwrite_ns"), "kernel tmpfs pwrite+fdatasync", K("overwrite_ns"), null),
            BenchResult.Compared("append_4KiB_vs_kernel", "ns", D("append_ns"), "kernel tmpfs append+fdatasync", K("append_ns"), null),
            BenchResult.Compared("sequential_write_vs_kernel", "GiB/s", D("seq_gibs"), "kernel tmpfs pwrite 1 MiB", K("seq_gibs"), null),
            // What an atomic copy-on-write overwrite cannot go below (block persist, then a 256-byte record persist),
            // against the raw persist, and the overwrite against it: the part of the overwrite that is bookkeeping.
            BenchResult.Compared("cow_floor_4KiB", "ns", D("pmdk_cow_floor_ns"), InProc, D("pmdk_persist_overwrite_ns"), null),
            // The same with the smallest record (one 64-byte line, non-temporal): the floor of any protocol that orders
            // the block before a record, whatever the record holds.
            BenchResult.Compared("cow_floor_line_4KiB", "ns", D("pmdk_cow_floor_line_ns"), InProc, D("pmdk_persist_overwrite_ns"), null),
            BenchResult.Compared("overwrite_4KiB_vs_cow_floor", "ns", D("overwrite_ns"), "PMDK 4 KiB persist + 256 B record persist, in this process, alternating blocks",
                D("pmdk_cow_floor_ns"), null),
            // The same raw persist by PMDK's own program over the whole volume file, after DaxFS had measured there.
            BenchResult.Compared("overwrite_4KiB_vs_pmdk_process", "ns", D("overwrite_ns"), ProcessAnchor, P("memcpy_persist_ns 4096"), null),
            BenchResult.Compared("append_4KiB_vs_pmdk_process", "ns", D("append_ns"), ProcessAnchor, P("memcpy_persist_ns 4096"), null),
        };
        var env = new Dictionary<string, string>
        {
            ["device"] = device,
            ["rounds"] = o.Rounds.ToString(CultureInfo.InvariantCulture),
            ["anchors"] = "kernel_fs_anchor on tmpfs (no durability); PMDK libpmem in this process (pmdk_inproc: pmem_memcpy_persist into a scratch file of the volume being measured, in blocks of calls alternating with DaxFS's); PMDK pmdk_anchor with PMEM_IS_PMEM_FORCE=1 over the file of the volume DaxFS was just measured on (the same pages)",
            ["kernel"] = Environment.OSVersion.VersionString,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
        };
        return new BenchReport("fs", results, env);
    }

    private const string InProc = "pmem_memcpy_persist 4 KiB, libpmem in this process, same volume, alternating blocks";
    private const string ProcessAnchor = "pmem_memcpy_persist 4 KiB, PMDK's program over the volume's file afterwards";

    private static Dictionary<string, double> RunKernel(string binary, FsSuiteOptions o)
    {
        string dir = Path.Combine(o.Directory, $"daxfs-bench-kernel-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            var (code, output) = Anchors.Run(binary, $"{dir} {o.IterationPercent} {o.Seed}", null, TimeSpan.FromMinutes(10));
            if (code != 0)
                throw new BenchException($"the kernel anchor failed (exit {code}): {output.Trim()}");
            return ParsePairs(output);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }


    /// <summary>Calls [0, <paramref name="n"/>) in blocks of <paramref name="block"/>: each block runs every arm over
    /// its calls, the arms' order rotating from block to block (arm k first in block k), so that the machine's drift
    /// falls on every arm while each runs a block of calls with its own state warm. An arm records call i's figure.</summary>
    private static void Alternate(int n, int block, params Action<int>[] arms)
    {
        for (int b0 = 0, blockNo = 0; b0 < n; b0 += block, blockNo++)
        {
            int b1 = Math.Min(n, b0 + block);
            for (int q = 0; q < arms.Length; q++)
            {
                Action<int> arm = arms[(blockNo + q) % arms.Length];
                for (int i = b0; i < b1; i++)
                    arm(i);
            }
        }
    }

    /// <summary>The device offset of each of the first <paramref name="count"/> blocks of file <paramref name="ino"/>
    /// (a place for PMDK's side to store into); <paramref name="holes"/> is the error when one is not mapped.</summary>
    private static long[] BlockOffsets(DaxVolume v, ulong ino, int count, string holes)
    {
        long[] offsets = new long[count];
        int filled = 0;
        v.ReadExtents(ino, 0, count * 4096L, (at, len) =>
        {
            for (long b = 0; b < len / 4096 && filled < count; b++)
                offsets[filled++] = at < 0 ? -1 : at + b * 4096;
        });
        if (filled != count || offsets.Any(x => x < 0))
            throw new BenchException(holes);
        return offsets;
    }

    private static Dictionary<string, double> ParsePairs(string output)
    {
        var d = new Dictionary<string, double>();
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] f = line.Split(' ');
            if (f.Length == 2)
                d[f[0]] = double.Parse(f[1], CultureInfo.InvariantCulture);
        }
        return d;
    }

    /// <summary>The DaxFS side: warm-up passes until tiered compilation has settled (<see cref="Timing.WarmUp"/>; the
    /// anchors are ahead-of-time compiled C), then the measured pass, each on a fresh volume.</summary>
    private static (Dictionary<string, double>, string) RunDaxFs(FsSuiteOptions o, string volume, string inproc)
    {
        Timing.WarmUp(() => Measure(o with { IterationPercent = Math.Min(o.IterationPercent, 10) }, volume, keep: false, inproc), TimeSpan.FromSeconds(2));
        return Measure(o, volume, keep: true, inproc);
    }

    /// <summary>The measured operations on a fresh emulated-pmem volume on tmpfs, pre-faulted as pmem would be.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe (Dictionary<string, double>, string) Measure(FsSuiteOptions o, string path, bool keep, string inproc)
    {
        File.Delete(path);
        long seqBytes = Math.Max(16L << 20, (1L << 30) * o.IterationPercent / 100);
        using var v = DaxVolume.Create(path, seqBytes + (512L << 20), new PmemOpenOptions { EmulatePmem = true, Exclusive = false, Prefault = true });
        if (!keep)
            File.Delete(path); // the mapping keeps it alive; a kept one is the PMDK anchor's next
        int n = Math.Max(11, 10000 * o.IterationPercent / 100);
        long[] t = new long[n], tp = new long[n], tf = new long[n], tl = new long[n];
        ArraySegment<byte> buf = Timing.AlignedBuffer(1 << 20);
        buf.AsSpan().Fill(0x5a);
        var d = new Dictionary<string, double>();
        var rng = new Timing.XorShift64(o.Seed | 1);
        var prng = new Timing.XorShift64(o.Seed + 4096 + 7);

        // PMDK's side, in this process: pmem_memcpy_persist into a scratch file of this volume (its blocks found
        // through the volume, written behind its back: the file is only a place), 4 KiB at random blocks of its first
        // 64 MiB, as the overwrite file is; the copy-on-write floor's 256-byte records appended in its last 2 MiB.
        var persist = (delegate* unmanaged[SuppressGCTransition]<nint, nint, nuint, void>)Anchors.Export(inproc, "pmdk_memcpy_persist");
        var cowFloor = (delegate* unmanaged[SuppressGCTransition]<nint, nint, nuint, nint, nint, nuint, void>)Anchors.Export(inproc,
            "pmdk_cow_floor");
        var cowFloorLine = (delegate* unmanaged[SuppressGCTransition]<nint, nint, nuint, nint, nint, void>)Anchors.Export(inproc,
            "pmdk_cow_floor_line");
        var persistLocked = (delegate* unmanaged[SuppressGCTransition]<nint, nint, nuint, void>)Anchors.Export(inproc,
            "pmdk_memcpy_persist_locked");
        var cowFloorLineLocked = (delegate* unmanaged[SuppressGCTransition]<nint, nint, nuint, nint, nint, void>)Anchors.Export(inproc,
            "pmdk_cow_floor_line_locked");
        ulong root = DaxVolume.RootIno;
        const int ScratchBlocks = (64 << 20) / 4096, LogBlocks = (2 << 20) / 4096;
        ulong scratch = v.CreateFile(root, "pmdk-scratch", 0x1A4).Ino;
        for (long off = 0; off < (long)(ScratchBlocks + LogBlocks) * 4096; off += 1 << 20)
            v.Write(scratch, off, buf);
        long[] dev = BlockOffsets(v, scratch, ScratchBlocks + LogBlocks, "the PMDK scratch file has holes: no place for the in-process anchor");
        nint baseAddress = v.Device.BaseAddress, src = (nint)Unsafe.AsPointer(ref buf.AsSpan()[0]);
        long logPos = 0;
        long Raw()
        {
            nint at = baseAddress + (nint)dev[(int)(prng.Next() % ScratchBlocks)];
            long t0 = Timing.NowNs();
            persist(at, src, 4096);
            return Timing.NowNs() - t0;
        }
        long Floor(bool line, bool locked = false)
        {
            nint at = baseAddress + (nint)dev[(int)(prng.Next() % ScratchBlocks)];
            nint record = baseAddress + (nint)(dev[ScratchBlocks + (int)(logPos / 4096)] + logPos % 4096);
            logPos = (logPos + 256) % ((long)LogBlocks * 4096);
            long t0 = Timing.NowNs();
            if (locked)
                cowFloorLineLocked(at, src, 4096, record, src + 8192);
            else if (line)
                cowFloorLine(at, src, 4096, record, src + 8192);
            else
                cowFloor(at, src, 4096, record, src + 8192, 256);
            return Timing.NowNs() - t0;
        }

        ulong ow = v.CreateFile(root, "overwrite", 0x1A4).Ino;
        for (long off = 0; off < (64L << 20); off += 1 << 20)
            v.Write(ow, off, buf);
        // Overwrites, raw persists and the floor in alternating blocks (ten blocks of a tenth of the calls each, the
        // order rotating): near in time, so the shared machine's drift falls on all three, yet each side runs a block
        // of calls with its own state warm, as a program doing only that would (interleaved call by call, the PMDK
        // calls between two overwrites disturb the file system's cached state on every call).
        int block = Math.Max(1, n / 10);
        Alternate(n, block,
            i =>
            {
                long off = (long)(rng.Next() % 16384) * 4096;
                long t0 = Timing.NowNs();
                v.Write(ow, off, buf.AsSpan(0, 4096));
                v.Fsync(ow, dataOnly: true);
                t[i] = Timing.NowNs() - t0;
            },
            i => tp[i] = Raw(),
            i => tf[i] = Floor(line: false),
            i => tl[i] = Floor(line: true));
        d["overwrite_ns"] = Timing.Median(t, n);
        d["pmdk_persist_overwrite_ns"] = Timing.Median(tp, n);
        d["pmdk_cow_floor_ns"] = Timing.Median(tf, n);
        d["pmdk_cow_floor_line_ns"] = Timing.Median(tl, n);
        v.Unlink(root, "overwrite");

        // The same overwrites on a volume mounted with DataMode.InPlace (durable on return, not atomic: ext4-DAX's
        // overwrite), in alternating blocks with PMDK's raw persist into random blocks of that very file: the same
        // pages on both sides.
        {
            string inPlacePath = path + ".inplace";
            File.Delete(inPlacePath);
            using var iv = DaxVolume.Create(inPlacePath, 96L << 20, new PmemOpenOptions { EmulatePmem = true, Exclusive = false, Prefault = true },
                mount: new MountOptions { Data = DataMode.InPlace });
            File.Delete(inPlacePath); // the mapping keeps it alive
            ulong iow = iv.CreateFile(root, "overwrite", 0x1A4).Ino;
            for (long off = 0; off < (64L << 20); off += 1 << 20)
                iv.Write(iow, off, buf);
            long[] own = BlockOffsets(iv, iow, ScratchBlocks, "the in-place overwrite file has holes");
            nint ownBase = iv.Device.BaseAddress;
            long RawOwn(bool locked)
            {
                nint at = ownBase + (nint)own[(int)(prng.Next() % ScratchBlocks)];
                long t0 = Timing.NowNs();
                if (locked)
                    persistLocked(at, src, 4096);
                else
                    persist(at, src, 4096);
                return Timing.NowNs() - t0;
            }
            Alternate(n, block,
                i =>
                {
                    long off = (long)(rng.Next() % 16384) * 4096;
                    long t0 = Timing.NowNs();
                    iv.Write(iow, off, buf.AsSpan(0, 4096));
                    iv.Fsync(iow, dataOnly: true);
                    t[i] = Timing.NowNs() - t0;
                },
                i => tp[i] = RawOwn(locked: false),
                i => tl[i] = RawOwn(locked: true));
            d["overwrite_inplace_ns"] = Timing.Median(t, n);
            d["pmdk_persist_overwrite_inplace_ns"] = Timing.Median(tp, n);
            d["pmdk_persist_locked_inplace_ns"] = Timing.Median(tl, n);
        }

        ulong ap = v.CreateFile(root, "append", 0x1A4).Ino;
        long end = 0;
        Alternate(n, block,
            i =>
            {
                long t0 = Timing.NowNs();
                v.Write(ap, end, buf.AsSpan(0, 4096));
                v.Fsync(ap, dataOnly: true);
                t[i] = Timing.NowNs() - t0;
                end += 4096;
            },
            i => tp[i] = Raw(),
            i => tl[i] = Floor(line: true, locked: true));
        d["append_ns"] = Timing.Median(t, n);
        d["pmdk_persist_append_ns"] = Timing.Median(tp, n);
        d["pmdk_append_floor_locked_ns"] = Timing.Median(tl, n);
        v.Unlink(root, "append");
        v.Unlink(root, "pmdk-scratch");

        ulong dir = v.MakeDirectory(root, "d", 0x1ED).Ino;
        byte[][] names = Enumerable.Range(0, n).Select(i => System.Text.Encoding.UTF8.GetBytes("f" + i)).ToArray();
        for (int i = 0; i < n; i++)
        {
            long t0 = Timing.NowNs();
            v.CreateFile(dir, names[i], 0x1A4);
            t[i] = Timing.NowNs() - t0;
        }
        d["create_ns"] = Timing.Median(t, n);
        for (int i = 0; i < n; i++)
        {
            long t0 = Timing.NowNs();
            v.Unlink(dir, names[i]);
            t[i] = Timing.NowNs() - t0;
        }
        d["unlink_ns"] = Timing.Median(t, n);

        v.CreateFile(dir, "a"u8, 0x1A4);
        for (int i = 0; i < n; i++)
        {
            long t0 = Timing.NowNs();
            if (i % 2 == 0)
                v.Rename(dir, "a"u8, dir, "b"u8);
            else
                v.Rename(dir, "b"u8, dir, "a"u8);
            t[i] = Timing.NowNs() - t0;
        }
        d["rename_ns"] = Timing.Median(t, n);

        ulong seq = v.CreateFile(root, "seq", 0x1A4).Ino;
        long s0 = Timing.NowNs();
        for (long off = 0; off < seqBytes; off += 1 << 20)
            v.Write(seq, off, buf);
        v.Fsync(seq, dataOnly: true);
        d["seq_gibs"] = seqBytes / (double)(Timing.NowNs() - s0) * 1e9 / (1 << 30);
        return (d, v.Device.Info.ToString());
    }
}
