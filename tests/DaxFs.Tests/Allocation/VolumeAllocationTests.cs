using DaxFs.Check;
using DaxFs.Format;
using DaxFs.Iomap;
using DaxFs.Pmem;
using DaxFs.Tests.Corruption;
using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests.Allocation;

/// <summary>Allocation seen through the volume: files of 2 MiB and more get PMD-mappable extents (a 2 MiB-aligned
/// file range on a 2 MiB-aligned device range); small files pack into partly used groups so that whole free groups
/// survive aging; ENOSPC leaves the volume as it was.</summary>
public class VolumeAllocationTests
{
    private const long Bytes = 64 << 20;
    private const long GroupBytes = Layout.GroupBytes;

    /// <summary>The DRAM map of a file (written and unwritten extents).</summary>
    private static List<Extent> Map(DaxVolume v, ulong ino) => v.Get(ino).Map!.Extents.ToList();

    /// <summary>Every extent is congruent modulo 2 MiB (file offset vs device offset), and every whole 2 MiB file
    /// range in [from, to) lies in one extent: what a PMD mapping needs.</summary>
    private static void AssertPmdMappable(DaxVolume v, ulong ino, long from, long to)
    {
        List<Extent> map = Map(v, ino);
        foreach (Extent e in map.Where(e => e.FileEnd * Layout.BlockSize > from && e.FileBlock * Layout.BlockSize < to))
            Assert.True(e.DevBlock % Layout.BlocksPerGroup == e.FileBlock % Layout.BlocksPerGroup,
                $"extent file block {e.FileBlock} -> device block {e.DevBlock} (+{e.Count}) is not 2 MiB-congruent; map: {string.Join(", ", map)}");
        for (long g = from / GroupBytes; g < to / GroupBytes; g++)
        {
            long fb = g * Layout.BlocksPerGroup;
            Assert.Contains(map, e => e.FileBlock <= fb && e.FileEnd >= fb + Layout.BlocksPerGroup);
        }
        // The same through the public zero-copy read path: device offsets of written extents.
        long pos = 0;
        v.ReadExtents(ino, from, to - from, (dev, len) =>
        {
            if (dev >= 0)
                Assert.Equal((from + pos) % GroupBytes, dev % GroupBytes);
            pos += len;
        });
    }

    private static (PmemDevice, DaxVolume) Volume(long bytes = Bytes)
    {
        var (dev, v) = TestVolumes.Fresh(bytes);
        Assert.Equal(0, v.Geometry.DataStart % Layout.BlocksPerGroup); // the data area is 2 MiB-aligned on a 64 MiB device
        return (dev, v);
    }

    [Theory]
    [InlineData(2L << 20)]
    [InlineData(3L << 20)]
    [InlineData(8L << 20)]
    public void LargeWriteGetsAlignedExtents(long size)
    {
        var (dev, v) = Volume();
        using (dev)
        using (v)
        {
            for (int k = 0; k < 5; k++)
                using (var f = v.CreateFile($"/small{k}"))
                    f.Write(0, new byte[5000]);
            using var big = v.CreateFile("/big");
            big.Write(0, RichImage.Pattern((int)size, 1));
            AssertPmdMappable(v, big.Ino, 0, size);
            Assert.Equal(0, Map(v, big.Ino)[0].DevBlock % Layout.BlocksPerGroup);
        }
    }

    [Fact]
    public void FallocatedFileGetsAlignedExtents()
    {
        var (dev, v) = Volume();
        using (dev)
        using (v)
        {
            v.CreateFile("/small").Dispose();
            using (var s = v.OpenFile("/small"))
                s.Write(0, new byte[100]);
            using var f = v.CreateFile("/falloc");
            f.Fallocate(FallocateMode.Allocate, 0, 6L << 20);
            AssertPmdMappable(v, f.Ino, 0, 6L << 20);
            Assert.All(Map(v, f.Ino), e => Assert.True(e.Unwritten));
            // Writing into it keeps the placement (in place, unwritten -> written).
            f.Write(GroupBytes, RichImage.Pattern((int)GroupBytes, 2));
            AssertPmdMappable(v, f.Ino, 0, 6L << 20);
        }
    }

