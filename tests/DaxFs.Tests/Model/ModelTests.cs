// Model-based random tester of DaxFS.
//
// CI: the [Theory] seeds below (two classes, so xunit runs them on both cores) together run >= 200,000 ops.
//   dotnet test tests/DaxFs.Tests -c Release --filter "FullyQualifiedName~Model"
//
// A longer run is one command: N seeds of M ops each (seeds BASE..BASE+N-1; BASE defaults to 1000):
//   DAXFS_MODEL_SEEDS=40 DAXFS_MODEL_OPS=100000 dotnet test tests/DaxFs.Tests -c Release --filter "FullyQualifiedName~ModelTests.EnvironmentSeeds"
// Reproduce one seed (a failure prints this line with its seed and op count):
//   DAXFS_MODEL_SEED=1234 DAXFS_MODEL_OPS=20000 dotnet test tests/DaxFs.Tests -c Release --filter "FullyQualifiedName~ModelTests.EnvironmentSeeds"
// DAXFS_MODEL_OPS also scales the CI seeds; DAXFS_MODEL_SEED may be a comma-separated list; DAXFS_MODEL_SEED_BASE
// moves the first seed of DAXFS_MODEL_SEEDS; DAXFS_MODEL_GRANULARITY=pmem|page keeps every seed on one kind of device;
// DAXFS_MODEL_SHRINK_SECONDS bounds the shrinking of a failure (default 60); DAXFS_MODEL_TOLERATE (see BUGS.md);
// DAXFS_MODEL_LOG=FILE appends each seed's result to FILE as it finishes. With none of the seed variables set,
// EnvironmentSeeds runs one random seed of 4,000 ops (printed). README.md, "Model-based testing", has the 10M-op command. Each run prints its seed and volume (32/64/128 MiB, pmem or Page,
// default or 300 inodes -- all derived from the seed) and its counters.

using System.Globalization;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests.Model;

/// <summary>Settings from the environment.</summary>
internal static class ModelEnv
{
    public static int? Int(string name) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : null;

    /// <summary>Ops per seed: DAXFS_MODEL_OPS or the CI default.</summary>
    public static int Ops(int ciDefault) => Int("DAXFS_MODEL_OPS") ?? ciDefault;

    /// <summary>The configuration of a seed, with the shrink budget from DAXFS_MODEL_SHRINK_SECONDS (default 60).</summary>
    public static RunConfig Config(int seed, int ops)
    {
        RunConfig cfg = RunConfig.ForSeed(seed, ops) with { ShrinkBudget = TimeSpan.FromSeconds(Int("DAXFS_MODEL_SHRINK_SECONDS") ?? 60) };
        return Environment.GetEnvironmentVariable("DAXFS_MODEL_GRANULARITY") switch
        {
            "pmem" => cfg with { Pmem = true, SwitchGranularity = false },
            "page" => cfg with { Pmem = false, SwitchGranularity = false },
            _ => cfg,
        };
    }

    public static void RunSeed(ITestOutputHelper output, RunConfig cfg)
    {
        output.WriteLine($"model run: {cfg.Describe()}");
        RunResult r = ModelRunner.Run(cfg, output.WriteLine);
        output.WriteLine(r.Report);
        output.WriteLine("ops by kind: " + string.Join(", ", r.Stats.ByKind.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value}")));
        output.WriteLine("ms by kind: " + string.Join(", ", r.Stats.MsByKind.OrderByDescending(k => k.Value).Select(k => $"{k.Key}={k.Value:F0}")));
        if (!r.Passed)
            Assert.Fail(r.Report);
        AssertCoverage(cfg, r.Stats);
    }

    /// <summary>The generator keeps reaching what the tester is for: the expected errors, ENOSPC, a write beyond
    /// 4 GiB, remounts, listings (checked on runs of 5,000 ops or more).</summary>
    public static void AssertCoverage(RunConfig cfg, RunStats s)
    {
        if (cfg.Ops < 5000)
            return;
        Errno[] expected = [Errno.ENOENT, Errno.EEXIST, Errno.ENOTDIR, Errno.EISDIR, Errno.ENOTEMPTY, Errno.EINVAL, Errno.ENAMETOOLONG,
            Errno.ENODATA, Errno.EPERM, Errno.EBUSY, Errno.ELOOP, Errno.EFBIG, Errno.ENOSPC, Errno.ERANGE, Errno.EOPNOTSUPP, Errno.ENXIO];
        var missing = expected.Where(e => !s.Errnos.ContainsKey(e)).ToList();
        Assert.True(missing.Count == 0, $"{cfg.Describe()}: the run never produced {string.Join(", ", missing)}");
        Assert.True(s.HugeWrites > 0, $"{cfg.Describe()}: no write beyond 4 GiB succeeded");
        Assert.True(s.Remounts > 0 && s.Listings > 0, $"{cfg.Describe()}: no remount or no listing");
        if (cfg.InodeCount is not null)
            Assert.True(s.InodeEnospc > 0, $"{cfg.Describe()}: the inodes never ran out");
    }
}

/// <summary>CI seeds, first half (pmem and Page, every device size, few-inode volumes).</summary>
public class ModelTests(ITestOutputHelper output)
{
    /// <summary>Ops per CI seed; 12 seeds in two parallel classes.</summary>
    internal const int CiOps = 17_000;

