using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>`daxfs mount -o data=inplace`: the mount says so, programs' overwrites land and survive a remount in the
/// default mode, a data mode it does not know is a usage error that mounts nothing.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class InPlaceMountTests(ITestOutputHelper output)
{
    [Fact]
    public void DataInPlaceMountServesOverwritesAndSaysSo() => Hard.Run(TimeSpan.FromSeconds(90), () =>
    {
        using var v = new TestVolume("inplace-cli", output);
        v.MountCli("-o", "data=inplace");
        Assert.Contains("data in place", v.DaemonLog(), StringComparison.Ordinal);
        string path = v.M("f");
        byte[] expect = new byte[1 << 20];
        new Random(1).NextBytes(expect);
        File.WriteAllBytes(path, expect);
        byte[] patch = new byte[4096];
        new Random(2).NextBytes(patch);
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            f.Position = 65536;
            f.Write(patch);
            f.Position = 100_000;
            f.Write(patch, 0, 100);
            f.Flush(flushToDisk: true);
        }
        patch.CopyTo(expect, 65536);
        Array.Copy(patch, 0, expect, 100_000, 100);
        Assert.Equal(expect, File.ReadAllBytes(path));
        v.UnmountCli();
        v.AssertFsckClean();

        v.UseMountPoint("again");
        v.MountCli();
        Assert.DoesNotContain("data in place", v.DaemonLog(), StringComparison.Ordinal);
        Assert.Equal(expect, File.ReadAllBytes(v.M("f")));
        v.UnmountCli();

        Proc.Result r = Cli.Run("mount", v.Image, v.MountPoint, "-o", "data=journal");
        Assert.Equal(2, r.Exit);
        Assert.Contains("unknown data mode 'journal'", r.Err, StringComparison.Ordinal);
        Assert.False(Mounts.IsMounted(v.MountPoint));
    });
}
