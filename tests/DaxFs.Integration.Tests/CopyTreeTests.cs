using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>cp -a of a random tree into the mount and back out: bytes, modes, owners, symbolic links, hard links and
/// nanosecond times survive both ways, diff -r agrees, and the tree is the same after a remount (fsck clean).</summary>
[Collection(IntegrationCollection.Name)]
public sealed class CopyTreeTests(ITestOutputHelper output)
{
    [Fact]
    public void CpArchiveRoundTripKeepsEverything() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        int seed = Seeds.Pick(output, nameof(CpArchiveRoundTripKeepsEverything));
        using var v = new TestVolume("cp", output);
        string src = Path.Combine(v.Root, "src"), back = Path.Combine(v.Root, "back");
        long bytes = Trees.Build(src, seed);
        output.WriteLine($"tree of {bytes} bytes");
        v.MountInProcess();

        // Every phase runs and every difference is listed before the test fails.
        var problems = new List<string>();
        void Compare(string phase, string actual) =>
            problems.AddRange(Trees.Diff(src, actual, Trees.Check.All).Select(d => $"{phase}: {d}"));

        Proc.Ok(TimeSpan.FromSeconds(60), null, "cp", "-a", src, v.M("tree"));
        Compare("cp -a into the mount", v.M("tree"));
        var diff = Proc.Run("diff", ["-r", "--no-dereference", src, v.M("tree")], TimeSpan.FromSeconds(60));
        if (diff.Exit != 0)
            problems.Add(diff.Describe("diff -r"));

        Proc.Ok(TimeSpan.FromSeconds(60), null, "cp", "-a", v.M("tree"), back);
        Compare("cp -a out of the mount", back);

        v.UnmountInProcess();
        v.AssertFsckClean();
        v.MountInProcess();
        Compare("after a remount", v.M("tree"));
        Proc.Ok("rm", "-rf", v.M("tree"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(v.MountPoint));
        v.UnmountInProcess();
        v.AssertFsckClean();
        Assert.True(problems.Count == 0, $"seed {seed}: {problems.Count} differences from the source tree:\n  " + string.Join("\n  ", problems.Take(80)));
    });
}
