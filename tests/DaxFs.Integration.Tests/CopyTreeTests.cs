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

        Proc.Ok(TimeSpan.FromSeconds(60), null, "cp", "-a", src, v.M("tree"));
        Trees.AssertEqual(src, v.M("tree"), Trees.Check.All, $"cp -a into the mount (seed {seed})");
        var diff = Proc.Run("diff", ["-r", "--no-dereference", src, v.M("tree")], TimeSpan.FromSeconds(60));
        Assert.True(diff.Exit == 0, diff.Describe("diff -r"));

        Proc.Ok(TimeSpan.FromSeconds(60), null, "cp", "-a", v.M("tree"), back);
        Trees.AssertEqual(src, back, Trees.Check.All, $"cp -a out of the mount (seed {seed})");

        v.UnmountInProcess();
        v.AssertFsckClean();
        v.MountInProcess();
        Trees.AssertEqual(src, v.M("tree"), Trees.Check.All, $"after a remount (seed {seed})");
        Proc.Ok("rm", "-rf", v.M("tree"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(v.MountPoint));
        v.UnmountInProcess();
        v.AssertFsckClean();
    });
}
