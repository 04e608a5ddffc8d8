using System.CommandLine;
using DaxFs.Bench;
using Spectre.Console;

namespace DaxFs.Cli.Commands;

/// <summary>BenchCommand -- `daxfs bench SUITE`: runs a benchmark suite beside its anchors in one run, shows a table
/// of figures and ratios, and writes JSON with --json.</summary>
public static class BenchCommand
{
    /// <summary>The command and its suites.</summary>
    public static Command Create()
    {
        var cmd = new Command("bench", "measure DaxFS against its anchors in the same run (see the README's performance section)");
        var json = new Option<FileInfo?>("--json") { Description = "also write the results as JSON to this file" };
        var rounds = new Option<int>("--rounds") { Description = "anchor/DaxFS alternations; figures are medians over rounds", DefaultValueFactory = _ => 5 };
        // fs and fuse rounds each take a minute or more: three by default, as many as asked for.
        var longRounds = new Option<int>("--rounds") { Description = "anchor/DaxFS alternations; figures are medians over rounds", DefaultValueFactory = _ => 3 };
        var quick = new Option<bool>("--quick") { Description = "a small device and few iterations: a smoke run, not a measurement" };
        var dir = new Option<string>("--dir") { Description = "directory for the emulated-pmem files (tmpfs)", DefaultValueFactory = _ => "/dev/shm" };
        var pmem = new Command("pmem", "device layer: durable copy latency and bandwidth vs PMDK libpmem, dirty-extent flush vs whole-device flush")
        {
            json, rounds, quick, dir,
        };
        pmem.SetAction(r =>
        {
            int n = r.GetValue(rounds);
            if (n < 1)
                throw new UsageException("--rounds must be at least 1");
            bool q = r.GetValue(quick);
            var options = new PmemSuiteOptions(Directory: r.GetValue(dir)!, DeviceBytes: q ? 64L << 20 : 1L << 30, Rounds: q ? 1 : n,
                IterationPercent: q ? 5 : 100);
            return Report(Run("pmem", p => PmemSuite.Run(options, p)), r.GetValue(json));
        });
        cmd.Subcommands.Add(pmem);

        var fs = new Command("fs", "file system calls, durable on return, vs the kernel on tmpfs and PMDK's raw durable copy")
        {
            json, longRounds, quick, dir,
        };
        fs.SetAction(r =>
        {
            int n = r.GetValue(longRounds);
            if (n < 1)
                throw new UsageException("--rounds must be at least 1");
            bool q = r.GetValue(quick);
            var options = new FsSuiteOptions(Directory: r.GetValue(dir)!, Rounds: q ? 1 : n, IterationPercent: q ? 2 : 100);
            return Report(Run("fs", p => FsSuite.Run(options, p)), r.GetValue(json));
        });
        cmd.Subcommands.Add(fs);

        var size = new Option<string?>("--size") { Description = "the large mapping's size, a power of two (default 1GiB; e.g. 256MiB)" };
        var mapDir = new Option<string?>("--dir")
        {
            Description = "directory for the volumes and the anchor's file (default: a huge=always tmpfs mounted for the run when root, else /dev/shm)",
        };
        var mapRounds = new Option<int>("--rounds") { Description = "anchor/DaxFS alternations; figures are medians over rounds", DefaultValueFactory = _ => 2 };
        var map = new Command("map", "direct-access mappings: fsync per dirty-tracking policy, PMD vs PTE loads and map cost, store+persist vs PMDK")
        {
            json, mapRounds, quick, mapDir, size,
        };
        map.SetAction(r =>
        {
            int n = r.GetValue(mapRounds);
            if (n < 1)
                throw new UsageException("--rounds must be at least 1");
            bool q = r.GetValue(quick);
            long bytes = q ? 64L << 20 : 1L << 30;
            if (r.GetValue(size) is { } text)
                bytes = Sizes.Parse(text);
            if (bytes < (8 << 20) || (bytes & (bytes - 1)) != 0)
                throw new UsageException($"--size must be a power of two of at least 8 MiB, not {bytes}");
            var options = new MapSuiteOptions(Directory: r.GetValue(mapDir), FileBytes: bytes, MidFileBytes: Math.Min(64L << 20, bytes / 16),
                Rounds: q ? 1 : n, IterationPercent: q ? 5 : 100);
            return Report(Run("map", p => MapSuite.Run(options, p)), r.GetValue(json));
        });
        cmd.Subcommands.Add(map);

        var caching = new Option<string>("--data") { Description = "how the mount serves file data: auto (direct I/O where the kernel allows), direct, kernel (page cache)", DefaultValueFactory = _ => "auto" };
        var fuse = new Command("fuse", "fio through a DaxFS FUSE mount (in this process, emulated pmem) vs the same jobs on a kernel tmpfs directory")
        {
            json, longRounds, quick, dir, caching,
        };
        fuse.SetAction(r =>
        {
            int n = r.GetValue(longRounds);
            if (n < 1)
                throw new UsageException("--rounds must be at least 1");
            bool q = r.GetValue(quick);
            var mode = r.GetValue(caching) switch
            {
                "direct" => DaxFs.Fuse.FuseDataCaching.Direct,
                "kernel" => DaxFs.Fuse.FuseDataCaching.Kernel,
                "auto" => DaxFs.Fuse.FuseDataCaching.Auto,
                var other => throw new UsageException($"--data must be auto, direct or kernel, not '{other}'"),
            };
            var options = new FuseSuiteOptions((mp, v) => MountForBench(mp, v, mode), Directory: r.GetValue(dir)!, Rounds: q ? 1 : n, Quick: q);
            return Report(Run("fuse", p => FuseSuite.Run(options, p)), r.GetValue(json));
        });
        cmd.Subcommands.Add(fuse);
        return cmd;
    }