    public static TheoryData<int> SeedsA => [1, 2, 3, 4, 7, 11];

    [Theory]
    [MemberData(nameof(SeedsA))]
    public void Seed(int seed) => ModelEnv.RunSeed(output, ModelEnv.Config(seed, ModelEnv.Ops(CiOps)));

    /// <summary>DAXFS_MODEL_SEED (one or a list) or DAXFS_MODEL_SEEDS (a count, from DAXFS_MODEL_SEED_BASE or 1000),
    /// DAXFS_MODEL_OPS ops each; nothing when neither is set.</summary>
    [Fact]
    public void EnvironmentSeeds()
    {
        var seeds = new List<int>();
        if (Environment.GetEnvironmentVariable("DAXFS_MODEL_SEED") is { Length: > 0 } list)
            seeds.AddRange(list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)));
        else if (ModelEnv.Int("DAXFS_MODEL_SEEDS") is { } count)
        {
            int first = ModelEnv.Int("DAXFS_MODEL_SEED_BASE") ?? 1000;
            seeds.AddRange(Enumerable.Range(first, count));
        }
        int defaultOps = 100_000;
        if (seeds.Count == 0)
        {
            // Nothing asked for: one fresh seed per run (short, so that coverage is not asserted), so that CI keeps
            // visiting new sequences; a failure prints the seed to reproduce it with.
            seeds.Add(Random.Shared.Next(1_000_000, int.MaxValue));
            defaultOps = 4000;
            output.WriteLine($"DAXFS_MODEL_SEED/DAXFS_MODEL_SEEDS unset: one random seed of {defaultOps} ops (set them, and DAXFS_MODEL_OPS, for a longer run)");
        }
        // DAXFS_MODEL_LOG: a file that gets each seed's result as it finishes (a long run's progress; survives a kill).
        string? logFile = Environment.GetEnvironmentVariable("DAXFS_MODEL_LOG") is { Length: > 0 } lf ? lf : null;
        void Log(string line)
        {
            output.WriteLine(line);
            if (logFile is not null)
                File.AppendAllText(logFile, line + "\n");
        }
        var failures = new List<string>();
        long totalOps = 0;
        int done = 0;
        var total = System.Diagnostics.Stopwatch.StartNew();
        foreach (int seed in seeds)
        {
            RunConfig cfg = ModelEnv.Config(seed, ModelEnv.Ops(defaultOps));
            Log($"{DateTime.UtcNow:HH:mm:ss} model run: {cfg.Describe()}");
            RunResult r = ModelRunner.Run(cfg, Log);
            totalOps += r.Stats.Ops;
            Log(r.Report);
            output.WriteLine("ms by kind: " + string.Join(", ", r.Stats.MsByKind.OrderByDescending(k => k.Value).Select(k => $"{k.Key}={k.Value:F0}")));
            output.WriteLine("counts: " + string.Join(", ", r.Stats.ByKind.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value}")));
            output.WriteLine("enospc by kind: " + string.Join(", ", r.Stats.EnospcByKind.OrderByDescending(k => k.Value).Select(k => $"{k.Key}={k.Value}")));
            if (!r.Passed)
                failures.Add(r.Report);
            else
            {
                try
                {
                    ModelEnv.AssertCoverage(cfg, r.Stats);
                }
                catch (Exception e) when (e is Xunit.Sdk.XunitException)
                {
                    failures.Add(e.Message);
                }
            }
            Log($"progress: {++done}/{seeds.Count} seeds, {totalOps} ops, {failures.Count} failed, {total.Elapsed.TotalMinutes:F1} min");
        }
        if (failures.Count > 0)
            Assert.Fail($"{failures.Count} of {seeds.Count} seeds failed:\n" + string.Join("\n", failures));
    }

