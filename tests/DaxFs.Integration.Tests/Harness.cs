using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using DaxFs.Check;
using DaxFs.Fuse;
using DaxFs.Pmem;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>Every integration test mounts through the one kernel FUSE device and uses external tools at full speed:
/// they run one at a time, in one collection.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IntegrationCollection
{
    public const string Name = "integration";
}

/// <summary>Hard -- a hard time limit around a test body. The body runs on its own thread; when it overruns, the
/// test fails at once with a TimeoutException (its cleanup then unmounts, which unblocks a body stuck on the mount).</summary>
internal static class Hard
{
    public static void Run(TimeSpan limit, Action body)
    {
        var task = Task.Factory.StartNew(body, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (Task.WaitAny([task], limit) < 0 && !task.IsCompleted)
            throw new TimeoutException($"the test body did not finish within {limit.TotalSeconds:0} s (hard limit)");
        task.GetAwaiter().GetResult();
    }
}

/// <summary>Proc -- runs programs with a time limit (the whole process tree is killed when it runs over).</summary>
internal static class Proc
{
    public sealed record Result(int Exit, string Out, string Err, TimeSpan Elapsed)
    {
        public string Describe(string what) => $"{what} exited {Exit} after {Elapsed.TotalSeconds:0.0} s\n--- stdout ---\n{Tail(Out)}\n--- stderr ---\n{Tail(Err)}";

        private static string Tail(string s) => s.Length <= 6000 ? s : "...\n" + s[^6000..];
    }

    public static Result Run(string file, IEnumerable<string> args, TimeSpan? timeout = null, string? cwd = null,
        IDictionary<string, string>? env = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            WorkingDirectory = cwd ?? Environment.CurrentDirectory,
        };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(60);
        if (!p.WaitForExit(limit))
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            p.WaitForExit(5000);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within {limit.TotalSeconds:0} s; killed\n" +
                $"stdout: {Last(stdout)}\nstderr: {Last(stderr)}");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result, sw.Elapsed);
    }

    private static string Last(Task<string> t) => t.Wait(2000) ? (t.Result.Length > 2000 ? t.Result[^2000..] : t.Result) : "(still open)";

    public static Result Run(string file, params string[] args) => Run(file, (IEnumerable<string>)args);

    /// <summary>Runs and asserts exit 0; returns stdout.</summary>
    public static string Ok(string file, params string[] args) => Ok(TimeSpan.FromSeconds(60), null, file, args);

    public static string Ok(TimeSpan timeout, string? cwd, string file, params string[] args)
    {
        Result r = Run(file, args, timeout, cwd);
        Assert.True(r.Exit == 0, r.Describe($"{file} {string.Join(' ', args)}"));
        return r.Out;
    }

    /// <summary>sh -c SCRIPT, asserting exit 0.</summary>
    public static string Sh(string script, string? cwd = null, TimeSpan? timeout = null) =>
        Ok(timeout ?? TimeSpan.FromSeconds(60), cwd, "sh", "-c", script);
}

/// <summary>Cli -- the daxfs command, run as a separate process from the test's output directory.</summary>
internal static class Cli
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "DaxFs.Cli.dll");

    public static Proc.Result Run(params string[] args) => Run(TimeSpan.FromSeconds(90), args);

    public static Proc.Result Run(TimeSpan timeout, params string[] args) =>
        Proc.Run("dotnet", new[] { Dll }.Concat(args), timeout, env: new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" });

    public static string Ok(params string[] args)
    {
        Proc.Result r = Run(args);
        Assert.True(r.Exit == 0, r.Describe("daxfs " + string.Join(' ', args)));
        return r.Out;
    }

    /// <summary>The log file `daxfs mount` gives its daemon for <paramref name="mountPoint"/>.</summary>
    public static string MountLog(string mountPoint) => Path.Combine(Path.GetTempPath(),
        $"daxfs-mount-{Convert.ToHexString(SHA1.HashData(Encoding.UTF8.GetBytes(mountPoint)))[..12].ToLowerInvariant()}.log");
}

/// <summary>Mounts -- what /proc/self/mounts says.</summary>
internal static class Mounts
{
    public static bool IsMounted(string dir) => File.ReadLines("/proc/self/mounts").Any(l => l.Split(' ')[1] == dir);

    public static string? Line(string dir) => File.ReadLines("/proc/self/mounts").FirstOrDefault(l => l.Split(' ')[1] == dir);

