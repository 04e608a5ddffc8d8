using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace DaxFs.Tests.Model;

/// <summary>The settings of one run: the seed, the op count, and the volume the seed gets.</summary>
internal sealed record RunConfig
{
    public int Seed { get; init; }
    public int Ops { get; init; } = 10_000;
    public long DeviceBytes { get; init; } = 64L << 20;
    public bool Pmem { get; init; } = true;
    /// <summary>Whether the generator appends "/" or "/." to some paths (off only in the test of the checker itself).</summary>
    public bool TrailingSlashes { get; init; } = true;
    /// <summary>Whether remounts may move the volume to a device of the other granularity.</summary>
    public bool SwitchGranularity { get; init; } = true;
    public long? InodeCount { get; init; }
    /// <summary>The data mode of every mount (overwrites in place on three seeds of seven).</summary>
    public DataMode Data { get; init; }
    public int FullCheckEvery { get; init; } = 500;
    public ModelBug Bug { get; init; }
    public VolumeFault Fault { get; init; }
    public TimeSpan ShrinkBudget { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The volume a seed gets: 32, 64 or 128 MiB; every fifth seed Page-granular (durable at Sync only);
    /// every fourth with few inodes (inode ENOSPC reachable).</summary>
    public static RunConfig ForSeed(int seed, int ops) => new()
    {
        Seed = seed,
        Ops = ops,
        DeviceBytes = (32L << 20) << (int)((uint)seed % 3),
        Pmem = (uint)seed % 5 != 4,
        InodeCount = (uint)seed % 4 == 3 ? 300 : null,
        Data = (uint)seed % 7 >= 4 ? DataMode.InPlace : DataMode.Atomic,
    };

    public string Describe() =>
        $"seed={Seed} ops={Ops} device={DeviceBytes >> 20}MiB {(Pmem ? "pmem" : "page")}{(SwitchGranularity ? "" : "-only")} inodes={(InodeCount is { } i ? i.ToString(CultureInfo.InvariantCulture) : "default")}" +
        (Data == DataMode.InPlace ? " data=inplace" : "") +
        (Bug != ModelBug.None ? $" model-bug={Bug}" : "") + (Fault != VolumeFault.None ? $" volume-fault={Fault}" : "");
}

/// <summary>A failure: where (op index; -1 for the end-of-run checks), which op, and what.</summary>
internal sealed record Failure(int Step, Op? Op, Exception Error, bool AtCheck = false)
{
    /// <summary>What shrinking must preserve: the op type and mismatch kind (whole-tree checks -- periodic or at the
    /// end of a run -- count as one place, so that a replay's end-of-run check can stand for a periodic one).</summary>
    public string Signature => $"{(AtCheck || Op is null ? "check" : Op.GetType().Name)}/{(Error is ModelMismatchException m ? m.Kind : Error.GetType().Name)}";
}

/// <summary>The outcome of a run.</summary>
internal sealed record RunResult(bool Passed, string Report, RunStats Stats, TimeSpan Elapsed, int ShrunkLength = 0, int OriginalLength = 0);

/// <summary>ModelRunner -- generates a seed's ops one by one from the model's state, runs each on the volume and the
/// model, checks (touched objects after each op, the whole tree every <see cref="RunConfig.FullCheckEvery"/> ops and
/// around each remount), and finishes with a remount and fsck. On the first failure it shrinks the op list by delta
/// debugging (replaying subsequences on fresh volumes) and reports the seed and the shortest failing sequence.</summary>
internal static class ModelRunner
{
    public static RunResult Run(RunConfig cfg, Action<string>? log = null)
    {
        var sw = Stopwatch.StartNew();
        var ops = new List<Op>();
        Failure? failure = null;
        RunStats stats;
        using (var s = new Session(cfg))
        {
            stats = s.Stats;
            var gen = new Generator(cfg.Seed, s.M, new GenConfig(cfg.InodeCount is not null, cfg.Ops, cfg.DeviceBytes, cfg.SwitchGranularity, cfg.TrailingSlashes)) { SlotOpen = s.SlotOpen, HugeDone = () => s.Stats.HugeWrites > 0 };
            for (int i = 0; i < cfg.Ops && failure is null; i++)
            {
                Op op = gen.Next();
                ops.Add(op);
                try
                {
                    s.Execute(op);
                }
                catch (Exception e)
                {
                    failure = new Failure(i, op, e);
                    break;
                }
                try
                {
                    if ((i + 1) % cfg.FullCheckEvery == 0)
                        s.FullCheck($"periodic check after op {i}");
                }
                catch (Exception e)
                {
                    failure = new Failure(i, op, e, AtCheck: true);
                }
            }
            if (failure is null)
            {
                try
                {
                    s.Finish();
                }
                catch (Exception e)
                {
                    failure = new Failure(-1, null, e);
                }
            }
        }
        if (failure is null)
            return new RunResult(true, $"{cfg.Describe()}: passed in {sw.Elapsed.TotalSeconds:F1}s; {stats}", stats, sw.Elapsed);

        log?.Invoke($"{cfg.Describe()}: FAILED at op {failure.Step}: {failure.Op}\n{failure.Error}");
        List<Op> prefix = failure.Step >= 0 ? ops.Take(failure.Step + 1).ToList() : ops;
        var shrinkWatch = Stopwatch.StartNew();
        (List<Op> shortest, Failure last, int replays) = Shrink(cfg, prefix, failure, log);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"DaxFS model mismatch: {cfg.Describe()}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"failed at op #{failure.Step + 1} of {ops.Count}: {(failure.Op?.ToString() ?? "(end-of-run checks: remount / fsck)")}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"error: {Describe(failure.Error)}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"reproduce: DAXFS_MODEL_SEED={cfg.Seed} DAXFS_MODEL_OPS={cfg.Ops} dotnet test tests/DaxFs.Tests -c Release --filter \"FullyQualifiedName~ModelTests.EnvironmentSeeds\"");
        sb.AppendLine(CultureInfo.InvariantCulture, $"shortened sequence: {shortest.Count} of {prefix.Count} ops ({replays} replays in {shrinkWatch.Elapsed.TotalSeconds:F1}s); it fails with: {Describe(last.Error)}");
        for (int k = 0; k < shortest.Count; k++)
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {k + 1,4}: {shortest[k]}");
        sb.AppendLine("  then: end-of-run checks (full compare, remount, fsck)");
        return new RunResult(false, sb.ToString(), stats, sw.Elapsed, shortest.Count, prefix.Count);
    }