    /// <summary>A file written by appends: once past 2 MiB, its further 2 MiB ranges should be PMD-mappable too
    /// (the documented "large files take whole free groups"). Appends continue the previous extent on the device
    /// (the continuation hint), which keeps the first, unaligned placement. BUG-5.</summary>
    [Fact]
    public void FileGrownByAppendsGetsAlignedExtentsPastTwoMebibytes()
    {
        var (dev, v) = Volume();
        using (dev)
        using (v)
        {
            v.CreateFile("/other").Dispose();
            using var f = v.CreateFile("/grown");
            byte[] chunk = RichImage.Pattern(64 << 10, 3);
            for (long off = 0; off < (8L << 20); off += chunk.Length)
                f.Write(off, chunk);
            AssertPmdMappable(v, f.Ino, 4L << 20, 8L << 20);
        }
    }

    /// <summary>A large write that starts at a file offset that is not 2 MiB-aligned (into an empty file): the
    /// whole groups it takes should hold the file's 2 MiB ranges, not start at the write's first block. BUG-5.</summary>
    [Theory]
    [InlineData(1L << 20)]
    [InlineData(4096L)]
    public void LargeWriteAtAnUnalignedOffsetGetsPmdMappableExtents(long offset)
    {
        var (dev, v) = Volume();
        using (dev)
        using (v)
        {
            using var f = v.CreateFile("/at");
            f.Write(offset, RichImage.Pattern(6 << 20, 7));
            AssertPmdMappable(v, f.Ino, 2L << 20, 6L << 20);
        }
    }

    [Fact]
    public void SmallFilesFillPartlyUsedGroupsSoWholeGroupsSurvive()
    {
        var (dev, v) = Volume();
        using (dev)
        {
            using (v)
            {
                long groupsBefore = v.StatFs().FreeAlignedExtents;
                long freeBefore = v.StatFs().FreeBlocks;
                for (int k = 0; k < 300; k++)
                    using (var f = v.CreateFile($"/s{k:D3}"))
                        f.Write(0, new byte[1 + k % 3 * 4096]);
                long used = freeBefore - v.StatFs().FreeBlocks;
                long broken = groupsBefore - v.StatFs().FreeAlignedExtents;
                Assert.True(broken <= (used + Layout.BlocksPerGroup - 1) / Layout.BlocksPerGroup + 1,
                    $"{used} blocks of small files broke {broken} whole groups");
                // Aging: delete every other small file, write more small ones: still packed.
                for (int k = 0; k < 300; k += 2)
                    v.Delete($"/s{k:D3}");
                long groupsAged = v.StatFs().FreeAlignedExtents;
                for (int k = 0; k < 100; k++)
                    using (var f = v.CreateFile($"/t{k:D3}"))
                        f.Write(0, new byte[4096]);
                Assert.Equal(groupsAged, v.StatFs().FreeAlignedExtents); // the holes took them
                using var big = v.CreateFile("/big");
                big.Write(0, RichImage.Pattern(4 << 20, 4));
                AssertPmdMappable(v, big.Ino, 0, 4 << 20);
            }
            Assert.True(Fsck.Check(dev).Clean);
        }
    }