    /// <summary>Last resort: detach lazily, then abort the FUSE connection if fusectl is there.</summary>
    public static void ForceDetach(string dir)
    {
        string? dev = File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')).Where(f => f.Length > 4 && f[4] == dir)
            .Select(f => f[2]).FirstOrDefault();
        if (IsMounted(dir))
            Proc.Run("umount", ["-l", dir], TimeSpan.FromSeconds(20));
        if (dev is not null && dev.StartsWith("0:", StringComparison.Ordinal))
        {
            string abort = $"/sys/fs/fuse/connections/{dev[2..]}/abort";
            if (File.Exists(abort))
            {
                try
                {
                    File.WriteAllText(abort, "1");
                }
                catch (IOException)
                {
                }
            }
        }
    }
}

/// <summary>Seeds -- randomized tests take DAXFS_IT_SEED when set (to replay a failure), a fresh seed otherwise, and
/// print it.</summary>
internal static class Seeds
{
    public static int Pick(ITestOutputHelper output, string test)
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("DAXFS_IT_SEED"), out int s) ? s : RandomNumberGenerator.GetInt32(1, int.MaxValue);
        output.WriteLine($"{test}: seed {seed} (replay with DAXFS_IT_SEED={seed})");
        Console.WriteLine($"[daxfs-it] {test}: seed {seed} (replay with DAXFS_IT_SEED={seed})");
        return seed;
    }
}

/// <summary>TestVolume -- a small emulated-pmem volume on /dev/shm and a mount point, mounted in this process
/// (FuseMount + DaxVolumeFileSystem) or through the daxfs CLI daemon. Dispose always leaves no mount and no file
/// behind: in-process unmount, daxfs umount, then umount -l (and a FUSE abort) as the last resort.</summary>
internal sealed class TestVolume : IDisposable
{
    public const long DefaultSize = 512L << 20;

    private readonly ITestOutputHelper? _output;
    private DaxVolume? _volume;
    private FuseMount? _mount;
    private bool _cliMounted;

    public TestVolume(string name, ITestOutputHelper? output = null, long size = DefaultSize, bool create = true)
    {
        _output = output;
        string id = $"{Environment.ProcessId}-{name}-{Guid.NewGuid().ToString("N")[..8]}";
        Image = $"/dev/shm/daxfs-it-{id}.img";
        Root = Directory.CreateTempSubdirectory($"daxfs-it-{name}-").FullName;
        File.SetUnixFileMode(Root, (UnixFileMode)0x1ED);
        MountPoint = Path.Combine(Root, "mnt");
        Directory.CreateDirectory(MountPoint);
        _mountPoints.Add(MountPoint);
        Size = size;
        if (create)
        {
            using var v = DaxVolume.Create(Image, size, new PmemOpenOptions { EmulatePmem = true });
        }
    }

    /// <summary>The volume file on /dev/shm.</summary>
    public string Image { get; }

    /// <summary>A private temp directory (0755) holding the mount point; scratch space of the host side.</summary>
    public string Root { get; }

    /// <summary>Where the next mount goes (see <see cref="UseMountPoint"/>).</summary>
    public string MountPoint { get; private set; }

    private readonly List<string> _mountPoints = [];

    /// <summary>Switches to another mount point under <see cref="Root"/> (the old one is still cleaned up).</summary>
    public void UseMountPoint(string name)
    {
        MountPoint = Path.Combine(Root, name);
        Directory.CreateDirectory(MountPoint);
        _mountPoints.Add(MountPoint);
    }

    public long Size { get; }

    public DaxVolume? Volume => _volume;

    public FuseMount? FuseMount => _mount;

    /// <summary>The node layer of the in-process mount.</summary>
    public DaxVolumeFileSystem? FileSystem { get; private set; }

    /// <summary>A path under the mount point.</summary>
    public string M(string relative) => Path.Combine(MountPoint, relative);

    /// <summary>Mounts in this process.</summary>
    public void MountInProcess(bool allowOther = false, int threads = 4, FuseDataCaching caching = FuseDataCaching.Auto)
    {
        Assert.Null(_mount);
        _volume = DaxVolume.Open(Image, new PmemOpenOptions { EmulatePmem = true });
        FileSystem = new DaxVolumeFileSystem(_volume, caching);
        _mount = DaxFs.Fuse.FuseMount.Mount(MountPoint, FileSystem, new FuseMountOptions
        {
            FsName = Image, AllowOther = allowOther, Threads = threads, Log = new OutputWriter(_output),
        });
        Assert.True(Mounts.IsMounted(MountPoint), "the mount does not show in /proc/self/mounts");
    }

    /// <summary>Unmounts the in-process mount and closes the volume (checkpointed, lock released).</summary>
    public void UnmountInProcess()
    {
        Assert.NotNull(_mount);
        FuseMount m = _mount;
        _mount = null;
        Hard.Run(TimeSpan.FromSeconds(30), m.Unmount);
        Assert.Equal(0, m.UnexpectedExceptions);
        m.Dispose();
        _volume?.Dispose();
        _volume = null;
        Assert.False(Mounts.IsMounted(MountPoint), "still mounted after Unmount");
    }