    private static string Describe(Exception e) =>
        e is ModelMismatchException m ? $"[{m.Kind}] {m.Message}" : e.ToString();

    /// <summary>Runs a fixed op list on a fresh volume (whole-tree checks often), then the end-of-run checks; the first
    /// failure or null.</summary>
    public static Failure? Replay(RunConfig cfg, IReadOnlyList<Op> ops, bool crashCheckAtEnd = false)
    {
        // Short lists: every check after every op. Long lists: only the last op's own checks and the end-of-run
        // checks (a failure found at an op is at the end of the list being shrunk; whole-tree ones at the end).
        bool thorough = ops.Count <= 150 && !crashCheckAtEnd;
        int every = thorough ? 1 : int.MaxValue;
        using var s = new Session(cfg);
        for (int i = 0; i < ops.Count; i++)
        {
            try
            {
                s.Fast = !thorough && (crashCheckAtEnd || i < ops.Count - 1);
                s.Execute(ops[i]);
            }
            catch (Exception e)
            {
                return new Failure(i, ops[i], e);
            }
            try
            {
                if ((i + 1) % every == 0)
                    s.FullCheck($"replay check after op {i}");
            }
            catch (Exception e)
            {
                return new Failure(i, ops[i], e, AtCheck: true);
            }
        }
        try
        {
            if (crashCheckAtEnd)
                s.CrashImageCheck("crash image at the end of the replay");
        }
        catch (Exception e)
        {
            return new Failure(ops.Count - 1, ops.Count > 0 ? ops[^1] : null, e, AtCheck: true);
        }
        try
        {
            s.Finish();
        }
        catch (Exception e)
        {
            return new Failure(-1, null, e);
        }
        return null;
    }

