using System.CommandLine;
using System.Text.Json;
using DaxFs.Crash;
using Spectre.Console;

namespace DaxFs.Cli.Commands;

/// <summary>CrashCommand -- `daxfs crashtest`: a crash-consistency campaign on the crash simulator (see the README's
/// "Crash consistency" section). Exit 0 with no violation, 1 with any.</summary>
public static class CrashCommand
{
    /// <summary>The command.</summary>
    public static Command Create()
    {
        var seed = new Option<ulong>("--seed") { Description = "campaign seed (order of 2-operation workloads, random workloads, sampled subsets)", DefaultValueFactory = _ => 1 };
        var workloads = new Option<int>("--workloads") { Description = "stop after this many workloads", DefaultValueFactory = _ => int.MaxValue };
        var states = new Option<int>("--states-per-point") { Description = "random crash states per crash point, besides nothing/everything persisted and the exhaustive small subsets", DefaultValueFactory = _ => 4 };
        var minutes = new Option<double>("--minutes") { Description = "stop after this long", DefaultValueFactory = _ => 2 };
        var maxStates = new Option<long>("--max-states") { Description = "stop once this many crash states were checked", DefaultValueFactory = _ => long.MaxValue };
        var noPage = new Option<bool>("--no-page") { Description = "CacheLine (pmem) devices only; by default Page devices are tested too" };
        var broken = new Option<bool>("--broken-fences") { Description = "simulate a device whose fences do nothing: the campaign must find violations (a self-test)" };
        var only = new Option<string?>("--workload") { Description = "run only this workload (as a reproducer names it: ace1/I, ace2/I+J, random/SEED/LENGTH)" };
        var device = new Option<string>("--device") { Description = "with --workload: cacheline or page", DefaultValueFactory = _ => "cacheline" };
        var shard = new Option<string?>("--shard") { Description = "K/N: run every N-th workload of the plan from the K-th (0-based), to share a campaign between processes" };
        var data = new Option<string>("--data") { Description = "mount the workloads' volumes with this data mode: atomic (the default) or inplace (an interrupted write may leave its file a word-wise mix)", DefaultValueFactory = _ => "atomic" };
        var json = new Option<FileInfo?>("--json") { Description = "also write {workloads, crash_points, states, violations, seconds, seed} to this file" };
        var cmd = new Command("crashtest", "crash-consistency campaign: every crash point of ACE-style and random workloads, recovered and checked")
        {
            seed, workloads, states, minutes, maxStates, noPage, broken, only, device, shard, data, json,
        };
        cmd.SetAction(r =>
        {
            int w = r.GetValue(workloads), k = r.GetValue(states);
            double m = r.GetValue(minutes);
            if (w < 1)
                throw new UsageException("--workloads must be at least 1");
            if (k < 0)
                throw new UsageException("--states-per-point must not be negative");
            if (!(m > 0) || m > 60 * 24 * 7)
                throw new UsageException("--minutes must be above 0 and at most a week");
            int k0 = 0, n0 = 1;
            if (r.GetValue(shard) is { } sh && (sh.Split('/') is not [var ks, var ns] || !int.TryParse(ks, out k0) || !int.TryParse(ns, out n0)
                || n0 < 1 || k0 < 0 || k0 >= n0))
                throw new UsageException($"--shard must be K/N with 0 <= K < N, not '{sh}'");
            DataMode mode = r.GetValue(data) switch
            {
                "atomic" => DataMode.Atomic,
                "inplace" => DataMode.InPlace,
                var other => throw new UsageException($"--data must be atomic or inplace, not '{other}'"),
            };
            var options = new CampaignOptions
            {
                Data = mode,
                Shard = k0, Shards = n0,
                OnViolation = v => Console.Error.WriteLine($"crashtest: VIOLATION ({v.Kind}): {v.Detail}\n{v.Reproducer}\n"),
                Seed = r.GetValue(seed), MaxWorkloads = w, StatesPerPoint = k, Time = TimeSpan.FromMinutes(m),
                MaxStates = r.GetValue(maxStates), IncludePageDevices = !r.GetValue(noPage), IgnoreFences = r.GetValue(broken),
            };
            if (r.GetValue(only) is { } id)
            {
                var one = Workloads.Parse(id) ?? throw new UsageException($"no workload '{id}' (ace1/0..{Workloads.Core.Count - 1}, ace2/I+J, random/SEED/LENGTH)");
                string d = r.GetValue(device)!;
                if (d is not ("cacheline" or "page"))
                    throw new UsageException($"--device must be cacheline or page, not '{d}'");
                return Report(Campaign.Run(options with { IncludePageDevices = d == "page" }, [(one, d == "page")]), r.GetValue(json));
            }
            CampaignResult result = RunWithProgress(options);
            return Report(result, r.GetValue(json));
        });
        return cmd;
    }

