using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>git on the mount: init, add, two commits (text, binary, executable, symbolic link, subdirectory),
/// git fsck --strict clean, git gc (packs, renames, fsyncs) and fsck again; after an unmount, a clean volume fsck
/// and a remount, git log shows both commits with the same ids and the work tree is clean.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class GitTests(ITestOutputHelper output)
{
    [Fact]
    public void CommitsSurviveARemount() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        using var v = new TestVolume("git", output);
        v.MountInProcess();
        string repo = v.M("repo");
        Directory.CreateDirectory(repo);
        string home = Path.Combine(v.Root, "home");
        Directory.CreateDirectory(home);
        string Git(params string[] args)
        {
            Proc.Result r = Proc.Run("git", new[] { "-c", "user.name=DaxFS IT", "-c", "user.email=it@daxfs.dev", "-c", "core.fsync=all",
                "-c", "init.defaultBranch=main" }.Concat(args), TimeSpan.FromSeconds(60), repo,
                new Dictionary<string, string> { ["HOME"] = home, ["GIT_CONFIG_NOSYSTEM"] = "1", ["LC_ALL"] = "C" });
            Assert.True(r.Exit == 0, r.Describe("git " + string.Join(' ', args)));
            return r.Out.Trim();
        }

        Git("init", "-q");
        File.WriteAllText(Path.Combine(repo, "README"), "DaxFS integration test\n");
        Directory.CreateDirectory(Path.Combine(repo, "src"));
        File.WriteAllText(Path.Combine(repo, "src", "main.c"), "int main(void) { return 0; }\n");
        byte[] blob = new byte[200_000];
        new Random(5).NextBytes(blob);
        File.WriteAllBytes(Path.Combine(repo, "src", "data.bin"), blob);
        File.WriteAllText(Path.Combine(repo, "run.sh"), "#!/bin/sh\necho hi\n");
        Assert.Equal(0, Libc.Chmod(Path.Combine(repo, "run.sh"), 0x1ED));
        File.CreateSymbolicLink(Path.Combine(repo, "link"), "src/main.c");
        Git("add", "-A");
        Git("commit", "-q", "-m", "first commit");
        File.AppendAllText(Path.Combine(repo, "README"), "second line\n");
        File.Delete(Path.Combine(repo, "src", "data.bin"));
        Git("add", "-A");
        Git("commit", "-q", "-m", "second commit");
        Assert.Equal("", Git("fsck", "--full", "--strict", "--no-progress"));
        string log = Git("log", "--format=%H %s");
        output.WriteLine(log);
        Assert.Equal(2, log.Split('\n').Length);
        Git("gc", "--quiet");
        Assert.Equal("", Git("fsck", "--full", "--strict", "--no-progress"));
        Assert.Equal(log, Git("log", "--format=%H %s"));

        v.UnmountInProcess();
        v.AssertFsckClean();
        v.MountInProcess();
        Assert.Equal(log, Git("log", "--format=%H %s"));
        Assert.Equal("", Git("status", "--porcelain"));
        Assert.Equal("", Git("fsck", "--full", "--strict", "--no-progress"));
        Assert.Equal("100755", Git("ls-files", "-s", "run.sh").Split(' ')[0]);
        Assert.Equal("120000", Git("ls-files", "-s", "link").Split(' ')[0]);
        v.UnmountInProcess();
    });
}
