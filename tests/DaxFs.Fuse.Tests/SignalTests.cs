using System.Diagnostics;

namespace DaxFs.Fuse.Tests;

/// <summary>A daemon in its own process (this assembly's Main): SIGTERM unmounts cleanly; SIGKILL leaves a
/// stale mount that the next mount on the same directory recovers.</summary>
[Collection("mount")]
public class SignalTests
{
    [Fact]
    public void SigtermUnmountsCleanly() => WithDaemon((daemon, dir) =>
    {
        File.WriteAllText(Path.Combine(dir, "f"), "served by the child");
        Assert.Equal("served by the child", File.ReadAllText(Path.Combine(dir, "f")));
        Assert.Equal(0, TestLibc.Kill(daemon.Id, TestLibc.SIGTERM));
        Assert.True(daemon.WaitForExit(20_000), "daemon did not exit after SIGTERM");
        Assert.Equal(0, daemon.ExitCode);
        Assert.Contains("unmounted destroy=1", daemon.StandardOutput.ReadToEnd(), StringComparison.Ordinal);
        Assert.False(MountHarness.IsMounted(dir));
    });

    [Fact]
    public void SigkillLeavesAMountThatTheNextMountRecovers() => WithDaemon((daemon, dir) =>
    {
        File.WriteAllText(Path.Combine(dir, "f"), "x");
        Assert.Equal(0, TestLibc.Kill(daemon.Id, TestLibc.SIGKILL));
        Assert.True(daemon.WaitForExit(20_000));
        Assert.True(MountHarness.IsMounted(dir)); // the kernel keeps the mount; its daemon is gone
        Assert.Equal(-1, TestLibc.Access(dir, 0));
        Assert.Equal(TestLibc.ENOTCONN, TestLibc.Errno);

        using var fs = new MemoryFileSystem();
        var log = new StringWriter();
        FuseMount? mount = null;
        try
        {
            MountHarness.WithTimeout(() =>
            {
                mount = FuseMount.Mount(dir, fs, new FuseMountOptions { Log = TextWriter.Synchronized(log) });
                Assert.Contains("daemon is gone", log.ToString(), StringComparison.Ordinal);
                File.WriteAllText(Path.Combine(dir, "g"), "recovered");
                Assert.Equal(["g"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName));
                Assert.Single(File.ReadLines("/proc/self/mounts"), l => l.Split(' ')[1] == dir);
                mount.Unmount();
            });
            Assert.False(MountHarness.IsMounted(dir));
        }
        finally
        {
            MountHarness.Cleanup(mount, dir);
        }
    });

    /// <summary>Starts the daemon on a fresh directory, waits until it has mounted, runs the test, and kills and
    /// unmounts whatever is left.</summary>
    private static void WithDaemon(Action<Process, string> body)
    {
        string dir = Directory.CreateTempSubdirectory("daxfs-fuse-daemon-").FullName;
        var start = new ProcessStartInfo(DotnetHost())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in new[] { typeof(SignalTests).Assembly.Location, "daemon", dir })
            start.ArgumentList.Add(argument);
        using var daemon = Process.Start(start)!;
        var stderr = daemon.StandardError.ReadToEndAsync();
        try
        {
            var ready = daemon.StandardOutput.ReadLineAsync();
            Assert.True(ready.Wait(TimeSpan.FromSeconds(30)), "daemon did not report its mount");
            Assert.True(ready.Result?.StartsWith("mounted ", StringComparison.Ordinal) == true,
                $"daemon said '{ready.Result}', stderr: {(daemon.HasExited ? stderr.Result : "")}");
            MountHarness.WithTimeout(() => body(daemon, dir));
        }
        finally
        {
            if (!daemon.HasExited)
                daemon.Kill();
            MountHarness.Cleanup(null, dir);
        }
    }

    private static string DotnetHost()
    {
        string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(host) && File.Exists(host))
            return host;
        string? self = Environment.ProcessPath;
        return self is not null && Path.GetFileName(self) == "dotnet" ? self : "dotnet";
    }
}
