using System.CommandLine;
using System.Text.Json;
using DaxFs.Pmem;
using Spectre.Console;

namespace DaxFs.Cli.Commands;

/// <summary>ProbeCommand -- `daxfs probe [PATH]`: opens a device (by default a scratch emulated-pmem file on
/// /dev/shm, removed afterwards) and shows what the device layer decided and why.</summary>
public static class ProbeCommand
{
    /// <summary>The command and its options.</summary>
    public static Command Create()
    {
        var path = new Argument<string?>("PATH") { Description = "device-dax device or file to probe (default: a scratch file on /dev/shm)", Arity = ArgumentArity.ZeroOrOne };
        var emulate = new Option<bool>("--emulate-pmem") { Description = "treat a file without MAP_SYNC (tmpfs) as CacheLine-granular pmem (default for the scratch file)" };
        var json = new Option<bool>("--json") { Description = "print the facts as JSON" };
        var cmd = new Command("probe", "show the persistence granularity, flush instruction and store strategy a device gets") { path, emulate, json };
        cmd.SetAction(r => Run(r.GetValue(path), r.GetValue(emulate), r.GetValue(json)));
        return cmd;
    }

    private static int Run(string? path, bool emulate, bool json)
    {
        DeviceInfo info;
        if (path is null)
        {
            string scratch = $"/dev/shm/daxfs-probe-{Environment.ProcessId}.img";
            try
            {
                using var dev = PmemDevice.Create(scratch, 64 << 20, new PmemOpenOptions { EmulatePmem = true });
                info = dev.Info;
            }
            finally
            {
                File.Delete(scratch);
            }
        }
        else
        {
            using var dev = PmemDevice.Open(path, new PmemOpenOptions { EmulatePmem = emulate ? true : null, ReadOnly = true, Exclusive = false });
            info = dev.Info;
        }
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                kind = info.Kind.ToString(), path = info.Path, length = info.Length, granularity = info.Granularity.ToString(),
                reason = info.GranularityReason, map_sync = info.MapSync, flush = info.Flush.ToString(),
                invalidate = info.Invalidate.ToString(), non_temporal = info.NonTemporal, non_temporal_threshold = info.NonTemporalThreshold,
            }, new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Ok;
        }
        var t = new Table().Border(TableBorder.Rounded).AddColumn("fact").AddColumn("value");
        t.AddRow("device", Markup.Escape($"{info.Kind} {info.Path} ({info.Length} bytes)"));
        t.AddRow("granularity", Markup.Escape($"{info.Granularity}: {info.GranularityReason}"));
        t.AddRow("MAP_SYNC", info.MapSync ? "yes" : "no");
        t.AddRow("write-back", info.Flush.ToString());
        t.AddRow("write-back + evict", info.Invalidate.ToString());
        t.AddRow("drain", "SFENCE");
        t.AddRow("non-temporal stores", Markup.Escape(info.NonTemporalThreshold == int.MaxValue ? "never" : $"{info.NonTemporal}, copies of {info.NonTemporalThreshold} B or more"));
        AnsiConsole.Write(t);
        return ExitCodes.Ok;
    }
}
