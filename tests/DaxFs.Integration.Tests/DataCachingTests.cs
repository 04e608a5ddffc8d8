using System.IO.MemoryMappedFiles;
using DaxFs.Fuse;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>How the mount serves file data. By default (direct I/O, where the kernel allows shared mmap of such files)
/// no copy of the data stays in the kernel's page cache: a read through the mount always shows the media, even
/// bytes the daemon's own process changed through the volume API; programs can still map files MAP_SHARED. With
/// kernel_cache, a re-read through an open file may be served from the page cache.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class DataCachingTests(ITestOutputHelper output)
{
    [Fact]
    public void ByDefaultReadsThroughTheMountAlwaysShowTheMedia() => Hard.Run(TimeSpan.FromSeconds(60), () =>
    {
        using var v = new TestVolume("dio", output);
        v.MountInProcess();
        Assert.Equal(FuseDataCaching.Direct, v.FileSystem!.DataCaching);
        Assert.Null(v.FileSystem.DataCachingFallback);
        Assert.Equal(0, StaleRereads(v));
        v.UnmountInProcess();
        v.AssertFsckClean();
    });

    [Fact]
    public void KernelCachingIsChosenOnlyWhenAsked() => Hard.Run(TimeSpan.FromSeconds(60), () =>
    {
        using var v = new TestVolume("kcache", output);
        v.MountInProcess(caching: FuseDataCaching.Kernel);
        Assert.Equal(FuseDataCaching.Kernel, v.FileSystem!.DataCaching);
        // The page cache answers the re-read: the daemon-side change is not seen through the still-open file.
        Assert.True(StaleRereads(v) > 0, "with the kernel's page cache in front, no re-read was served from it");
        v.UnmountInProcess();
    });

    /// <summary>Writes 64 KiB through the mount, reads it through an open descriptor (filling any cache), changes the
    /// bytes in the daemon's process through the volume API, reads again through the same descriptor; returns how
    /// many of 16 pages still show the old bytes.</summary>
    private static int StaleRereads(TestVolume v)
    {
        string path = v.M("f");
        var first = new byte[64 << 10];
        new Random(7).NextBytes(first);
        File.WriteAllBytes(path, first);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        var buf = new byte[first.Length];
        Assert.Equal(first.Length, RandomAccess.Read(fs.SafeFileHandle, buf, 0));
        Assert.Equal(first, buf);
        var second = first.Select(b => (byte)~b).ToArray();
        DaxVolume vol = v.Volume!;
        vol.Write(vol.Lookup(DaxVolume.RootIno, "f"u8.ToArray()).Ino, 0, second);
        Array.Clear(buf);
        Assert.Equal(first.Length, RandomAccess.Read(fs.SafeFileHandle, buf, 0));
        int stale = 0;
        for (int p = 0; p < 16; p++)
        {
            var page = buf.AsSpan(p * 4096, 4096);
            if (page.SequenceEqual(first.AsSpan(p * 4096, 4096)))
                stale++;
            else
                Assert.True(page.SequenceEqual(second.AsSpan(p * 4096, 4096)), $"page {p} is neither the old nor the new bytes");
        }
        return stale;
    }

    [Fact]
    public void TheMountCommandSaysWhichAndTakesTheOption() => Hard.Run(TimeSpan.FromSeconds(90), () =>
    {
        using var v = new TestVolume("dio-cli", output);
        v.MountCli();
        Assert.Contains("direct I/O", v.DaemonLog(), StringComparison.Ordinal);
        v.UnmountCli();
        v.UseMountPoint("kc");
        v.MountCli("-o", "kernel_cache");
        Assert.Contains("kernel page cache", v.DaemonLog(), StringComparison.Ordinal);
        v.UnmountCli();
        Proc.Result r = Cli.Run("mount", v.Image, v.MountPoint, "-o", "direct_io,kernel_cache");
        Assert.Equal(2, r.Exit);
        Assert.Contains("contradict", r.Err, StringComparison.Ordinal);
        Assert.False(Mounts.IsMounted(v.MountPoint));
    });

    [Fact]
    public void ProgramsMapDirectIoFilesSharedAndSeeWrites() => Hard.Run(TimeSpan.FromSeconds(60), () =>
    {
        using var v = new TestVolume("dio-mmap", output);
        v.MountInProcess();
        Assert.Equal(FuseDataCaching.Direct, v.FileSystem!.DataCaching);
        string path = v.M("m");
        File.WriteAllBytes(path, new byte[1 << 20]);
        // MemoryMappedFile maps MAP_SHARED: refused with ENODEV on a direct-I/O file unless FUSE_DIRECT_IO_ALLOW_MMAP.
        using (var mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
        using (var view = mmf.CreateViewAccessor(0, 1 << 20))
        {
            for (int i = 0; i < 256; i++)
                view.Write(i * 4096 + 7, (byte)(i + 1));
            view.Flush(); // msync: the kernel writes the dirty pages back through the daemon
        }
        byte[] back = File.ReadAllBytes(path);
        for (int i = 0; i < 256; i++)
            Assert.Equal((byte)(i + 1), back[i * 4096 + 7]);
        // And the other way: a write through the mount is seen by a new mapping.
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            f.Position = 12345;
            f.Write("hello"u8);
        }
        using (var mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read))
        using (var view = mmf.CreateViewAccessor(0, 1 << 20, MemoryMappedFileAccess.Read))
        {
            var got = new byte[5];
            view.ReadArray(12345, got, 0, 5);
            Assert.Equal("hello"u8.ToArray(), got);
        }
        v.UnmountInProcess();
        v.AssertFsckClean();
    });
}