    [Fact]
    public void WriteThatDoesNotFitFailsWithEnospcAndChangesNothing()
    {
        var (dev, v) = TestVolumes.Fresh(4 << 20);
        using (dev)
        {
            byte[] content;
            using (v)
            {
                using (var keep = v.CreateFile("/keep"))
                    keep.Write(0, RichImage.Pattern(100_000, 5));
                using var f = v.CreateFile("/fill");
                byte[] chunk = RichImage.Pattern(256 << 10, 6);
                DaxFsException? e = null;
                for (long off = 0; e is null; off += chunk.Length)
                {
                    VolumeStats statsBefore = v.StatFs();
                    long sizeBefore = f.Length;
                    byte[] imageBefore = TestVolumes.Snapshot(dev);
                    e = Record.Exception(() => f.Write(off, chunk)) as DaxFsException;
                    if (e is not null)
                    {
                        Assert.Equal(Errno.ENOSPC, e.Errno);
                        Assert.Equal(statsBefore, v.StatFs());
                        Assert.Equal(sizeBefore, f.Length);
                        Assert.True(imageBefore.AsSpan().SequenceEqual(TestVolumes.Snapshot(dev)), "a refused write changed the device");
                    }
                    Assert.True(off < 8 << 20, "the volume never filled up");
                }
                // A copy-on-write overwrite of the whole file needs new blocks: refused too, old data intact.
                byte[] old = VolumeWalk.ReadAll(v, "/fill");
                var cow = Assert.Throws<DaxFsException>(() => f.Write(0, new byte[old.Length]));
                Assert.Equal(Errno.ENOSPC, cow.Errno);
                Assert.Equal(old, VolumeWalk.ReadAll(v, "/fill"));
                // Still usable: free space, write again.
                v.Delete("/keep");
                f.Write(f.Length, new byte[4096]);
                content = VolumeWalk.ReadAll(v, "/fill");
            }
            FsckReport r = Fsck.Check(dev);
            Assert.True(r.Clean, string.Join("\n", r.Errors));
            using var again = DaxVolume.Mount(dev);
            Assert.Equal(content, VolumeWalk.ReadAll(again, "/fill"));
        }
    }

    [Fact]
    public void RunningOutOfInodesFailsWithEnospcAndChangesNothing()
    {
        var (dev, v) = TestVolumes.Fresh(4 << 20, format: new FormatOptions { InodeCount = 40 });
        using (dev)
        {
            using (v)
            {
                int made = 0;
                DaxFsException? e = null;
                while (e is null)
                {
                    byte[] before = TestVolumes.Snapshot(dev);
                    e = Record.Exception(() => v.CreateFile(DaxVolume.RootIno, $"f{made}", 0x1A4)) as DaxFsException;
                    if (e is null)
                    {
                        made++;
                        continue;
                    }
                    Assert.Equal(Errno.ENOSPC, e.Errno);
                    Assert.True(before.AsSpan().SequenceEqual(TestVolumes.Snapshot(dev)));
                }
                Assert.Equal(39, made);
                Assert.Equal(0, v.StatFs().FreeInodes);
                v.Unlink(DaxVolume.RootIno, "f0");
                v.CreateFile(DaxVolume.RootIno, "again", 0x1A4);
            }
            Assert.True(Fsck.Check(dev).Clean);
        }
    }

    /// <summary>A 4 GiB (sparse, in-memory) volume: many allocations, files big and small, the free-group count
    /// exactly what the files took -- allocation works from its group sets, not from the device.</summary>
    [Fact]
    public void FourGibibyteVolumeKeepsItsGroupsStraight()
    {
        var (dev, v) = TestVolumes.Fresh(4L << 30);
        using (dev)
        using (v)
        {
            long groups = v.StatFs().FreeAlignedExtents;
            Assert.True(groups > 1900, $"{groups} free groups");
            for (int k = 0; k < 200; k++)
                using (var f = v.CreateFile($"/small{k}"))
                    f.Write(0, new byte[100]);
            Assert.True(groups - v.StatFs().FreeAlignedExtents <= 1);
            long afterSmall = v.StatFs().FreeAlignedExtents;
            var big = new List<ulong>();
            for (int k = 0; k < 8; k++)
            {
                using var f = v.CreateFile($"/big{k}");
                f.Fallocate(FallocateMode.Allocate, 0, 64L << 20);
                AssertPmdMappable(v, f.Ino, 0, 64L << 20);
                big.Add(f.Ino);
            }
            Assert.Equal(afterSmall - 8 * 32, v.StatFs().FreeAlignedExtents);
            for (int k = 0; k < 8; k += 2)
                v.Delete($"/big{k}");
            Assert.Equal(afterSmall - 4 * 32, v.StatFs().FreeAlignedExtents);
        }
    }
}
