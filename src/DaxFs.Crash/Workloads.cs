namespace DaxFs.Crash;

/// <summary>Workloads -- the ACE-style bounded workloads (every 1-operation sequence and every pair over a fixed small
/// file set, with the setup that makes each meaningful) and seeded random long workloads.</summary>
public static class Workloads
{
    /// <summary>The file set every ACE workload starts from: directories A, B, A/C, A/E (empty); A/foo (16 KiB),
    /// B/foo (4 KiB, an xattr), A/C/foo (empty), A/sparse (64 KiB, data only in its first 4 KiB), A/big (2 MiB in one
    /// 2 MiB-aligned extent: the PMD case). Names ending in "bar" do not exist yet.</summary>
    public static IReadOnlyList<CrashOp> Setup { get; } =
    [
        Ops.Mkdir("/A"), Ops.Mkdir("/B"), Ops.Mkdir("/A/C"), Ops.Mkdir("/A/E"),
        Ops.Create("/A/foo"), Ops.Write("/A/foo", 0, 16384, 1),
        Ops.Create("/B/foo"), Ops.Write("/B/foo", 0, 4096, 2), Ops.SetXattr("/B/foo", "user.x", 16, 3),
        Ops.Create("/A/C/foo"),
        Ops.Create("/A/sparse"), Ops.Write("/A/sparse", 0, 4096, 4), Ops.Truncate("/A/sparse", 65536),
        Ops.Create("/A/big"), Ops.Fallocate("/A/big", FallocateMode.Allocate, 0, 2 << 20), Ops.Write("/A/big", 0, 2 << 20, 5),
    ];

    /// <summary>The core operations of the ACE workloads, each with its arguments over the file set.</summary>
    public static IReadOnlyList<CrashOp> Core { get; } = BuildCore();

    private static List<CrashOp> BuildCore()
    {
        const FallocateMode keep = FallocateMode.KeepSize;
        var list = new List<CrashOp>
        {
            Ops.Create("/A/bar"), Ops.Create("/A/C/bar"), Ops.Create("/B/bar"),
            Ops.Mkdir("/A/D"), Ops.Mkdir("/B/D"),
            Ops.Write("/A/foo", 0, 4096, 10), Ops.Write("/A/foo", 100, 10, 11), Ops.Write("/A/foo", 8000, 20000, 12),
            Ops.Write("/A/C/foo", 0, 100, 13), Ops.Write("/A/sparse", 32768, 4096, 14), Ops.Write("/A/big", 1 << 20, 4096, 15),
            Ops.Append("/A/foo", 4096, 16), Ops.Append("/A/C/foo", 100, 17), Ops.Append("/B/foo", 256 << 10, 18),
            Ops.Truncate("/A/foo", 0), Ops.Truncate("/A/foo", 5000), Ops.Truncate("/A/foo", 100000), Ops.Truncate("/B/foo", 0),
            Ops.Truncate("/A/big", 4096),
            Ops.Fallocate("/A/foo", FallocateMode.Allocate, 0, 65536), Ops.Fallocate("/A/foo", keep, 16384, 65536),
            Ops.Fallocate("/A/foo", keep | FallocateMode.PunchHole, 4096, 4096),
            Ops.Fallocate("/A/foo", FallocateMode.ZeroRange, 1000, 8000),
            Ops.Fallocate("/A/big", keep | FallocateMode.PunchHole, 1 << 20, 8192),
            Ops.Fallocate("/A/big", FallocateMode.ZeroRange | keep, 4096, 65536),
            Ops.Fallocate("/A/sparse", keep, 8192, 16384),
            Ops.Link("/A/foo", "/B/bar"), Ops.Link("/A/foo", "/A/C/bar"),
            Ops.Unlink("/A/foo"), Ops.Unlink("/B/foo"), Ops.Unlink("/A/C/foo"), Ops.Unlink("/A/big"),
            Ops.Rename("/A/foo", "/A/bar"), Ops.Rename("/A/foo", "/B/foo"), Ops.Rename("/A/foo", "/B/bar"),
            Ops.Rename("/A/C", "/B/C"), Ops.Rename("/A/E", "/B/foo"), Ops.Rename("/A/C", "/A/E"),
            Ops.Rename("/B/foo", "/A/C/foo"), Ops.Rename("/A/foo", "/B/foo", RenameFlags.Exchange),
            Ops.Rename("/A/foo", "/B/foo", RenameFlags.NoReplace), Ops.Rename("/A/C", "/B/bar", RenameFlags.NoReplace),
            Ops.Symlink("/A/bar", "../B/foo"), Ops.Symlink("/B/bar", Ops.LongTarget),
            Ops.SetAttr("/A/foo", new SetAttributes { Mode = 0x180 }, "mode 0600"),
            Ops.SetAttr("/B/foo", new SetAttributes { Uid = 1000, Gid = 1000 }, "owner 1000:1000"),
            Ops.SetAttr("/A/foo", new SetAttributes { MtimeNs = 1_000_000_000L, AtimeNs = 2_000_000_000L }, "times"),
            Ops.SetXattr("/A/foo", "user.a", 8, 20), Ops.SetXattr("/A/foo", "user.big", 3000, 21), Ops.RemoveXattr("/B/foo", "user.x"),
            Ops.Rmdir("/A/E"), Ops.Rmdir("/A/C"),
            Ops.Fsync("/A/foo"), Ops.Sync(),
            Ops.SyncMapStore("/A/foo", 0, 16384, 100, 100, 22), Ops.SyncMapStore("/A/sparse", 0, 65536, 40000, 5000, 23),
            Ops.AsyncMapStore("/A/foo", 0, 16384, 4000, 200, 24),
            Ops.SyncMapStore("/A/big", 0, 2 << 20, 1 << 20, 64, 25),
        };
        return list;
    }

