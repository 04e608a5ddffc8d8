using DaxFs.Check;
using DaxFs.Pmem;
using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests;

/// <summary>MountOptions.Data = InPlace: overwrites stay in the file's blocks, times are journaled lazily, everything
/// else keeps the atomic path.</summary>
public class InPlaceDataTests
{
    private static readonly MountOptions InPlace = new() { Data = DataMode.InPlace };
    private const ulong Root = DaxVolume.RootIno;

    private static byte[] Bytes(int n, int tag)
    {
        var b = new byte[n];
        new Random(tag).NextBytes(b);
        return b;
    }

    private static List<(long Dev, long Len)> Extents(DaxVolume v, ulong ino, long size)
    {
        var list = new List<(long, long)>();
        v.ReadExtents(ino, 0, size, (d, n) => list.Add((d, n)));
        return list;
    }

    private static byte[] ReadAll(DaxVolume v, ulong ino)
    {
        var b = new byte[v.GetAttributes(ino).Size];
        Assert.Equal(b.Length, v.Read(ino, 0, b));
        return b;
    }

    /// <summary>The volume as a crash right now would leave it (emulated pmem: every store made is on the media).</summary>
    private static DaxVolume CrashCopy(PmemDevice dev, out PmemDevice copy)
    {
        copy = TestVolumes.FromImage(TestVolumes.Snapshot(dev));
        return DaxVolume.Mount(copy);
    }

    [Fact]
    public void OverwritesStayInTheFilesBlocksWithoutAJournalCommit()
    {
        // Written by copy on write first (the default mode), so that the file is several extents; then mounted in place.
        var (dev, first) = TestVolumes.Fresh(32 << 20);
        using (dev)
        {
            ulong ino = first.CreateFile(Root, "f", 0x1A4).Ino;
            byte[] expect = Bytes(65536, 1);
            first.Write(ino, 0, expect);
            first.Write(ino, 8192, expect.AsSpan(8192, 4096));
            first.Write(ino, 16384, expect.AsSpan(16384, 100));
            first.Dispose();
            using var v = DaxVolume.Mount(dev, InPlace);
            Assert.Equal(DataMode.InPlace, v.DataMode);
            var before = Extents(v, ino, expect.Length);
            Assert.True(before.Count >= 4, $"{before.Count} extents");
            long commits = v.JournalCommits;

            byte[] a = Bytes(4096, 2), b = Bytes(100, 3), c = Bytes(14000, 4);
            v.Write(ino, 8192, a);
            v.Write(ino, 30000, b);
            v.Write(ino, 4000, c); // unaligned, across four blocks and three extents
            a.CopyTo(expect, 8192);
            b.CopyTo(expect, 30000);
            c.CopyTo(expect, 4000);

            Assert.Equal(commits, v.JournalCommits);
            Assert.Equal(before, Extents(v, ino, expect.Length));
            Assert.Equal(expect, ReadAll(v, ino));
            using (var rv = CrashCopy(dev, out var copy))
            using (copy)
                Assert.Equal(expect, ReadAll(rv, ino));
        }
    }

