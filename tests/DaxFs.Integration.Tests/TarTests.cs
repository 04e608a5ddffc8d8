using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>tar round trip: an archive of a random tree written into the mount, extracted there, archived again from
/// the mount and extracted on the host; tar --compare and a byte/mode/link/time comparison agree at each step.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class TarTests(ITestOutputHelper output)
{
    [Fact]
    public void TarIntoAndOutOfTheMount() => Hard.Run(TimeSpan.FromSeconds(120), () =>
    {
        int seed = Seeds.Pick(output, nameof(TarIntoAndOutOfTheMount));
        using var v = new TestVolume("tar", output);
        string src = Path.Combine(v.Root, "src"), back = Path.Combine(v.Root, "back");
        Trees.Build(src, seed);
        Directory.CreateDirectory(back);
        v.MountInProcess();
        var t = TimeSpan.FromSeconds(60);

        // An archive file on the mount; tar --compare reads it back against the source.
        Proc.Ok(t, src, "tar", "--format=posix", "--numeric-owner", "-cf", v.M("tree.tar"), ".");
        Proc.Ok(t, src, "tar", "--numeric-owner", "-df", v.M("tree.tar"));
        // Extracted onto the mount (as root: modes, owners, times are restored).
        Directory.CreateDirectory(v.M("x"));
        Proc.Ok(t, v.M("x"), "tar", "--numeric-owner", "-xpf", v.M("tree.tar"));
        Trees.AssertEqual(src, v.M("x"), Trees.Check.All, $"tar x onto the mount (seed {seed})");
        // Archived again from the mount, extracted on the host.
        Proc.Ok(t, v.M("x"), "tar", "--format=posix", "--numeric-owner", "-cf", Path.Combine(v.Root, "out.tar"), ".");
        Proc.Ok(t, back, "tar", "--numeric-owner", "-xpf", Path.Combine(v.Root, "out.tar"));
        Trees.AssertEqual(src, back, Trees.Check.All, $"tar c from the mount, x on the host (seed {seed})");
        // A pipe straight from the mount to the host.
        Proc.Sh($"tar --format=posix -C '{v.M("x")}' -cf - . | tar -C '{back}' -df -", timeout: t);

        v.UnmountInProcess();
        v.AssertFsckClean();
    });
}
