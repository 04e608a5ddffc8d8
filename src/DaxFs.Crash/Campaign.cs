using System.Diagnostics;
using DaxFs.Pmem;

namespace DaxFs.Crash;

/// <summary>CampaignOptions -- what a crash-test campaign runs.</summary>
public sealed record CampaignOptions
{
    /// <summary>Seeds the order of the 2-operation workloads, the random workloads and the sampled subsets.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Stop after this many workloads.</summary>
    public int MaxWorkloads { get; init; } = int.MaxValue;
    /// <summary>Stop once this many crash states were checked (checked between workloads).</summary>
    public long MaxStates { get; init; } = long.MaxValue;
    /// <summary>Stop after this much time (checked between workloads).</summary>
    public TimeSpan Time { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>Random subsets of the in-flight words per crash point, besides the two extremes.</summary>
    public int StatesPerPoint { get; init; } = 4;
    /// <summary>At most this many in-flight words: every subset of size 1 and 2 is checked too.</summary>
    public int ExhaustiveWords { get; init; } = 12;
    /// <summary>At most this many regions of in-flight words: each alone and all but each are checked too.</summary>
    public int ExhaustiveRegions { get; init; } = 16;
    /// <summary>Run the workloads on Page-granularity devices as well (durability at fsync/sync).</summary>
    public bool IncludePageDevices { get; init; } = true;
    /// <summary>Operations in each random workload.</summary>
    public int RandomLength { get; init; } = 200;
    /// <summary>One random workload after every this many 2-operation workloads.</summary>
    public int RandomEvery { get; init; } = 25;
    /// <summary>Use every recovered volume (create/write in every directory, delete the tree, fsck).</summary>
    public bool UseRecovered { get; init; } = true;
    /// <summary>Device size of each workload.</summary>
    public long DeviceBytes { get; init; } = 4 << 20;
    /// <summary>A deliberately broken device that ignores fences: the campaign must find violations.</summary>
    public bool IgnoreFences { get; init; }
    /// <summary>Run only the workloads whose place in the plan is <see cref="Shard"/> modulo <see cref="Shards"/>
    /// (several processes share a campaign, one core each).</summary>
    public int Shard { get; init; }
    /// <summary>How many processes share the campaign.</summary>
    public int Shards { get; init; } = 1;
    /// <summary>Called with each violation as soon as its workload has run (a long campaign reports as it goes).</summary>
    public Action<Violation>? OnViolation { get; init; }
    /// <summary>Called on each workload's volume after its setup, before recording (fault injection in tests).</summary>
    public Action<DaxVolume>? BeforeRecording { get; init; }
    /// <summary>Stop at the first violation.</summary>
    public bool StopAtFirstViolation { get; init; }
    /// <summary>The data mode the workloads' volumes are mounted with (<see cref="DataMode.InPlace"/>: an interrupted
    /// write may leave its file a word-wise mix of before and after).</summary>
    public DataMode Data { get; init; } = DataMode.Atomic;
    /// <summary>Whether the oracle accepts a word-wise mix in the file an interrupted write stores into (default: when
    /// <see cref="Data"/> is <see cref="DataMode.InPlace"/>; false there proves the checker sees torn writes).</summary>
    public bool? AcceptTornWrites { get; init; }
}

/// <summary>A broken promise: a crash state whose recovery is not what the contract allows, a failed call that changed
/// something, or a store left unflushed or unfenced when its call returned.</summary>
public sealed record Violation(string Workload, string Device, int Operation, int CrashPoint, string Kind, string Detail,
    IReadOnlyList<long> PersistedWords, string Reproducer);

/// <summary>Progress of a running campaign.</summary>
public readonly record struct CampaignProgress(int Workloads, long CrashPoints, long States, int Violations, TimeSpan Elapsed, string Current);

/// <summary>CampaignResult -- what a campaign checked and found.</summary>
public sealed class CampaignResult
{
    /// <summary>The seed.</summary>
    public ulong Seed { get; init; }
    /// <summary>Workloads run.</summary>
    public int Workloads { get; set; }
    /// <summary>Operations run in recorded workloads.</summary>
    public long Operations { get; set; }
    /// <summary>Crash points reached.</summary>
    public long CrashPoints { get; set; }
    /// <summary>Crash states recovered and checked.</summary>
    public long States { get; set; }
    /// <summary>Write-backs of lines that held nothing new (performance findings, not violations).</summary>
    public long RedundantFlushes { get; set; }
    /// <summary>Lines written back.</summary>
    public long LinesFlushed { get; set; }
    /// <summary>Violations, minimized.</summary>
    public List<Violation> Violations { get; } = new();
    /// <summary>Wall time.</summary>
    public TimeSpan Elapsed { get; set; }
}

/// <summary>Campaign -- runs workloads on a recording device, recovers crash states at every crash point and checks
/// each against the oracle: fsck clean; every call that returned before the point present (CacheLine devices: on
/// return; Page devices: once an fsync/sync returned); the call in flight all-or-nothing (stores through a mapping,
/// which are not atomic, word by word); no bytes that were never written; the recovered volume usable.</summary>
public static class Campaign
{
    /// <summary>The workloads of a campaign in order: every 1-operation workload (CacheLine, then Page devices), then
    /// the 2-operation workloads in a seeded order (every fourth also on a Page device) with a random long workload
    /// after every <see cref="CampaignOptions.RandomEvery"/>, then random workloads without end.</summary>
    public static IEnumerable<(Workload Workload, bool Page)> Plan(CampaignOptions o)
    {
        for (int i = 0; i < Workloads.Core.Count; i++)
            yield return (Workloads.Single(i), false);
        if (o.IncludePageDevices)
            for (int i = 0; i < Workloads.Core.Count; i++)
                yield return (Workloads.Single(i), true);
        int k = 0, r = 0;
        foreach (var w in Workloads.PairsShuffled(o.Seed))
        {
            yield return (w, false);
            if (o.IncludePageDevices && k % 4 == 3)
                yield return (w, true);
            if (++k % o.RandomEvery == 0)
            {
                ulong seed = o.Seed * 1_000_003UL + (ulong)r;
                yield return (Workloads.Random(seed, o.RandomLength), o.IncludePageDevices && r % 2 == 1);
                r++;
            }
        }
        // Then random workloads without end (a long campaign stops on --minutes or --max-states).
        for (; ; r++)
            yield return (Workloads.Random(o.Seed * 1_000_003UL + (ulong)r, o.RandomLength), o.IncludePageDevices && r % 2 == 1);
    }