    [Fact]
    public void TheDefaultModeStillCopiesOnWrite()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20);
        using (dev)
        using (v)
        {
            ulong ino = v.CreateFile(Root, "f", 0x1A4).Ino;
            v.Write(ino, 0, Bytes(65536, 1));
            var before = Extents(v, ino, 65536);
            long commits = v.JournalCommits;
            v.Write(ino, 8192, Bytes(4096, 2));
            Assert.NotEqual(before, Extents(v, ino, 65536));
            Assert.Equal(commits + 1, v.JournalCommits);
        }
    }

    [Fact]
    public void LazyTimesReachTheMediaAtFsyncSyncMetadataChangesAndUnmount()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, mount: InPlace);
        using (dev)
        {
            ulong ino = v.CreateFile(Root, "f", 0x1A4).Ino;
            v.Write(ino, 0, Bytes(16384, 1));
            v.SetAttributes(ino, new SetAttributes { MtimeNs = 1_000_000_000L });

            long OnMedia()
            {
                using var rv = CrashCopy(dev, out var copy);
                using (copy)
                    return rv.GetAttributes(ino).MtimeNs;
            }

            // fdatasync leaves the new times in DRAM; fsync journals them.
            v.Write(ino, 4096, Bytes(4096, 2));
            long now = v.GetAttributes(ino).MtimeNs;
            Assert.True(now > 1_000_000_000L);
            Assert.Equal(1_000_000_000L, OnMedia());
            v.Fsync(ino, dataOnly: true);
            Assert.Equal(1_000_000_000L, OnMedia());
            v.Fsync(ino);
            Assert.Equal(now, OnMedia());

            // Sync journals every file's.
            v.SetAttributes(ino, new SetAttributes { MtimeNs = 2_000_000_000L });
            v.Write(ino, 0, Bytes(100, 3));
            Assert.Equal(2_000_000_000L, OnMedia());
            v.Sync();
            Assert.Equal(v.GetAttributes(ino).MtimeNs, OnMedia());

            // Any later metadata change of the file carries them.
            v.SetAttributes(ino, new SetAttributes { MtimeNs = 3_000_000_000L });
            v.Write(ino, 0, Bytes(100, 4));
            now = v.GetAttributes(ino).MtimeNs;
            v.SetAttributes(ino, new SetAttributes { Mode = 0x180 });
            Assert.Equal(now, OnMedia());

            // Unmount journals them.
            v.SetAttributes(ino, new SetAttributes { MtimeNs = 4_000_000_000L });
            v.Write(ino, 0, Bytes(100, 5));
            now = v.GetAttributes(ino).MtimeNs;
            v.Dispose();
            using var again = DaxVolume.Mount(dev, InPlace);
            Assert.Equal(now, again.GetAttributes(ino).MtimeNs);
            Assert.Equal(0, again.ReplayedTransactions);
        }
    }

    /// <summary>The lazily timed path stamps from the kernel's coarse clock, which lags the fine one by up to a tick:
    /// a file's times still never run backwards past its last change.</summary>
    [Fact]
    public void InPlaceTimesNeverGoBackBeforeTheLastChange()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, mount: InPlace);
        using (dev)
        using (v)
        {
            ulong ino = v.CreateFile(Root, "f", 0x1A4).Ino;
            v.Write(ino, 0, Bytes(8192, 1));
            for (int k = 0; k < 200; k++)
            {
                InodeAttributes before = v.SetAttributes(ino, new SetAttributes { Mode = (uint)(0x180 | (k & 1) << 5) });
                v.Write(ino, 4096, Bytes(64, k));
                InodeAttributes after = v.GetAttributes(ino);
                Assert.True(after.CtimeNs >= before.CtimeNs, $"round {k}: ctime {after.CtimeNs} went back before {before.CtimeNs}");
                Assert.True(after.MtimeNs >= before.CtimeNs, $"round {k}: mtime {after.MtimeNs} is before the last change {before.CtimeNs}");
            }
        }
    }

    [Fact]
    public void WritesThatExtendFillHolesOrConvertStayAtomicAndCommit()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, mount: InPlace);
        using (dev)
        using (v)
        {
            ulong ino = v.CreateFile(Root, "f", 0x1A4).Ino;
            byte[] expect = new byte[300_000];
            Bytes(10000, 1).CopyTo(expect, 0);
            v.Write(ino, 0, expect.AsSpan(0, 10000));

            // Across the end of file: the first part in place, the rest new, the size committed.
            long commits = v.JournalCommits;
            byte[] a = Bytes(8000, 2);
            v.Write(ino, 6000, a);
            a.CopyTo(expect, 6000);
            Assert.Equal(commits + 1, v.JournalCommits);

            // Into a hole past a gap, then into an unwritten extent.
            byte[] b = Bytes(5000, 3);
            v.Write(ino, 100_000, b);
            b.CopyTo(expect, 100_000);
            v.Fallocate(ino, FallocateMode.KeepSize, 200_000, 100_000);
            v.SetAttributes(ino, new SetAttributes { Size = 300_000 });
            commits = v.JournalCommits;
            byte[] c = Bytes(4096, 4);
            v.Write(ino, 204_800, c);
            c.CopyTo(expect, 204_800);
            Assert.Equal(commits + 1, v.JournalCommits);

            Assert.Equal(expect, ReadAll(v, ino));
            using (var rv = CrashCopy(dev, out var copy))
            using (copy)
            {
                Assert.Equal(expect, ReadAll(rv, ino));
                rv.Dispose();
                Assert.True(Fsck.Check(copy).Clean);
            }
        }
    }

    [Fact]
    public void UnderALiveMappingTheGeneralPathWritesInPlaceAsBefore()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, mount: InPlace);
        using (dev)
        using (v)
        {
            ulong ino = v.CreateFile(Root, "f", 0x1A4).Ino;
            v.Write(ino, 0, Bytes(16384, 1));
            using var m = v.Map(ino, 0, 16384, MapAccess.ReadWrite, MapMode.Sync);
            long inPlace = v.InPlaceWritesUnderMappings;
            byte[] a = Bytes(4096, 2);
            v.Write(ino, 4096, a);
            Assert.Equal(inPlace + 1, v.InPlaceWritesUnderMappings);
            Assert.Equal(a, m.GetReadOnlySpan(4096, 4096).ToArray());
        }
    }

    [Fact]
    public void PageDevicesKeepCopyOnWrite()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, emulatePmem: false, mount: InPlace);
        using (dev)
        {
            Assert.Equal(DataMode.Atomic, v.DataMode);
            ulong ino = v.CreateFile(Root, "f", 0x1A4).Ino;
            byte[] expect = Bytes(65536, 1);
            v.Write(ino, 0, expect);
            v.Sync();
            var before = Extents(v, ino, expect.Length);
            byte[] a = Bytes(4096, 2);
            v.Write(ino, 8192, a);
            a.CopyTo(expect, 8192);
            Assert.NotEqual(before, Extents(v, ino, expect.Length));
            v.Sync();
            v.Dispose();
            using var again = DaxVolume.Mount(dev, InPlace);
            Assert.Equal(expect, ReadAll(again, ino));
        }
    }

    [Fact]
    public void AnUndefinedDataModeIsRefusedBeforeAnythingIsWritten()
    {
        using var dev = PmemDevice.CreateInMemory(8 << 20, TestVolumes.Options());
        var e = Assert.Throws<DaxFsException>(() => DaxVolume.Format(dev, null, new MountOptions { Data = (DataMode)7 }));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.True(dev.GetSpan(0, 8 << 20).IndexOfAnyExcept((byte)0) < 0);
        using (DaxVolume.Format(dev)) { }
        e = Assert.Throws<DaxFsException>(() => DaxVolume.Mount(dev, new MountOptions { Data = (DataMode)(-1) }));
        Assert.Equal(Errno.EINVAL, e.Errno);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(0, v.ReplayedTransactions);
    }
}
