using System.Diagnostics;

namespace DaxFs.Fuse.Tests;

/// <summary>The real-mount tests share the kernel: they run one at a time.</summary>
[CollectionDefinition("mount", DisableParallelization = true)]
public sealed class MountCollection;

/// <summary>MountHarness -- runs a test body against a real mount on a fresh temp directory with a time limit,
/// and always leaves no mount behind: Unmount, then "umount -l" as a last resort.</summary>
internal static class MountHarness
{
    public static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Mounts a MemoryFileSystem, runs <paramref name="body"/> (limited to 60 s), cleans up.</summary>
    public static void Run(Action<FuseMount, MemoryFileSystem, string> body, FuseMountOptions? options = null)
    {
        string dir = Directory.CreateTempSubdirectory("daxfs-fuse-").FullName;
        using var fs = new MemoryFileSystem();
        FuseMount? mount = null;
        try
        {
            WithTimeout(() =>
            {
                mount = FuseMount.Mount(dir, fs, options ?? new FuseMountOptions { Log = TestLog.Writer });
                body(mount, fs, dir);
            });
        }
        finally
        {
            Cleanup(mount, dir);
        }
    }

    /// <summary>Runs <paramref name="action"/> on another thread; fails the test if it takes over 60 s.</summary>
    public static void WithTimeout(Action action, TimeSpan? timeout = null)
    {
        var task = Task.Factory.StartNew(action, TaskCreationOptions.LongRunning);
        if (!task.Wait(timeout ?? TestTimeout) && !task.IsCompleted)
            throw new TimeoutException($"mount test body did not finish within {(timeout ?? TestTimeout).TotalSeconds} s");
        task.GetAwaiter().GetResult(); // rethrows the body's own exception unwrapped
    }

    public static void Cleanup(FuseMount? mount, string dir)
    {
        try
        {
            if (mount is not null)
                WithTimeout(mount.Unmount, TimeSpan.FromSeconds(20));
        }
        finally
        {
            if (IsMounted(dir))
                Run("umount", "-l", dir); // last resort: never leave a mount behind
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>True if <paramref name="dir"/> appears as a mount point in /proc/self/mounts.</summary>
    public static bool IsMounted(string dir) =>
        File.ReadLines("/proc/self/mounts").Any(l => l.Split(' ')[1] == dir);

    public static string MountLine(string dir) =>
        File.ReadLines("/proc/self/mounts").Single(l => l.Split(' ')[1] == dir);

    /// <summary>Runs a command; returns exit code, stdout and stderr.</summary>
    public static (int Exit, string Out, string Err) Run(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(30_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs a command and asserts it succeeded; returns its stdout.</summary>
    public static string Sh(string file, params string[] arguments)
    {
        var (exit, output, error) = Run(file, arguments);
        Assert.True(exit == 0, $"{file} {string.Join(' ', arguments)} exited {exit}: {error}");
        return output;
    }
}

/// <summary>TestLog -- where mount diagnostics go during tests (kept for failure messages).</summary>
internal static class TestLog
{
    private static readonly StringWriter Buffer = new();

    public static TextWriter Writer { get; } = TextWriter.Synchronized(Buffer);

    public static string Text
    {
        get
        {
            lock (Writer)
                return Buffer.ToString();
        }
    }
}
