using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>stress-ng's file system stressors on the mount, 2 workers for 5 s each (with --verify where a stressor
/// checks its data): exit 0, a "successful run" line, nothing failed or skipped, no unexpected exception in the
/// FUSE layer, and a clean volume fsck afterwards.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class StressNgTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("hdd")]
    [InlineData("dir")]
    [InlineData("dentry")]
    [InlineData("link")]
    [InlineData("symlink")]
    [InlineData("rename")]
    [InlineData("chmod")]
    [InlineData("fallocate")]
    [InlineData("xattr")]
    [InlineData("seek")]
    [InlineData("readahead")]
    public void Stressor(string stressor) => Hard.Run(TimeSpan.FromSeconds(90), () =>
    {
        using var v = new TestVolume("sng-" + stressor, output);
        v.MountInProcess();
        string dir = v.M("stress");
        Directory.CreateDirectory(dir);
        Proc.Result r = Proc.Run("stress-ng", [$"--{stressor}", "2", "--timeout", "5s", "--temp-path", dir, "--metrics-brief", "--verify"],
            TimeSpan.FromSeconds(60));
        string all = r.Out + r.Err;
        output.WriteLine(all);
        Assert.True(r.Exit == 0, r.Describe($"stress-ng --{stressor}"));
        Assert.Contains("successful run completed", all, StringComparison.Ordinal);
        Assert.DoesNotContain("fail", all, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("skipped", all, StringComparison.OrdinalIgnoreCase);
        v.UnmountInProcess();
        v.AssertFsckClean();
    });
}