    /// <summary>`daxfs mount IMAGE MOUNTPOINT` (the detached daemon).</summary>
    public void MountCli(params string[] extra)
    {
        _cliMounted = true;
        Proc.Result r = Cli.Run(["mount", Image, MountPoint, "--size", $"{Size >> 20}M", .. extra]);
        Assert.True(r.Exit == 0, r.Describe("daxfs mount") + "\n--- daemon log ---\n" + DaemonLog());
        Assert.True(Mounts.IsMounted(MountPoint), "daxfs mount returned 0 but nothing is mounted");
    }

    /// <summary>`daxfs umount MOUNTPOINT`; returns when the daemon has closed the volume.</summary>
    public void UnmountCli()
    {
        Proc.Result r = Cli.Run("umount", MountPoint);
        Assert.True(r.Exit == 0, r.Describe("daxfs umount") + "\n--- daemon log ---\n" + DaemonLog());
        _cliMounted = false;
        Assert.False(Mounts.IsMounted(MountPoint));
    }

    public string DaemonLog()
    {
        string log = Cli.MountLog(MountPoint);
        return File.Exists(log) ? File.ReadAllText(log) : "(no daemon log)";
    }

    /// <summary>The pid of the `daxfs mount` daemon serving this mount point (from /proc).</summary>
    public int DaemonPid()
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            try
            {
                string[] argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (argv.Contains("mount") && argv.Contains(MountPoint) && argv.Any(a => a.EndsWith("DaxFs.Cli.dll", StringComparison.Ordinal)) &&
                    File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains("DAXFS_MOUNT_DAEMON=1"))
                    return pid;
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        throw new InvalidOperationException($"no daxfs mount daemon for {MountPoint}\n{DaemonLog()}");
    }

    /// <summary>fsck of the (unmounted) image in this process; asserts it is clean.</summary>
    public FsckReport AssertFsckClean()
    {
        using var dev = PmemDevice.Open(Image, new PmemOpenOptions { EmulatePmem = true });
        FsckReport report = Fsck.Check(dev);
        Assert.True(report.Clean, $"fsck of {Image} found {report.Errors.Count} errors:\n" + string.Join('\n', report.Errors.Take(50)));
        return report;
    }

    public void Dispose()
    {
        try
        {
            if (_mount is not null)
            {
                FuseMount m = _mount;
                _mount = null;
                var t = Task.Run(m.Dispose);
                if (!t.Wait(TimeSpan.FromSeconds(30)))
                    _output?.WriteLine($"in-process unmount of {MountPoint} hung; forcing");
            }
            if (_cliMounted && Mounts.IsMounted(MountPoint))
            {
                try
                {
                    Proc.Result r = Cli.Run(TimeSpan.FromSeconds(60), "umount", MountPoint);
                    _output?.WriteLine($"cleanup: daxfs umount exited {r.Exit} after {r.Elapsed.TotalSeconds:0.0} s {r.Err.Trim()}");
                }
                catch (TimeoutException e)
                {
                    _output?.WriteLine($"cleanup: {e.Message}");
                }
            }
        }
        finally
        {
            if (_cliMounted)
                KillDaemonQuietly();
            foreach (string mp in _mountPoints)
            {
                if (Mounts.IsMounted(mp))
                {
                    _output?.WriteLine($"{mp} still mounted: umount -l");
                    Mounts.ForceDetach(mp);
                }
            }
            try
            {
                _volume?.Dispose();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                _output?.WriteLine($"closing the volume: {e.Message}");
            }
            _volume = null;
            DeleteQuietly();
        }
    }

    private void KillDaemonQuietly()
    {
        try
        {
            int pid = DaemonPid();
            Process.GetProcessById(pid).Kill();
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or System.ComponentModel.Win32Exception)
        {
        }
    }

    private void DeleteQuietly()
    {
        try
        {
            File.Delete(Image);
            foreach (string mp in _mountPoints)
                File.Delete(Cli.MountLog(mp));
            if (!_mountPoints.Any(Mounts.IsMounted))
                Directory.Delete(Root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _output?.WriteLine($"cleanup: {e.Message}");
        }
    }
}

/// <summary>Mount diagnostics into the test's output.</summary>
internal sealed class OutputWriter(ITestOutputHelper? output) : TextWriter
{
    private readonly StringBuilder _line = new();

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_line)
        {
            if (value != '\n')
            {
                _line.Append(value);
                return;
            }
            try
            {
                output?.WriteLine(_line.ToString());
            }
            catch (InvalidOperationException)
            {
                // the test has finished: nowhere to write
            }
            _line.Clear();
        }
    }
}
