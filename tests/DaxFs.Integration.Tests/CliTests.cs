using System.Text.Json;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>The daxfs command as a user runs it (a separate process): mkfs/info/fsck exit codes and JSON, the file
/// commands ls/cat/cp/stat on unmounted volumes (a tree copied in and out keeps bytes, modes, links and times, and
/// the kernel sees through a mount what the library wrote), errors as one line on stderr with exit 1 (2 for usage),
/// the "in use" refusal while mounted, and --help on every command.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class CliTests(ITestOutputHelper output)
{
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    /// <summary>Asserts a failure: the exit code, nothing on stdout, exactly one "daxfs: ..." line on stderr.</summary>
    private static string Fails(int exit, params string[] args)
    {
        Proc.Result r = Cli.Run(args);
        string what = "daxfs " + string.Join(' ', args);
        Assert.True(r.Exit == exit, r.Describe(what) + $"\nexpected exit {exit}");
        string[] lines = r.Err.TrimEnd('\n').Split('\n');
        if (exit == 1)
        {
            Assert.True(lines.Length == 1 && lines[0].StartsWith("daxfs: ", StringComparison.Ordinal), $"{what}: stderr is not one 'daxfs:' line:\n{r.Err}");
            Assert.True(r.Out.Length == 0, $"{what}: wrote to stdout on failure:\n{r.Out}");
        }
        else
        {
            Assert.StartsWith("daxfs: ", lines[0], StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        }
        return r.Err.Trim();
    }

    [Fact]
    public void MkfsInfoFsckExitCodesAndJson() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        using var v = new TestVolume("cli-vol", output, size: 64L << 20, create: false);
        Cli.Ok("mkfs", v.Image, "--size", "64M", "--emulate-pmem");
        Assert.Contains("already holds a DaxFS volume", Fails(1, "mkfs", v.Image, "--size", "64M"), StringComparison.Ordinal);
        Cli.Ok("mkfs", v.Image, "--force", "--inodes", "1000");
        Assert.Contains("--size", Fails(2, "mkfs", Path.Combine(v.Root, "missing.img")), StringComparison.Ordinal);
        Fails(2, "mkfs", Path.Combine(v.Root, "x.img"), "--size", "banana");
        Fails(2, "mkfs");
        Fails(2, "info", v.Image, "--no-such-option");

        JsonElement info = Json(Cli.Ok("info", v.Image, "--json"));
        Assert.Equal(64L << 20, info.GetProperty("device_bytes").GetInt64());
        Assert.Equal(1000, info.GetProperty("inodes").GetInt64());
        Assert.Equal(1, info.GetProperty("inodes_used").GetInt64());
        Assert.Equal(0, info.GetProperty("problems").GetInt32());
        Assert.Contains("inodes", Cli.Ok("info", v.Image), StringComparison.Ordinal);

        Assert.Contains("clean", Cli.Ok("fsck", v.Image), StringComparison.Ordinal);
        Assert.True(Json(Cli.Ok("fsck", v.Image, "--json")).GetProperty("clean").GetBoolean());

        // A damaged backup superblock: fsck exits 1 and says so (also in JSON), --repair fixes it, then exit 0.
        using (var f = new FileStream(v.Image, FileMode.Open, FileAccess.Write))
        {
            f.Position = (64L << 20) - 4096;
            f.Write("this is not a superblock"u8);
        }
        Proc.Result bad = Cli.Run("fsck", v.Image, "--json");
        Assert.True(bad.Exit == 1, bad.Describe("fsck of a damaged volume"));
        JsonElement report = Json(bad.Out);
        Assert.False(report.GetProperty("clean").GetBoolean());
        Assert.Contains("superblock", report.GetProperty("errors")[0].GetString(), StringComparison.Ordinal);
        Cli.Ok("fsck", v.Image, "--repair");
        Cli.Ok("fsck", v.Image);

        // Not a volume at all; a missing file.
        string junk = Path.Combine(v.Root, "junk.img");
        byte[] noise = new byte[4 << 20];
        new Random(1).NextBytes(noise);
        File.WriteAllBytes(junk, noise);
        Fails(1, "info", junk);
        Fails(1, "fsck", junk);
        Fails(1, "info", Path.Combine(v.Root, "nothing.img"));
        Fails(1, "ls", junk);
    });

    [Fact]
    public void FileCommandsCopyAndShowAnUnmountedVolume() => Hard.Run(TimeSpan.FromSeconds(150), () =>
    {
        int seed = Seeds.Pick(output, nameof(FileCommandsCopyAndShowAnUnmountedVolume));
        using var v = new TestVolume("cli-files", output);
        string src = Path.Combine(v.Root, "src"), back = Path.Combine(v.Root, "back");
        Trees.Build(src, seed, dirs: 4, maxFileBytes: 1 << 20);

        // Into the volume and out again; the copy keeps bytes, modes, symbolic links and times (not hard links).
        Cli.Ok("cp", "-r", src, $"{v.Image}:/");
        Cli.Ok("cp", "-r", $"{v.Image}:/src", back);
        const Trees.Check check = Trees.Check.Times | Trees.Check.SymlinkTimes | Trees.Check.DirTimes;
        Trees.AssertEqual(src, back, check, $"daxfs cp -r in and out (seed {seed})");
        // The kernel, through a mount, sees what the library wrote.
        v.MountInProcess();
        Trees.AssertEqual(src, v.M("src"), check, $"daxfs cp -r, seen through a mount (seed {seed})");

        // While mounted the volume is refused in one line that names the mount point.
        string inUse = Fails(1, "ls", v.Image);
        Assert.Contains("in use", inUse, StringComparison.Ordinal);
        Assert.Contains(v.MountPoint, inUse, StringComparison.Ordinal);
        Fails(1, "cp", src, $"{v.Image}:/again", "-r");
        // Files written through the mount for ls/stat/cat to find.
        File.WriteAllText(v.M("hello.txt"), "hello from the mount\n");
        File.SetUnixFileMode(v.M("hello.txt"), (UnixFileMode)0x1E4);
        Assert.Equal(0, Libc.Utimens(v.M("hello.txt"), (1_000_000_000, 5), (1_234_567_890, 123_456_789)));
        File.CreateSymbolicLink(v.M("link"), "hello.txt");
        Directory.CreateDirectory(v.M("dir/sub"));
        v.UnmountInProcess();

        Assert.Equal(["dir", "hello.txt", "link", "src"], Cli.Ok("ls", v.Image).TrimEnd('\n').Split('\n'));
        Assert.Equal(["sub"], Cli.Ok("ls", $"{v.Image}:/dir").TrimEnd('\n').Split('\n'));
        string[] longLines = Cli.Ok("ls", "-l", $"{v.Image}:/").TrimEnd('\n').Split('\n');
        Assert.Contains(longLines, l => l.StartsWith("-rwxr--r--", StringComparison.Ordinal) && l.EndsWith(" hello.txt", StringComparison.Ordinal));
        Assert.Contains(longLines, l => l.StartsWith("lrwxrwxrwx", StringComparison.Ordinal) && l.EndsWith(" link -> hello.txt", StringComparison.Ordinal));
        Assert.Contains(longLines, l => l.StartsWith("drwxr-xr-x", StringComparison.Ordinal) && l.EndsWith(" dir", StringComparison.Ordinal));

        JsonElement list = Json(Cli.Ok("ls", $"{v.Image}:/", "--json"));
        Assert.Equal(4, list.GetArrayLength());
        JsonElement hello = list.EnumerateArray().Single(e => e.GetProperty("name").GetString() == "hello.txt");
        Assert.Equal("file", hello.GetProperty("type").GetString());
        Assert.Equal(0x1E4, hello.GetProperty("mode").GetInt32());
        Assert.Equal(21, hello.GetProperty("size").GetInt64());
        Assert.Equal(1_234_567_890_123_456_789, hello.GetProperty("mtime_ns").GetInt64());

        JsonElement stat = Json(Cli.Ok("stat", $"{v.Image}:/hello.txt", "--json"));
        Assert.Equal("0744", stat.GetProperty("mode_octal").GetString());
        Assert.Equal(1, stat.GetProperty("nlink").GetInt32());
        Assert.Equal(1_000_000_000_000_000_005, stat.GetProperty("atime_ns").GetInt64());
        Assert.Equal("hello.txt", Json(Cli.Ok("stat", $"{v.Image}:/link", "--json")).GetProperty("target").GetString());
        Assert.Contains("Size: 21", Cli.Ok("stat", $"{v.Image}:/hello.txt"), StringComparison.Ordinal);

        Assert.Equal("hello from the mount\n", Cli.Ok("cat", $"{v.Image}:/hello.txt"));
        Assert.Equal("hello from the mount\n", Cli.Ok("cat", $"{v.Image}:/link"));
        // cat is byte-exact: a binary file through a shell redirect.
        string bin = Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories).Where(p => !Libc.LStat(p).IsSymlink)
            .OrderByDescending(p => new FileInfo(p).Length).First();
        string rel = Path.GetRelativePath(src, bin);
        string catOut = Path.Combine(v.Root, "cat.out");
        Proc.Sh($"dotnet '{Cli.Dll}' cat '{v.Image}:/src/{rel}' > '{catOut}'");
        Assert.True(File.ReadAllBytes(bin).AsSpan().SequenceEqual(File.ReadAllBytes(catOut)), $"cat of {rel} is not byte-exact");

        // A single file out to an existing directory keeps its name; a file over an existing file replaces it.
        string outDir = Path.Combine(v.Root, "single");
        Directory.CreateDirectory(outDir);
        Cli.Ok("cp", $"{v.Image}:/hello.txt", outDir);
        Assert.Equal("hello from the mount\n", File.ReadAllText(Path.Combine(outDir, "hello.txt")));
        Assert.Equal(0x1E4, (int)Libc.LStat(Path.Combine(outDir, "hello.txt")).Perm);
        File.WriteAllText(Path.Combine(v.Root, "other.txt"), "replaced");
        Cli.Ok("cp", Path.Combine(v.Root, "other.txt"), $"{v.Image}:/hello.txt");
        Assert.Equal("replaced", Cli.Ok("cat", $"{v.Image}:/hello.txt"));
        // Within one volume.
        Cli.Ok("cp", "-r", $"{v.Image}:/dir", $"{v.Image}:/dir-copy");
        Assert.Equal(["sub"], Cli.Ok("ls", $"{v.Image}:/dir-copy").TrimEnd('\n').Split('\n'));

        // Errors: one line, exit 1; usage: exit 2.
        Assert.Contains("No such file or directory", Fails(1, "cat", $"{v.Image}:/missing"), StringComparison.Ordinal);
        Assert.Contains("Is a directory", Fails(1, "cat", $"{v.Image}:/dir"), StringComparison.Ordinal);
        Assert.Contains("No such file or directory", Fails(1, "stat", $"{v.Image}:/dir/missing"), StringComparison.Ordinal);
        Assert.Contains("No such file or directory", Fails(1, "ls", $"{v.Image}:/missing"), StringComparison.Ordinal);
        Assert.Contains("-r", Fails(1, "cp", src, $"{v.Image}:/x"), StringComparison.Ordinal);
        Fails(1, "cp", $"{v.Image}:/missing", back);
        Fails(1, "cp", "-r", $"{v.Image}:/dir", $"{v.Image}:/dir/sub/inside");
        Assert.Contains("volume", Fails(2, "cp", src, back), StringComparison.Ordinal);
        Fails(2, "cat", v.Image);
        Fails(2, "cat");
        Fails(2, "ls");
        Fails(2, "stat", $"{v.Image}:/hello.txt", "--bogus");
        Fails(1, "cat", Path.Combine(v.Root, "nothing.img") + ":/x");
        v.AssertFsckClean();
    });

    /// <summary>On a terminal (a pty from script(1)) cp draws a Spectre.Console progress bar; the delay before it is
    /// shown is set to 0 so that the bar must appear however fast the machine copies.</summary>
    [Fact]
    public void CpDrawsAProgressBarOnATerminal() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        using var v = new TestVolume("cli-pty", output, size: 256L << 20);
        string src = Path.Combine(v.Root, "src.bin");
        byte[] data = new byte[64 << 20];
        new Random(11).NextBytes(data);
        File.WriteAllBytes(src, data);
        Proc.Result r = Proc.Run("script", ["-qec", $"dotnet '{Cli.Dll}' cp '{src}' '{v.Image}:/copied.bin'", "/dev/null"], TimeSpan.FromSeconds(90),
            env: new Dictionary<string, string> { ["DAXFS_PROGRESS_AFTER_MS"] = "0", ["TERM"] = "xterm-256color", ["COLUMNS"] = "120" });
        output.WriteLine(r.Out);
        Assert.True(r.Exit == 0, r.Describe("script -qec 'daxfs cp ...'"));
        Assert.Contains("\u2501", r.Out, StringComparison.Ordinal); // the bar's segments
        Assert.Matches(@"\d+%", r.Out);
        Assert.Contains("daxfs cp: copied 1 file, 64.0 MiB in", r.Out, StringComparison.Ordinal);
        Assert.Contains("\"size\": 67108864", Cli.Ok("stat", $"{v.Image}:/copied.bin", "--json"), StringComparison.Ordinal);
        Assert.Equal(data, File.ReadAllBytes(CopyOut(v, "/copied.bin")));
    });

    [Fact]
    public void MkfsAndFsckDrawAProgressBarOnATerminal() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        string image = $"/dev/shm/daxfs-it-pty-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}.img";
        try
        {
            var env = new Dictionary<string, string> { ["TERM"] = "xterm-256color", ["COLUMNS"] = "120" };
            foreach (string command in new[] { $"mkfs '{image}' --size 2G --emulate-pmem", $"fsck '{image}'" })
            {
                Proc.Result r = Proc.Run("script", ["-qec", $"dotnet '{Cli.Dll}' {command}", "/dev/null"], TimeSpan.FromSeconds(90), env: env);
                output.WriteLine(r.Out);
                Assert.True(r.Exit == 0, r.Describe($"script -qec 'daxfs {command}'"));
                Assert.Contains("\u2501", r.Out, StringComparison.Ordinal); // the bar's segments
                Assert.Matches(@"\d+%", r.Out);
            }
        }
        finally
        {
            File.Delete(image);
        }
    });

    private static string CopyOut(TestVolume v, string path)
    {
        string back = Path.Combine(v.Root, "back.bin");
        Cli.Ok("cp", $"{v.Image}:{path}", back);
        return back;
    }

    [Fact]
    public void CpShowsProgressForLongCopies() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        using var v = new TestVolume("cli-progress", output, size: 1280L << 20);
        string big = v.Image + ".big.bin"; // on /dev/shm too: the copy, not a disk, is what takes the time
        try
        {
            CopyBig(v, big);
        }
        finally
        {
            File.Delete(big);
        }
    });

    private void CopyBig(TestVolume v, string big)
    {
        using (var f = new FileStream(big, FileMode.Create))
        {
            byte[] chunk = new byte[1 << 20];
            new Random(3).NextBytes(chunk);
            for (int i = 0; i < 1024; i++)
            {
                BitConverter.TryWriteBytes(chunk, i);
                f.Write(chunk);
            }
        }
        Proc.Result r = Cli.Run(TimeSpan.FromSeconds(90), "cp", big, $"{v.Image}:/big.bin");
        Assert.True(r.Exit == 0, r.Describe("daxfs cp"));
        output.WriteLine($"cp of 1 GiB took {r.Elapsed.TotalSeconds:0.0} s; stderr:\n{r.Err}");
        if (r.Elapsed > TimeSpan.FromSeconds(2.5))
        {
            // Not a terminal: plain lines on stderr, then a summary; stdout stays empty.
            Assert.Matches(@"daxfs cp: \d.* of 1\.0 GiB \(\d+%\)", r.Err);
            Assert.Contains("daxfs cp: copied 1 file, 1.0 GiB in", r.Err, StringComparison.Ordinal);
        }
        Assert.Equal("", r.Out);
        string back = big + ".back";
        try
        {
            Cli.Ok("cp", $"{v.Image}:/big.bin", back);
            Assert.Equal(new FileInfo(big).Length, new FileInfo(back).Length);
            Proc.Ok("cmp", big, back);
        }
        finally
        {
            File.Delete(back);
        }
    }

    [Fact]
    public void EveryCommandHasHelp() => Hard.Run(TimeSpan.FromSeconds(90), () =>
    {
        foreach (string[] cmd in new[]
        {
            new[] { "ls" }, ["cat"], ["cp"], ["stat"], ["mkfs"], ["info"], ["fsck"], ["mount"], ["umount"], ["bench"], ["bench", "fuse"],
        })
        {
            Proc.Result r = Cli.Run([.. cmd, "--help"]);
            Assert.True(r.Exit == 0, r.Describe("daxfs " + string.Join(' ', cmd) + " --help"));
            Assert.Contains("Usage:", r.Out, StringComparison.Ordinal);
            Assert.Contains("daxfs " + string.Join(' ', cmd), r.Out, StringComparison.Ordinal);
        }
    });
}