    /// <summary>Workload "ace1/i": the setup, then core operation i.</summary>
    public static Workload Single(int i) => new($"ace1/{i}", Setup, [Core[i]]);

    /// <summary>Workload "ace2/i+j": the setup, then core operations i and j.</summary>
    public static Workload Pair(int i, int j) => new($"ace2/{i}+{j}", Setup, [Core[i], Core[j]]);

    /// <summary>The workload named <paramref name="id"/> ("ace1/I", "ace2/I+J", "random/SEED" or "random/SEED/LENGTH"), as a
    /// reproducer names it; null when there is no such workload.</summary>
    public static Workload? Parse(string id, int randomLength = 200)
    {
        string[] p = id.Split('/');
        if (p.Length == 2 && p[0] == "ace1" && int.TryParse(p[1], out int i) && i >= 0 && i < Core.Count)
            return Single(i);
        if (p.Length == 2 && p[0] == "ace2" && p[1].Split('+') is [var a, var b] && int.TryParse(a, out int x) && int.TryParse(b, out int y)
            && x >= 0 && x < Core.Count && y >= 0 && y < Core.Count)
            return Pair(x, y);
        if (p.Length is 2 or 3 && p[0] == "random" && ulong.TryParse(p[1], out ulong seed))
        {
            int n = randomLength;
            if (p.Length == 3 && (!int.TryParse(p[2], out n) || n < 1 || n > 100_000))
                return null;
            return Random(seed, n);
        }
        return null;
    }

    /// <summary>Every 2-operation workload in a seeded random order.</summary>
    public static IEnumerable<Workload> PairsShuffled(ulong seed)
    {
        int n = Core.Count;
        var order = Enumerable.Range(0, n * n).ToArray();
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        rng.Shuffle(order);
        foreach (int k in order)
            yield return Pair(k / n, k % n);
    }

    /// <summary>Workload "random/seed": the setup, then <paramref name="length"/> operations drawn from a larger
    /// space (random files among three per directory, random offsets and lengths).</summary>
    public static Workload Random(ulong seed, int length)
    {
        var rng = new Random(unchecked((int)(seed * 0x9E3779B97F4A7C15UL >> 32)));
        string[] dirs = ["/A", "/B", "/A/C"];
        string[] names = ["foo", "bar", "baz"];
        string File() => dirs[rng.Next(dirs.Length)] + "/" + names[rng.Next(names.Length)];
        string Dir() => rng.Next(4) == 0 ? "/A/C/D" : dirs[rng.Next(dirs.Length)] + "/D";
        long Off() => rng.Next(4) switch { 0 => 0, 1 => rng.Next(4096), 2 => rng.Next(16) * 4096L, _ => rng.Next(300_000) };
        int Len() => rng.Next(4) switch { 0 => rng.Next(1, 64), 1 => 4096, 2 => rng.Next(1, 20000), _ => rng.Next(1, 200_000) };
        var ops = new List<CrashOp>();
        for (int k = 0; k < length; k++)
        {
            int tag = 1000 + k;
            ops.Add(rng.Next(20) switch
            {
                0 => Ops.Create(File()),
                1 or 2 => Ops.Write(File(), Off(), Len(), tag),
                3 => Ops.Append(File(), Len(), tag),
                4 => Ops.Truncate(File(), Off()),
                5 => Ops.Fallocate(File(), rng.Next(4) switch
                {
                    0 => FallocateMode.Allocate, 1 => FallocateMode.KeepSize,
                    2 => FallocateMode.KeepSize | FallocateMode.PunchHole, _ => FallocateMode.ZeroRange,
                }, Off(), Len()),
                6 => Ops.Link(File(), File()),
                7 => Ops.Unlink(File()),
                8 => Ops.Rename(File(), File(), rng.Next(3) switch { 0 => RenameFlags.None, 1 => RenameFlags.NoReplace, _ => RenameFlags.Exchange }),
                9 => Ops.Mkdir(Dir()),
                10 => Ops.Rmdir(Dir()),
                11 => Ops.Rename(Dir(), Dir()),
                12 => Ops.Symlink(File(), rng.Next(2) == 0 ? "t" + k : Ops.LongTarget),
                13 => Ops.SetAttr(File(), new SetAttributes { Mode = (uint)rng.Next(0x200) }, "mode"),
                14 => Ops.SetXattr(File(), "user." + rng.Next(4), rng.Next(1, 2000), tag),
                15 => Ops.RemoveXattr(File(), "user." + rng.Next(4)),
                16 => Ops.Fsync(File()),
                17 => Ops.SyncMapStore(File(), 0, 4096, rng.Next(4000), rng.Next(1, 96), tag),
                18 => Ops.AsyncMapStore(File(), 0, 4096, rng.Next(4000), rng.Next(1, 96), tag),
                _ => Ops.Write(File(), Off(), Len(), tag),
            });
        }
        return new Workload($"random/{seed}/{length}", Setup, ops);
    }
}