    /// <summary>Delta debugging: drops chunks of the list (halves first, then smaller) while the same failure
    /// (<see cref="Failure.Signature"/>) persists, within the time budget.</summary>
    internal static (List<Op> Ops, Failure Last, int Replays) Shrink(RunConfig cfg, List<Op> ops, Failure original, Action<string>? log)
    {
        var deadline = Stopwatch.StartNew();
        string sig = original.Signature;
        int replays = 0;
        var cur = ops;
        Failure last = original;

        bool crash = false;
        bool Fails(List<Op> candidate, out Failure? f)
        {
            replays++;
            f = Replay(cfg, candidate, crash);
            return f is not null && (f.Signature == sig || (crash && f.Error is ModelMismatchException { Kind: var k } && k.StartsWith("crash-", StringComparison.Ordinal)));
        }

        // An on-media inconsistency found at an unmount: find the first op after which a crash image fails fsck
        // (bisection over prefixes), then shrink with that check as the oracle.
        if (original.Error is ModelMismatchException m0 && (m0.Kind == "fsck" || m0.Kind.StartsWith("crash-", StringComparison.Ordinal)))
        {
            int lo = 0, hi = ops.Count; // a prefix of hi ops fails, of lo passes (assumed)
            Failure? at = null;
            while (hi - lo > 1 && deadline.Elapsed < cfg.ShrinkBudget)
            {
                int mid = (lo + hi) / 2;
                replays++;
                Failure? f = Replay(cfg, ops.Take(mid).ToList(), crashCheckAtEnd: true);
                if (f?.Error is ModelMismatchException m1 && m1.Kind.StartsWith("crash-", StringComparison.Ordinal))
                {
                    hi = mid;
                    at = f;
                }
                else
                {
                    lo = mid;
                }
            }
            if (at is not null)
            {
                log?.Invoke($"a crash image first fails fsck after op {hi}: {ops[hi - 1]}");
                ops = ops.Take(hi).ToList();
                crash = true;
                sig = at.Signature;
                original = at;
            }
        }

        cur = ops;
        last = original;
        if (!Fails(cur, out Failure? first))
        {
            log?.Invoke($"the failure did not reproduce on replay of {cur.Count} ops ({first?.Signature ?? "passed"}); reporting the whole prefix");
            return (cur, original, replays);
        }
        last = first!;
        if (first!.Step >= 0)
            cur = cur.Take(first.Step + 1).ToList();
        int n = 2;
        while (cur.Count >= 2 && deadline.Elapsed < cfg.ShrinkBudget)
        {
            int chunk = (cur.Count + n - 1) / n;
            bool reduced = false;
            // Try the chunks from the end backwards: late ops are cheap to drop and rarely needed.
            for (int start = ((cur.Count - 1) / chunk) * chunk; start >= 0 && deadline.Elapsed < cfg.ShrinkBudget; start -= chunk)
            {
                var candidate = cur.Take(start).Concat(cur.Skip(start + chunk)).ToList();
                if (candidate.Count == 0)
                    continue;
                if (Fails(candidate, out Failure? f))
                {
                    cur = f!.Step >= 0 ? candidate.Take(f.Step + 1).ToList() : candidate;
                    last = f;
                    n = Math.Max(n - 1, 2);
                    reduced = true;
                    break;
                }
            }
            if (!reduced)
            {
                if (chunk <= 1)
                    break;
                n = Math.Min(cur.Count, n * 2);
            }
        }
        log?.Invoke($"shrunk {ops.Count} ops to {cur.Count} in {replays} replays ({deadline.Elapsed.TotalSeconds:F1}s)");
        return (cur, last, replays);
    }
}