    /// <summary>The checker can fail: with a model that loses the last byte of writes at offsets 4095 mod 4096, a
    /// run reports a mismatch with its seed and a shortened sequence much shorter than the run.</summary>
    [Fact]
    public void CheckerCatchesADeliberateModelBug()
    {
        RunResult r = RunCaught(CaughtConfig with { Bug = ModelBug.DropLastByteOfWriteAt4095 });
        AssertShrunkContentMismatch(r);
    }

    /// <summary>The run the deliberate-fault tests start from: seed 5, 3,000 operations, 30 s to shrink.</summary>
    private static RunConfig CaughtConfig =>
        RunConfig.ForSeed(5, 3000) with { ShrinkBudget = TimeSpan.FromSeconds(30), TrailingSlashes = false };

    /// <summary>Runs <paramref name="cfg"/>, which must fail: its report names the seed and the failing sequence
    /// is shortened to a dozen operations at most.</summary>
    private RunResult RunCaught(RunConfig cfg)
    {
        RunResult r = ModelRunner.Run(cfg, output.WriteLine);
        output.WriteLine(r.Report);
        Assert.False(r.Passed);
        Assert.Contains("seed=5", r.Report, StringComparison.Ordinal);
        Assert.InRange(r.ShrunkLength, 1, 12);
        return r;
    }

    /// <summary>A content mismatch after a write, reported with a shortened sequence shorter than the run.</summary>
    private static void AssertShrunkContentMismatch(RunResult r)
    {
        Assert.Contains("shortened sequence", r.Report, StringComparison.Ordinal);
        Assert.Contains("[content]", r.Report, StringComparison.Ordinal);
        Assert.Matches(@"write .* off=\d+ ", r.Report);
        Assert.True(r.ShrunkLength < r.OriginalLength, $"shrunk {r.ShrunkLength} of {r.OriginalLength}");
    }

    /// <summary>The checker catches a faulty volume: with the media byte under the last byte of writes at offsets 4095
    /// mod 4096 flipped behind the volume's back, a run reports a content mismatch with its seed and a shortened
    /// sequence much shorter than the run.</summary>
    [Fact]
    public void CheckerCatchesAFaultInjectedVolume()
    {
        RunResult r = RunCaught(CaughtConfig with { Fault = VolumeFault.FlipStoredLastByteOfWriteAt4095 });
        Assert.Contains("volume-fault=FlipStoredLastByteOfWriteAt4095", r.Report, StringComparison.Ordinal);
        AssertShrunkContentMismatch(r);
    }

    /// <summary>A volume that fails a write with ENOSPC while plenty of space is free is caught too.</summary>
    [Fact]
    public void CheckerCatchesASpuriousEnospc()
    {
        RunResult r = RunCaught(CaughtConfig with { Fault = VolumeFault.EnospcOnWriteAt4095 });
        Assert.Contains("[spurious-enospc]", r.Report, StringComparison.Ordinal);
    }

    /// <summary>The model's sparse contents: a write past 4 GiB costs a page, truncation zeroes, holes read zeros.</summary>
    [Fact]
    public void SparseModelHandlesHugeOffsets()
    {
        var d = new SparseData();
        d.Write((5L << 30) + 4095, [1, 2, 3]);
        Assert.Equal((5L << 30) + 4098, d.Size);
        Assert.True(d.PageCount <= 2);
        var buf = new byte[5];
        d.Read((5L << 30) + 4094, buf);
        Assert.Equal(new byte[] { 0, 1, 2, 3, 0 }, buf);
        d.Truncate((5L << 30) + 4096);
        d.Truncate(6L << 30);
        d.Read((5L << 30) + 4094, buf);
        Assert.Equal(new byte[] { 0, 1, 0, 0, 0 }, buf);
        d.Zero(0, 1L << 40);
        Assert.Equal(0, d.PageCount);
        Assert.Equal(-1, d.FirstNonZero(0, 1L << 40));
    }
}

/// <summary>CI seeds, second half (runs in parallel with <see cref="ModelTests"/>).</summary>
public class ModelTestsMore(ITestOutputHelper output)
{
    public static TheoryData<int> SeedsB => [9, 14, 15, 19, 23, 42];

    [Theory]
    [MemberData(nameof(SeedsB))]
    public void Seed(int seed) => ModelEnv.RunSeed(output, ModelEnv.Config(seed, ModelEnv.Ops(ModelTests.CiOps)));
}