    private static CampaignResult RunWithProgress(CampaignOptions o)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            var last = TimeSpan.Zero;
            return Campaign.Run(o, p =>
            {
                if (p.Elapsed - last < TimeSpan.FromSeconds(10) && p.Current != "done")
                    return;
                last = p.Elapsed;
                Console.Error.WriteLine($"crashtest: {p.Workloads} workloads, {p.CrashPoints} crash points, {p.States} states, {p.Violations} violations, {p.Elapsed.TotalSeconds:F0} s");
            });
        }
        CampaignResult? result = null;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("crashtest", maxValue: 1);
                result = Campaign.Run(o, p =>
                {
                    double byTime = p.Elapsed / o.Time;
                    double byCount = o.MaxWorkloads == int.MaxValue ? 0 : (double)p.Workloads / o.MaxWorkloads;
                    double byStates = o.MaxStates == long.MaxValue ? 0 : (double)p.States / o.MaxStates;
                    task.Value = Math.Min(1, Math.Max(byTime, Math.Max(byCount, byStates)));
                    task.Description = Markup.Escape($"{p.Current}: {p.States:N0} states, {p.Violations} violations");
                });
                task.Value = 1;
            });
        return result!;
    }

    private static int Report(CampaignResult r, FileInfo? json)
    {
        foreach (var v in r.Violations.Take(20))
        {
            Console.WriteLine($"VIOLATION ({v.Kind}): {v.Detail}");
            Console.WriteLine(v.Reproducer);
            Console.WriteLine();
        }
        if (r.Violations.Count > 20)
            Console.WriteLine($"... and {r.Violations.Count - 20} more violations");
        var t = new Table().Border(TableBorder.Rounded).Title("daxfs crashtest").AddColumn("").AddColumn(new TableColumn("").RightAligned());
        t.AddRow("seed", r.Seed.ToString());
        t.AddRow("workloads", r.Workloads.ToString("N0"));
        t.AddRow("operations", r.Operations.ToString("N0"));
        t.AddRow("crash points", r.CrashPoints.ToString("N0"));
        t.AddRow("crash states checked", r.States.ToString("N0"));
        t.AddRow("violations", r.Violations.Count == 0 ? "[green]0[/]" : $"[red]{r.Violations.Count}[/]");
        t.AddRow("redundant flushes (performance)", $"{r.RedundantFlushes:N0} of {r.LinesFlushed:N0} lines written back");
        t.AddRow("time", $"{r.Elapsed.TotalSeconds:F1} s");
        AnsiConsole.Write(t);
        if (json is not null)
        {
            var doc = new Dictionary<string, object>
            {
                ["workloads"] = r.Workloads, ["crash_points"] = r.CrashPoints, ["states"] = r.States,
                ["violations"] = r.Violations.Count, ["seconds"] = Math.Round(r.Elapsed.TotalSeconds, 1), ["seed"] = r.Seed,
                ["operations"] = r.Operations, ["redundant_flushes"] = r.RedundantFlushes, ["lines_flushed"] = r.LinesFlushed,
                ["violation_reports"] = r.Violations.Select(v => new Dictionary<string, object>
                {
                    ["kind"] = v.Kind, ["workload"] = v.Workload, ["device"] = v.Device, ["operation"] = v.Operation,
                    ["crash_point"] = v.CrashPoint, ["detail"] = v.Detail, ["persisted_words"] = v.PersistedWords, ["reproducer"] = v.Reproducer,
                }).ToList(),
            };
            File.WriteAllText(json.FullName, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
        return r.Violations.Count == 0 ? 0 : 1;
    }
}
