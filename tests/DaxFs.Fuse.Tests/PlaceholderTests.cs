using Xunit;

namespace DaxFs.Fuse.Tests;

/// <summary>Replaced by the FUSE layer's tests.</summary>
public class PlaceholderTests
{
    [Fact]
    public void ProjectBuilds() => Assert.Equal(DaxFs.Errno.ENOENT, (DaxFs.Errno)2);
}
