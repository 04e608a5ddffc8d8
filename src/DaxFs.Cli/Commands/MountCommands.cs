using System.CommandLine;
using System.Diagnostics;
using DaxFs.Fuse;
using DaxFs.Pmem;
using Spectre.Console;

namespace DaxFs.Cli.Commands;

/// <summary>MountCommands -- `daxfs mount` (a daemon serving the volume over FUSE) and `daxfs umount`.</summary>
public static class MountCommands
{
    /// <summary>The mount point of the quick start.</summary>
    public const string DefaultMountPoint = "/mnt/daxfs";

    private const string DaemonEnv = "DAXFS_MOUNT_DAEMON";

    /// <summary>`daxfs mount [VOLUME] [MOUNTPOINT]`.</summary>
    public static Command Mount()
    {
        var volume = new Argument<string>("VOLUME") { Description = $"volume (created and formatted if missing; default {VolumeCommands.DefaultVolume})", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => VolumeCommands.DefaultVolume };
        var mountPoint = new Argument<string>("MOUNTPOINT") { Description = $"directory to mount on (created if missing; default {DefaultMountPoint})", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => DefaultMountPoint };
        var foreground = new Option<bool>("--foreground", "-f") { Description = "serve in this process until unmounted (default: start a daemon and return once mounted)" };
        var emulate = new Option<bool>("--emulate-pmem") { Description = "treat a file on tmpfs as pmem (calls durable on return); the default for volumes under /dev/shm" };
        var options = new Option<string[]>("-o") { Description = "mount options: sync (every call durable on return on Page devices), data=inplace (overwrites stored in place, as ext4-DAX does: durable on return but not atomic, times journaled lazily) or data=atomic (the default: every write atomic), allow_other, ro, direct_io (file data never in the kernel's page cache; the default where the kernel allows shared mmap of such files), kernel_cache (the page cache in front of the daemon: faster re-reads of small cached data, every byte held twice)", AllowMultipleArgumentsPerToken = true };
        var size = new Option<string?>("--size") { Description = "size of a volume created by this mount (default 1G)" };
        var threads = new Option<int>("--threads") { Description = "FUSE worker threads", DefaultValueFactory = _ => 4 };
        var cmd = new Command("mount", "mount a volume with FUSE so that every program can use it; unmount with daxfs umount MOUNTPOINT")
        {
            volume, mountPoint, foreground, emulate, options, size, threads,
        };
        cmd.SetAction(r =>
        {
            string vol = Path.GetFullPath(r.GetValue(volume)!);
            string mp = Path.GetFullPath(r.GetValue(mountPoint)!);
            var opts = ParseOptions(r.GetValue(options) ?? []);
            bool emu = r.GetValue(emulate) || vol.StartsWith("/dev/shm/", StringComparison.Ordinal);
            long create = r.GetValue(size) is { } s ? Sizes.Parse(s) : VolumeCommands.DefaultSize;
            int n = r.GetValue(threads);
            if (n < 1 || n > 64)
                throw new UsageException("--threads must be between 1 and 64");
            if (r.GetValue(foreground) || Environment.GetEnvironmentVariable(DaemonEnv) == "1")
                return Serve(vol, mp, emu, opts, create, n);
            return StartDaemon(vol, mp, r.Tokens.Select(t => t.Value).ToArray());
        });
        return cmd;
    }

    private sealed record Opts(bool Sync, bool AllowOther, bool ReadOnly, DaxFs.Fuse.FuseDataCaching Caching, DataMode Data);

