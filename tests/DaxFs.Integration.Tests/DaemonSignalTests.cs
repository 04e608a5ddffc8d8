using System.Diagnostics;
using System.Text.Json;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>The `daxfs mount` daemon and signals. SIGKILL while a writer is busy leaves a stale mount and a volume
/// that the next `daxfs mount` takes over and recovers: every file written and fsync'ed before the kill is intact,
/// each file of the interrupted writer holds what it wrote (or nothing, for the last), and fsck is clean after the
/// remount's unmount. SIGTERM unmounts cleanly: the daemon exits, the volume has nothing to replay, fsck is clean and
/// the data is there.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class DaemonSignalTests(ITestOutputHelper output)
{
    private static void WaitForExit(int pid, TimeSpan limit)
    {
        var sw = Stopwatch.StartNew();
        while (Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal))
        {
            Assert.True(sw.Elapsed < limit, $"process {pid} still runs after {limit.TotalSeconds} s");
            Thread.Sleep(50);
        }
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    /// <summary>Mounts through the daemon, writes and fsyncs files, starts a writer, SIGKILLs the daemon. Returns the
    /// fsync'ed files and their contents.</summary>
    private Dictionary<string, byte[]> WriteThenKill(TestVolume v, int seed)
    {
        var rng = new Random(seed);
        v.MountCli();
        var files = new Dictionary<string, byte[]>();
        Directory.CreateDirectory(v.M("durable"));
        for (int i = 0; i < 24; i++)
        {
            byte[] data = new byte[rng.Next(1, 300_000)];
            rng.NextBytes(data);
            using (var fs = new FileStream(v.M($"durable/f{i}"), FileMode.CreateNew))
            {
                fs.Write(data);
                fs.Flush(flushToDisk: true);
            }
            files[$"durable/f{i}"] = data;
        }
        File.Move(v.M("durable/f0"), v.M("durable/renamed"));
        files["durable/renamed"] = files["durable/f0"];
        files.Remove("durable/f0");
        Directory.CreateDirectory(v.M("bg"));
        int dirFd = Libc.Open(v.M("durable"), Libc.O_RDONLY | Libc.O_DIRECTORY);
        Assert.True(dirFd >= 0, Libc.Name(dirFd));
        Assert.Equal(0, Libc.FSync(dirFd));
        Libc.Close(dirFd);

        // A writer that keeps creating files until the mount goes away under it.
        var writer = Process.Start(new ProcessStartInfo("sh", ["-c", "i=0; while [ $i -lt 1000000 ]; do echo $i > bg/f$i || exit 0; i=$((i+1)); done"])
        {
            WorkingDirectory = v.MountPoint, UseShellExecute = false, RedirectStandardError = true,
        })!;
        try
        {
            Thread.Sleep(700);
            int pid = v.DaemonPid();
            output.WriteLine($"SIGKILL to daemon {pid}");
            Assert.Equal(0, Libc.Kill(pid, Libc.SIGKILL));
            WaitForExit(pid, TimeSpan.FromSeconds(20));
            Assert.True(writer.WaitForExit(20_000), "the writer did not notice the dead mount");
        }
        finally
        {
            if (!writer.HasExited)
                writer.Kill();
            writer.Dispose();
        }
        Assert.True(Mounts.IsMounted(v.MountPoint), "a killed daemon leaves its (stale) mount behind");
        Assert.Equal("ENOTCONN", Libc.Stat(v.M("durable"), out _) == -107 ? "ENOTCONN" : Libc.Name(Libc.Stat(v.M("durable"), out _)));
        output.WriteLine("info before the remount: " + Cli.Ok("info", v.Image, "--json").ReplaceLineEndings(" "));
        return files;
    }

    /// <summary>After the remount: the fsync'ed files are intact, the interrupted writer's files hold what it wrote,
    /// the volume takes new writes; then daxfs umount and a clean daxfs fsck.</summary>
    private void CheckRecovered(TestVolume v, Dictionary<string, byte[]> files, int seed)
    {
        output.WriteLine(v.DaemonLog());
        foreach (var (path, data) in files)
            Assert.True(File.ReadAllBytes(v.M(path)).AsSpan().SequenceEqual(data), $"{path}: fsync'ed data lost or changed (seed {seed})");
        Assert.False(File.Exists(v.M("durable/f0")));
        var bg = Directory.GetFiles(v.M("bg"));
        output.WriteLine($"{bg.Length} files of the interrupted writer survived");
        Assert.NotEmpty(bg);
        int empty = 0;
        foreach (string f in bg)
        {
            string text = File.ReadAllText(f);
            if (text.Length == 0)
                empty++;
            else
                Assert.Equal(Path.GetFileName(f)[1..] + "\n", text);
        }
        Assert.True(empty <= 1, $"{empty} empty files: only the one being written at the kill may be empty");
        File.WriteAllText(v.M("after"), "after recovery");
        v.UnmountCli();
        Proc.Result fsck = Cli.Run("fsck", v.Image, "--json");
        Assert.True(fsck.Exit == 0, fsck.Describe("daxfs fsck"));
        Assert.True(Json(fsck.Out).GetProperty("clean").GetBoolean());
        Assert.Equal("after recovery", Cli.Ok("cat", $"{v.Image}:/after"));
    }

    [Fact]
    public void SigkillLeavesAVolumeTheNextMountRecovers() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        int seed = Seeds.Pick(output, nameof(SigkillLeavesAVolumeTheNextMountRecovers));
        using var v = new TestVolume("kill", output, create: false);
        var files = WriteThenKill(v, seed);
        // The next mount of the volume, on another mount point (the stale one is left as it is).
        v.UseMountPoint("mnt2");
        v.MountCli();
        CheckRecovered(v, files, seed);
    });

    [Fact]
    public void NextMountOnTheKilledDaemonsMountPointRecovers() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        int seed = Seeds.Pick(output, nameof(NextMountOnTheKilledDaemonsMountPointRecovers));
        using var v = new TestVolume("kill2", output, create: false);
        var files = WriteThenKill(v, seed);
        // The same mount point: daxfs mount has to detach the stale mount (ENOTCONN) and serve in its place.
        v.MountCli();
        Assert.True(Libc.Stat(v.MountPoint, out _) == 0, $"the mount point still answers {Libc.Name(Libc.Stat(v.MountPoint, out _))} after daxfs mount " +
            $"returned 0 (BUGS.md IT-6)\n--- daemon log ---\n{v.DaemonLog()}");
        // A live mount is not taken over: a second mount on it is refused with one line, and the first keeps serving.
        Proc.Result again = Cli.Run("mount", v.Image, v.MountPoint);
        Assert.True(again.Exit == 1 && again.Err.Trim().Split('\n').Length == 1 && again.Err.Contains("already mounted", StringComparison.Ordinal),
            again.Describe("a second daxfs mount on a live mount point"));
        Assert.True(Libc.Stat(v.M("durable"), out _) == 0, "the first mount stopped serving after the refused second one");
        CheckRecovered(v, files, seed);
    });

    [Fact]
    public void SigtermUnmountsCleanly() => Hard.Run(TimeSpan.FromSeconds(90), () =>
    {
        using var v = new TestVolume("term", output, create: false);
        v.MountCli();
        File.WriteAllText(v.M("file"), "written before SIGTERM\n");
        Directory.CreateDirectory(v.M("dir"));
        int pid = v.DaemonPid();
        Assert.Equal(0, Libc.Kill(pid, Libc.SIGTERM));
        WaitForExit(pid, TimeSpan.FromSeconds(30));
        Assert.False(Mounts.IsMounted(v.MountPoint), "SIGTERM did not unmount");
        string log = v.DaemonLog();
        output.WriteLine(log);
        Assert.Contains("closed cleanly", log, StringComparison.Ordinal);
        JsonElement info = Json(Cli.Ok("info", v.Image, "--json"));
        Assert.Equal(0, info.GetProperty("pending_transactions").GetInt32());
        Assert.Equal(0, info.GetProperty("problems").GetInt32());
        Proc.Result fsck = Cli.Run("fsck", v.Image);
        Assert.True(fsck.Exit == 0, fsck.Describe("daxfs fsck"));
        Assert.Equal("written before SIGTERM\n", Cli.Ok("cat", $"{v.Image}:/file"));
        Assert.Contains("dir", Cli.Ok("ls", v.Image).Split('\n'));
    });
}
