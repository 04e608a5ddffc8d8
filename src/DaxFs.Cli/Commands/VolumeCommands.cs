using System.CommandLine;
using System.Text.Json;
using DaxFs.Check;
using DaxFs.Pmem;
using Spectre.Console;

namespace DaxFs.Cli.Commands;

/// <summary>VolumeCommands -- `daxfs mkfs`, `daxfs info`, `daxfs fsck`.</summary>
public static class VolumeCommands
{
    /// <summary>The default volume of the quick start.</summary>
    public const string DefaultVolume = "/dev/shm/daxfs.img";

    /// <summary>The default size of a volume that `mount` creates.</summary>
    public const long DefaultSize = 1L << 30;

    /// <summary>`daxfs mkfs VOLUME --size SIZE`.</summary>
    public static Command Mkfs()
    {
        var volume = new Argument<string>("VOLUME") { Description = "device-dax device or file (created if missing)" };
        var size = new Option<string?>("--size") { Description = "size of a new file volume, e.g. 1G, 512M (required unless VOLUME exists)" };
        var emulate = new Option<bool>("--emulate-pmem") { Description = "treat a file without MAP_SYNC (tmpfs) as pmem: calls are durable on return" };
        var journal = new Option<string?>("--journal") { Description = "journal size (default: 1/64 of the volume, 256K..64M)" };
        var inodes = new Option<long?>("--inodes") { Description = "number of inodes (default: one per 16 KiB)" };
        var force = new Option<bool>("--force") { Description = "format over an existing DaxFS volume" };
        var cmd = new Command("mkfs", "format a volume (everything on it is lost)") { volume, size, emulate, journal, inodes, force };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(volume)!;
            long? bytes = r.GetValue(size) is { } s ? Sizes.Parse(s) : null;
            var fmt = new FormatOptions
            {
                JournalBytes = r.GetValue(journal) is { } j ? Sizes.Parse(j) : null,
                InodeCount = r.GetValue(inodes),
            };
            Format(path, bytes, r.GetValue(emulate), fmt, r.GetValue(force));
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>Formats <paramref name="path"/>, creating it with <paramref name="size"/> bytes when missing.</summary>
    public static void Format(string path, long? size, bool emulate, FormatOptions format, bool force)
    {
        var opts = new PmemOpenOptions { EmulatePmem = emulate ? true : null };
        if (!File.Exists(path) && !path.StartsWith("/dev/dax", StringComparison.Ordinal))
        {
            if (size is null)
                throw new UsageException($"{path} does not exist: give --size to create it");
            ProgressDisplay.Run($"mkfs {Path.GetFileName(path)}", p =>
            {
                p.Report(($"reserving {Sizes.Format(size.Value)}", 0));
                var reserve = new SyncFraction(f => p.Report(($"reserving {Sizes.Format(size.Value)}", 0.9 * f)));
                using var v = DaxVolume.Create(path, size.Value, opts with { CreateProgress = reserve }, format);
                p.Report(("formatted", 1));
                return 0;
            });
        }
        else
        {
            using var dev = PmemDevice.Open(path, opts);
            if (size is { } want && want != dev.Length)
                throw new UsageException($"{path} exists with {dev.Length} bytes; --size {want} does not match (remove it first to resize)");
            if (!force && LooksLikeVolume(dev))
                throw new ArgumentException($"{path} already holds a DaxFS volume: add --force to format over it");
            ProgressDisplay.Run($"mkfs {Path.GetFileName(path)}", p =>
            {
                p.Report(("formatting", 0));
                using var v = DaxVolume.Format(dev, format);
                p.Report(("formatted", 1));
                return 0;
            });
        }
        AnsiConsole.MarkupLine($"formatted [bold]{Markup.Escape(path)}[/]");
    }

    private static bool LooksLikeVolume(PmemDevice dev)
    {
        try
        {
            DaxVolume.Inspect(dev);
            return true;
        }
        catch (DaxFsException)
        {
            return false;
        }
        catch (ArgumentException)
        {
            return dev.Length >= 8 && dev.ReadUInt64(0) == 0x3142_5346_5841_4144;
        }
    }

    /// <summary>`daxfs info VOLUME [--json]`.</summary>
    public static Command Info()
    {
        var volume = new Argument<string>("VOLUME") { Description = "volume to describe" };
        var json = new Option<bool>("--json") { Description = "print as JSON" };
        var emulate = new Option<bool>("--emulate-pmem") { Description = "report the granularity the volume gets when mounted with --emulate-pmem" };
        var cmd = new Command("info", "show a volume's geometry and usage (read-only)") { volume, json, emulate };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(volume)!;
            using var dev = PmemDevice.Open(path, new PmemOpenOptions { ReadOnly = true, Exclusive = false, EmulatePmem = r.GetValue(emulate) ? true : null });
            VolumeInfo info = DaxVolume.Inspect(dev);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    path, uuid = info.Uuid, version = info.Version, device_bytes = info.DeviceBytes, block_size = info.BlockSize,
                    journal_bytes = info.JournalBytes, inodes = info.InodeCount, inodes_used = info.InodesUsed, data_blocks = info.DataBlocks,
                    free_blocks = info.FreeBlocks, free_aligned_2mib = info.FreeAlignedExtents, pending_transactions = info.PendingTransactions,
                    problems = info.Problems, granularity = dev.Granularity.ToString(),
                }, new JsonSerializerOptions { WriteIndented = true }));
                return ExitCodes.Ok;
            }
            var t = new Table().Border(TableBorder.Rounded).AddColumn("").AddColumn("");
            t.AddRow("volume", Markup.Escape(path));
            t.AddRow("uuid", info.Uuid.ToString());
            t.AddRow("format version", info.Version);
            t.AddRow("size", $"{Sizes.Format(info.DeviceBytes)} ({info.DeviceBytes} bytes)");
            t.AddRow("granularity", Markup.Escape($"{dev.Granularity} ({dev.Info.GranularityReason})"));
            t.AddRow("journal", Sizes.Format(info.JournalBytes));
            t.AddRow("inodes", $"{info.InodesUsed} used of {info.InodeCount}");
            t.AddRow("space", $"{Sizes.Format((info.DataBlocks - info.FreeBlocks) * info.BlockSize)} used of {Sizes.Format(info.DataBlocks * info.BlockSize)}, " +
                $"{info.FreeAlignedExtents} free 2 MiB-aligned extents");
            t.AddRow("journal to replay", info.PendingTransactions == 0 ? "none (clean)" : $"{info.PendingTransactions} transactions (the next mount replays them)");
            if (info.Problems > 0)
                t.AddRow("[red]problems[/]", $"{info.Problems} (run daxfs fsck)");
            AnsiConsole.Write(t);
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>`daxfs fsck VOLUME [--repair] [--json]`: exit 0 clean, 1 errors left.</summary>
    public static Command FsckCommand()
    {
        var volume = new Argument<string>("VOLUME") { Description = "volume to check (not mounted)" };
        var repair = new Option<bool>("--repair") { Description = "fix what can be fixed (link counts, damaged logs, orphans, superblocks)" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON" };
        var cmd = new Command("fsck", "check a volume's consistency (replays its journal first, as a mount would); exit 0 clean, 1 errors") { volume, repair, json };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(volume)!;
            using var dev = PmemDevice.Open(path);
            FsckReport report = null!;
            report = ProgressDisplay.Run($"fsck {Path.GetFileName(path)}", p => Fsck.Check(dev, r.GetValue(repair), p));
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    path, clean = report.Clean, errors = report.Errors, repairs = report.Repairs, inodes = report.Inodes,
                    used_blocks = report.UsedBlocks, replayed_transactions = report.ReplayedTransactions,
                }, new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                foreach (string e in report.Errors)
                    AnsiConsole.MarkupLine($"[red]error[/]: {Markup.Escape(e)}");
                foreach (string e in report.Repairs)
                    AnsiConsole.MarkupLine($"[yellow]repaired[/]: {Markup.Escape(e)}");
                if (report.ReplayedTransactions > 0)
                    AnsiConsole.MarkupLine($"replayed {report.ReplayedTransactions} journal transactions");
                AnsiConsole.MarkupLine(report.Clean
                    ? $"[green]clean[/]: {report.Inodes} inodes, {report.UsedBlocks} blocks in use"
                    : $"[red]{report.Errors.Count} errors[/]" + (r.GetValue(repair) ? " remain" : " (daxfs fsck --repair fixes what it can)"));
            }
            return report.Clean ? ExitCodes.Ok : ExitCodes.Failure;
        });
        return cmd;
    }

    /// <summary>A fraction reported on the caller's thread.</summary>
    private sealed class SyncFraction(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