    private static Opts ParseOptions(string[] raw)
    {
        bool sync = false, other = false, ro = false;
        var caching = DaxFs.Fuse.FuseDataCaching.Auto;
        var data = DataMode.Atomic;
        foreach (string o in raw.SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries)))
        {
            switch (o)
            {
                case "sync": sync = true; break;
                case "allow_other": other = true; break;
                case "ro": ro = true; break;
                case "direct_io": caching = DaxFs.Fuse.FuseDataCaching.Direct; break;
                case "kernel_cache": caching = DaxFs.Fuse.FuseDataCaching.Kernel; break;
                case "data=inplace": data = DataMode.InPlace; break;
                case "data=atomic": data = DataMode.Atomic; break;
                case "rw" or "async" or "defaults": break;
                case var d when d.StartsWith("data=", StringComparison.Ordinal):
                    throw new UsageException($"unknown data mode '{d[5..]}' (known: data=atomic, data=inplace)");
                default: throw new UsageException($"unknown mount option '{o}' (known: sync, data=atomic, data=inplace, allow_other, ro, direct_io, kernel_cache)");
            }
        }
        if (raw.SelectMany(x => x.Split(',')).Contains("direct_io") && raw.SelectMany(x => x.Split(',')).Contains("kernel_cache"))
            throw new UsageException("mount options direct_io and kernel_cache contradict each other: give one");
        return new Opts(sync, other, ro, caching, data);
    }

    /// <summary>Serves the volume until unmounted (SIGINT/SIGTERM unmount cleanly).</summary>
    private static int Serve(string vol, string mp, bool emulate, Opts o, long createSize, int threads)
    {
        if (Environment.GetEnvironmentVariable(DaemonEnv) == "1")
            Console.Error.WriteLine($"{DaemonPidPrefix}{Environment.ProcessId}");
        RefuseLiveMount(mp);
        var devOpts = new PmemOpenOptions { EmulatePmem = emulate ? true : null, ReadOnly = o.ReadOnly };
        DaxVolume volume;
        if (!File.Exists(vol) && !vol.StartsWith("/dev/dax", StringComparison.Ordinal))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(vol)!);
            volume = DaxVolume.Create(vol, createSize, devOpts, mount: new MountOptions { Sync = o.Sync, Data = o.Data });
            Console.Error.WriteLine($"daxfs mount: created and formatted {vol} ({Sizes.Format(createSize)})");
        }
        else
        {
            volume = DaxVolume.Open(vol, devOpts, new MountOptions { Sync = o.Sync, Data = o.Data });
            if (volume.ReplayedTransactions > 0 || volume.OrphansFreed > 0)
                Console.Error.WriteLine($"daxfs mount: recovered {vol}: replayed {volume.ReplayedTransactions} journal transactions, freed {volume.OrphansFreed} orphans");
        }
        using (volume)
        {
            // A stale mount (its daemon killed) answers ENOTCONN to everything, mkdir included: FuseMount.Mount
            // detaches it and mounts in its place.
            if (!FuseMount.IsStale(mp) && !Directory.Exists(mp))
                Directory.CreateDirectory(mp);
            var fs = new DaxVolumeFileSystem(volume, o.Caching);
            using var mount = FuseMount.Mount(mp, fs, new FuseMountOptions
            {
                FsName = vol, AllowOther = o.AllowOther, ReadOnly = o.ReadOnly, Threads = threads,
            });
            using var signals = mount.HandleTerminationSignals();
            if (fs.DataCachingFallback is { } why)
                Console.Error.WriteLine($"daxfs mount: file data goes through the kernel's page cache: {why}");
            if (o.Data == DataMode.InPlace && volume.DataMode != DataMode.InPlace)
                Console.Error.WriteLine("daxfs mount: data=inplace needs a byte-addressable device; on this Page device writes stay atomic (copy on write)");
            Console.Error.WriteLine($"{MountedPrefix}{vol} mounted on {mp} ({volume.Device.Granularity}, {(fs.DataCaching == DaxFs.Fuse.FuseDataCaching.Direct ? "direct I/O" : "kernel page cache")}{(volume.DataMode == DataMode.InPlace ? ", data in place" : "")}); daxfs umount {mp} to unmount");
            mount.WaitForUnmount();
        }
        Console.Error.WriteLine($"daxfs mount: {mp} unmounted, {vol} closed cleanly");
        return ExitCodes.Ok;
    }

    private const string DaemonPidPrefix = "daxfs mount: daemon pid ";
    private const string MountedPrefix = "daxfs mount: ";

    /// <summary>Refuses a mount point where a live FUSE mount already is (a stale one, whose daemon is gone, is
    /// taken over).</summary>
    private static void RefuseLiveMount(string mp)
    {
        if (MountSource(mp) is { } source && !FuseMount.IsStale(mp))
            throw new IOException($"{mp} is already mounted ({source}); unmount it first with daxfs umount {mp}");
    }

    /// <summary>Starts this command again as a detached daemon (own session, output to a fresh log file) and returns
    /// once THIS daemon reports its mount live (INIT answered), or with its error if it fails. A stale entry for
    /// the mount point in /proc/self/mounts (a killed daemon's) is not mistaken for the new mount.</summary>
    private static int StartDaemon(string vol, string mp, string[] args)
    {
        RefuseLiveMount(mp);
        string log = Path.Combine(Path.GetTempPath(), $"daxfs-mount-{Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(mp)))[..12].ToLowerInvariant()}.log");
        string self = Environment.ProcessPath ?? "dotnet";
        string dll = typeof(MountCommands).Assembly.Location;
        var psi = new ProcessStartInfo("setsid") { UseShellExecute = false, RedirectStandardInput = true };
        psi.ArgumentList.Add("--fork");
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$0\" \"$@\" </dev/null >>\"$DAXFS_MOUNT_LOG\" 2>&1");
        psi.ArgumentList.Add(self);
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("mount");
        foreach (string a in args.SkipWhile(a => a == "mount"))
            psi.ArgumentList.Add(a);
        psi.Environment[DaemonEnv] = "1";
        psi.Environment["DAXFS_MOUNT_LOG"] = log;
        // A fresh log: the lines read below are this daemon's only.
        File.WriteAllText(log, $"daxfs mount {vol} {mp} started {DateTime.Now:O}\n");
        using (Process.Start(psi) ?? throw new IOException("cannot start the mount daemon (setsid)"))
        {
        }
        string mounted = $"{MountedPrefix}{vol} mounted on {mp} ";
        int pid = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            string[] lines = ReadLog(log);
            if (pid == 0 && lines.FirstOrDefault(l => l.StartsWith(DaemonPidPrefix, StringComparison.Ordinal)) is { } pidLine)
                _ = int.TryParse(pidLine.AsSpan(DaemonPidPrefix.Length), out pid);
            // The daemon's progress lines start "daxfs mount:"; an error line (from Program) starts "daxfs:".
            if (lines.LastOrDefault(l => l.StartsWith("daxfs: ", StringComparison.Ordinal)) is { } error)
            {
                Console.Error.WriteLine(error);
                return ExitCodes.Failure;
            }
            if (lines.Any(l => l.StartsWith(mounted, StringComparison.Ordinal)) && IsMounted(mp) && !FuseMount.IsStale(mp))
            {
                AnsiConsole.MarkupLine($"mounted [bold]{Markup.Escape(vol)}[/] on [bold]{Markup.Escape(mp)}[/] (log: {Markup.Escape(log)}); unmount with [bold]daxfs umount {Markup.Escape(mp)}[/]");
                return ExitCodes.Ok;
            }
            if (pid > 0 && !Directory.Exists($"/proc/{pid}"))
            {
                Console.Error.WriteLine($"daxfs: the mount daemon (pid {pid}) exited without mounting {mp}; see {log}");
                return ExitCodes.Failure;
            }
            Thread.Sleep(50);
        }
        Console.Error.WriteLine($"daxfs: the mount of {mp} did not come up within 60 s; see {log}");
        return ExitCodes.Failure;
    }

    private static string[] ReadLog(string log)
    {
        try
        {
            using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Split('\n');
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }

    /// <summary>Whether a DaxFS FUSE mount is live at <paramref name="mp"/> (from /proc/self/mounts).</summary>
    public static bool IsMounted(string mp) => MountSource(mp) is not null;

    /// <summary>The source (volume path) of the DaxFS mount at <paramref name="mp"/>, or null.</summary>
    public static string? MountSource(string mp)
    {
        foreach (string line in File.ReadLines("/proc/self/mounts"))
        {
            string[] f = line.Split(' ');
            if (f.Length >= 3 && Unescape(f[1]) == mp && f[2].StartsWith("fuse", StringComparison.Ordinal))
                return Unescape(f[0]);
        }
        return null;
    }

    private static string Unescape(string s) => s.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
        .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);

    /// <summary>`daxfs umount MOUNTPOINT`: unmounts and waits until the daemon has closed the volume.</summary>
    public static Command Umount()
    {
        var mountPoint = new Argument<string>("MOUNTPOINT") { Description = $"mount point (default {DefaultMountPoint})", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => DefaultMountPoint };
        var cmd = new Command("umount", "unmount a DaxFS mount and wait until its volume is closed cleanly") { mountPoint };
        cmd.SetAction(r =>
        {
            string mp = Path.GetFullPath(r.GetValue(mountPoint)!);
            string source = MountSource(mp) ?? throw new IOException($"{mp} is not a mounted DaxFS volume");
            var (code, output) = Run(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root" ? "umount" : "fusermount3",
                Environment.UserName == "root" ? [mp] : ["-u", mp]);
            if (code != 0)
                throw new IOException($"cannot unmount {mp}: {output.Trim()}");
            // The daemon closes the volume after the kernel's DESTROY; wait for its lock to be free.
            var sw = Stopwatch.StartNew();
            while (File.Exists(source) && sw.Elapsed < TimeSpan.FromSeconds(60))
            {
                try
                {
                    using var probe = PmemDevice.Open(source, new PmemOpenOptions { ReadOnly = true });
                    break;
                }
                catch (DeviceInUseException)
                {
                    Thread.Sleep(50);
                }
            }
            AnsiConsole.MarkupLine($"unmounted [bold]{Markup.Escape(mp)}[/]; {Markup.Escape(source)} is closed");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static (int Code, string Output) Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi) ?? throw new IOException($"cannot run {file}");
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }
}
