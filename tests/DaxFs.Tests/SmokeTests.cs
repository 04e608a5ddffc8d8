using System.Text;
using DaxFs.Check;
using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests;

/// <summary>End-to-end basics: files, directories, links, xattrs, remount, fsck clean.</summary>
public class SmokeTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BasicOperationsSurviveRemountAndFsckIsClean(bool pmem)
    {
        var (dev, v) = TestVolumes.Fresh(emulatePmem: pmem);
        using (dev)
        {
            v.CreateDirectory("/a");
            using (var f = v.CreateFile("/a/hello.txt"))
            {
                f.Write(0, "hello world"u8);
                f.Write(6, "WORLD, and more"u8);
                var big = new byte[5 << 20];
                new Random(1).NextBytes(big);
                f.Write(1000, big);
                var back = new byte[big.Length];
                Assert.Equal(big.Length, f.Read(1000, back));
                Assert.True(back.AsSpan().SequenceEqual(big));
                f.SetLength(3000);
                f.SetLength(10000);
                var buf = new byte[100];
                Assert.Equal(100, f.Read(2990, buf));
                Assert.True(buf.AsSpan(10).IndexOfAnyExcept((byte)0) < 0, "bytes past a truncate must read as zeros after extension");
            }
            v.Symlink("/a/link", "hello.txt");
            Assert.Equal("hello.txt", v.ReadLink("/a/link"));
            v.Rename("/a/hello.txt", "/b.txt");
            v.SetXattr(v.Resolve("/b.txt"), "user.x", [1, 2, 3]);
            v.Link("/b.txt", "/a/hard");
            v.Dispose();

            var r = Fsck.Check(dev);
            Assert.True(r.Clean, string.Join("\n", r.Errors));
            using var v2 = DaxVolume.Mount(dev);
            Assert.Equal(["a", "b.txt"], v2.List("/").Select(e => e.NameString).Order().ToArray());
            using var f2 = v2.OpenFile("/a/hard");
            var head = new byte[21];
            f2.Read(0, head);
            Assert.Equal("hello WORLD, and more", Encoding.UTF8.GetString(head));
            Assert.Equal(10000, f2.Length);
            Assert.Equal(2u, v2.Stat("/b.txt").Nlink);
            Assert.Equal([1, 2, 3], v2.GetXattr(v2.Resolve("/b.txt"), "user.x"));
            Assert.Equal("hello.txt", v2.ReadLink("/a/link"));
        }
    }
}