    /// <summary>Runs a campaign.</summary>
    public static CampaignResult Run(CampaignOptions o, Action<CampaignProgress>? progress = null) =>
        Run(o, Plan(o).Where((_, k) => k % o.Shards == o.Shard), progress);

    /// <summary>Runs the given workloads (until a limit in <paramref name="o"/>).</summary>
    public static CampaignResult Run(CampaignOptions o, IEnumerable<(Workload Workload, bool Page)> plan, Action<CampaignProgress>? progress = null)
    {
        var result = new CampaignResult { Seed = o.Seed };
        var clock = Stopwatch.StartNew();
        var rng = new Random(unchecked((int)(o.Seed ^ (o.Seed >> 32) ^ 0x5bd1e995)));
        using var cacheLine = new Recovery(o.DeviceBytes, pageGranular: false);
        using var page = o.IncludePageDevices ? new Recovery(o.DeviceBytes, pageGranular: true) : null;
        foreach (var (w, isPage) in plan)
        {
            if (result.Workloads >= o.MaxWorkloads || clock.Elapsed >= o.Time || result.States >= o.MaxStates)
                break;
            if (o.StopAtFirstViolation && result.Violations.Count > 0)
                break;
            progress?.Invoke(new CampaignProgress(result.Workloads, result.CrashPoints, result.States, result.Violations.Count, clock.Elapsed, w.Id));
            int before = result.Violations.Count;
            new WorkloadRun(w, isPage, o, rng, isPage ? page! : cacheLine, result).Run();
            result.Workloads++;
            for (int k = before; k < result.Violations.Count; k++)
                o.OnViolation?.Invoke(result.Violations[k]);
        }
        result.Elapsed = clock.Elapsed;
        progress?.Invoke(new CampaignProgress(result.Workloads, result.CrashPoints, result.States, result.Violations.Count, clock.Elapsed, "done"));
        return result;
    }

    /// <summary>Runs one workload and checks every crash state it reaches; returns its violations.</summary>
    public static CampaignResult RunOne(Workload w, bool page, CampaignOptions o)
    {
        var result = new CampaignResult { Seed = o.Seed };
        var rng = new Random(unchecked((int)(o.Seed ^ (o.Seed >> 32) ^ 0x5bd1e995)));
        using var recovery = new Recovery(o.DeviceBytes, page);
        var clock = Stopwatch.StartNew();
        new WorkloadRun(w, page, o, rng, recovery, result).Run();
        result.Workloads = 1;
        result.Elapsed = clock.Elapsed;
        return result;
    }

    /// <summary>A fresh device and volume for a workload, set up and made durable.</summary>
    internal static (PmemDevice Device, DaxVolume Volume) Prepare(Workload w, bool page, long bytes, DataMode data = DataMode.Atomic)
    {
        var dev = PmemDevice.CreateInMemory(bytes, new PmemOpenOptions { EmulatePmem = !page, Environment = _ => null });
        try
        {
            var v = DaxVolume.Format(dev, new FormatOptions { JournalBytes = 256 << 10, InodeCount = 256 }, new MountOptions { Data = data });
            foreach (var op in w.Setup)
                op.Run(v);
            v.Sync();
            return (dev, v);
        }
        catch
        {
            dev.Dispose();
            throw;
        }
    }
}