    /// <summary>Mounts <paramref name="volume"/> on <paramref name="mountPoint"/> in this process for `bench fuse`.</summary>
    public static (IDisposable Mount, string DataPath) MountForBench(string mountPoint, DaxVolume volume, DaxFs.Fuse.FuseDataCaching caching)
    {
        var fs = new DaxFs.Fuse.DaxVolumeFileSystem(volume, caching);
        var mount = DaxFs.Fuse.FuseMount.Mount(mountPoint, fs, new DaxFs.Fuse.FuseMountOptions { FsName = "daxfs-bench" });
        return (mount, fs.DataCaching == DaxFs.Fuse.FuseDataCaching.Direct ? "direct I/O (FOPEN_DIRECT_IO)" :
            "the kernel's page cache" + (fs.DataCachingFallback is { } why ? $" ({why})" : ""));
    }

    /// <summary>Runs a suite under a progress bar (plain lines when the output is not a terminal).</summary>
    private static BenchReport Run(string suite, Func<IProgress<(string, double)>, BenchReport> body) =>
        ProgressDisplay.Run($"bench {suite}", body, linesWhenPlain: true);

    /// <summary>Prints the table and writes the JSON file.</summary>
    private static int Report(BenchReport report, FileInfo? json)
    {
        var t = new Table().Border(TableBorder.Rounded).Title($"daxfs bench {report.Suite}")
            .AddColumn("measure").AddColumn("unit").AddColumn(new TableColumn("DaxFS").RightAligned())
            .AddColumn("anchor").AddColumn(new TableColumn("anchor value").RightAligned())
            .AddColumn(new TableColumn("ratio").RightAligned()).AddColumn("target").AddColumn(new TableColumn("spread").RightAligned());
        foreach (var r in report.Results)
        {
            string met = r.Met switch { true => "[green]met[/]", false => "[red]not met[/]", null => "" };
            t.AddRow(Markup.Escape(r.Name), r.Unit, Fmt(r.Value), Markup.Escape(r.Anchor ?? ""), r.AnchorValue is { } a ? Fmt(a) : "",
                r.Ratio is { } x ? x.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) : "",
                r.Target is null ? "" : $"{Markup.Escape(r.Target)} {met}",
                r.Spread is { } sp ? "±" + (sp * 100).ToString("0", System.Globalization.CultureInfo.InvariantCulture) + "%" : "");
        }
        AnsiConsole.Write(t);
        foreach (var (k, v) in report.Environment)
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(k)}: {Markup.Escape(v)}[/]");
        if (json is not null)
        {
            File.WriteAllText(json.FullName, report.ToJson());
            AnsiConsole.MarkupLine($"[grey]wrote {Markup.Escape(json.FullName)}[/]");
        }
        return ExitCodes.Ok;
    }

    private static string Fmt(double v) => v.ToString(v >= 100 ? "0" : "0.###", System.Globalization.CultureInfo.InvariantCulture);
}
