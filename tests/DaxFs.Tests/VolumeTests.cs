using System.Text;
using DaxFs.Check;
using DaxFs.Pmem;
using DaxFs.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests;

/// <summary>Behaviours of a volume as a whole: ownership lock, Page-device durability, journal checkpoints, large
/// sparse files, the stream adapter, unlinked-but-open files, and parallel use from many threads.</summary>
public class VolumeTests(ITestOutputHelper output)
{
    [Fact]
    public void SecondOpenOfAVolumeIsInUse()
    {
        string path = Path.Combine("/dev/shm", "daxfs-vt-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            using (var v = DaxVolume.Create(path, 16 << 20, TestVolumes.Options()))
            {
                var ex = Assert.Throws<DeviceInUseException>(() => DaxVolume.Open(path, TestVolumes.Options()));
                Assert.Contains("in use", ex.Message);
                v.CreateFile("/x").Dispose();
            }
            using var again = DaxVolume.Open(path, TestVolumes.Options());
            Assert.True(again.Exists("/x"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Found by the crash simulator: on a Page device a truncate down is not durable until a sync, so a
    /// crash still shows the old size; growing the file again (or writing past the new end) must not store over those
    /// bytes in place.</summary>
    [Fact]
    public void PageDeviceTruncateDownThenGrowLeavesTheSyncedBytesIntact()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, emulatePmem: false);
        using (dev)
        {
            var data = new byte[16384];
            new Random(5).NextBytes(data);
            using (var f = v.CreateFile("/f"))
                f.Write(0, data);
            v.Sync();
            using (var f = v.OpenFile("/f"))
            {
                f.SetLength(3542);
                f.SetLength(36864);
                f.Write(5000, new byte[] { 1, 2, 3 });
                f.SetLength(100);
                f.Write(9000, new byte[] { 4, 5, 6 });
                var back = new byte[16384];
                Assert.Equal(9003, f.Read(0, back));
                Assert.True(back.AsSpan(0, 100).SequenceEqual(data.AsSpan(0, 100)));
                Assert.True(back.AsSpan(100, 8900).IndexOfAnyExcept((byte)0) < 0, "bytes past a truncate must read as zeros");
            }
            // Power cut before any sync: every store may have reached the media, the journal holds only the synced state.
            using var crashed = TestVolumes.FromImage(TestVolumes.Snapshot(dev), emulatePmem: false);
            using (var rv = DaxVolume.Mount(crashed))
            using (var f = rv.OpenFile("/f"))
            {
                var back = new byte[16384];
                Assert.Equal(16384, f.Length);
                Assert.Equal(16384, f.Read(0, back));
                Assert.True(back.AsSpan().SequenceEqual(data), "the synced bytes were stored over before the truncate was durable");
            }
            v.Dispose();
        }
    }

    /// <summary>Found by the crash simulator (random/20261185783476/200 on a page device): zero range marked the
    /// file's own blocks unwritten, a later write went into them in place, and a crash before the next sync showed the
    /// synced file with those bytes changed.</summary>
    [Fact]
    public void PageDeviceZeroRangeThenWriteLeavesTheSyncedBytesIntact()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, emulatePmem: false);
        using (dev)
        {
            var data = new byte[65536];
            new Random(6).NextBytes(data);
            using (var f = v.CreateFile("/f"))
                f.Write(0, data);
            v.Sync();
            using (var f = v.OpenFile("/f"))
            {
                f.Fallocate(FallocateMode.ZeroRange, 3000, 50000);
                f.Write(8192, new byte[] { 7, 7, 7 });
                var back = new byte[65536];
                Assert.Equal(65536, f.Read(0, back));
                Assert.Equal(7, back[8193]);
                Assert.Equal(0, back[20000]);
                Assert.True(back.AsSpan(53000).SequenceEqual(data.AsSpan(53000)));
            }
            using var crashed = TestVolumes.FromImage(TestVolumes.Snapshot(dev), emulatePmem: false);
            using (var rv = DaxVolume.Mount(crashed))
            using (var f = rv.OpenFile("/f"))
            {
                var back = new byte[65536];
                Assert.Equal(65536, f.Read(0, back));
                Assert.True(back.AsSpan().SequenceEqual(data), "the synced bytes were stored over before the zero range was durable");
            }
            v.Dispose();
        }
    }

    [Fact]
    public void PageDeviceCallsAreDurableAfterSyncOnly()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, emulatePmem: false);
        using (dev)
        {
            v.CreateFile("/synced").Dispose();
            v.Sync();
            byte[] afterSync = TestVolumes.Snapshot(dev);
            v.CreateFile("/unsynced").Dispose();
            // A crash now: what reached the media is at least the synced state. The device keeps everything written to
            // the mapping, so emulate the crash with the image taken at the sync point plus nothing else.
            using var crashed = TestVolumes.FromImage(afterSync, emulatePmem: false);
            using var rv = DaxVolume.Mount(crashed);
            Assert.True(rv.Exists("/synced"));
            Assert.False(rv.Exists("/unsynced"));
            v.Dispose();
        }
    }

    [Fact]
    public void SyncMountOptionMakesEveryCallDurable()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20, emulatePmem: false, mount: new MountOptions { Sync = true });
        using (dev)
        {
            using (var f = v.CreateFile("/f"))
                f.Write(0, "durable at once"u8);
            using var crashed = TestVolumes.FromImage(TestVolumes.Snapshot(dev), emulatePmem: false);
            using var rv = DaxVolume.Mount(crashed);
            using var g = rv.OpenFile("/f");
            var b = new byte[15];
            g.Read(0, b);
            Assert.Equal("durable at once", Encoding.UTF8.GetString(b));
            v.Dispose();
        }
    }

    [Fact]
    public void CrashImageOfAPmemVolumeHasEveryCompletedCall()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20);
        using (dev)
        {
            v.CreateDirectory("/d");
            using (var f = v.CreateFile("/d/f"))
                f.Write(0, new byte[10000]);
            v.Rename("/d/f", "/g");
            using var crashed = TestVolumes.FromImage(TestVolumes.Snapshot(dev));
            using var rv = DaxVolume.Mount(crashed);
            Assert.True(rv.ReplayedTransactions > 0);
            Assert.Equal(10000, rv.Stat("/g").Size);
            Assert.False(rv.Exists("/d/f"));
            rv.Dispose();
            Assert.True(Fsck.Check(crashed).Clean);
            v.Dispose();
        }
    }

    [Fact]
    public void JournalCheckpointsWhenFullAndStaysCorrect()
    {
        var (dev, v) = TestVolumes.Fresh(16 << 20, format: new FormatOptions { JournalBytes = 256 << 10, InodeCount = 4096 });
        using (dev)
        {
            ulong dir = v.MakeDirectory(DaxVolume.RootIno, "d", 0x1ED).Ino;
            for (int i = 0; i < 3000; i++)
            {
                v.CreateFile(dir, "f" + i, 0x1A4);
                if (i % 3 == 0)
                    v.Unlink(dir, "f" + i);
            }
            Assert.True(v.JournalCheckpoints > 0, "a 256 KiB journal must have filled");
            using var crashed = TestVolumes.FromImage(TestVolumes.Snapshot(dev));
            using (var rv = DaxVolume.Mount(crashed))
                Assert.Equal(2000, rv.List("/d").Count);
            Assert.True(Fsck.Check(crashed).Clean);
            v.Dispose();
        }
    }

    [Fact]
    public void SparseFileLargerThan4GiB()
    {
        var (dev, v) = TestVolumes.Fresh(32 << 20);
        using (dev)
        {
            long far = 5L << 30;
            using (var f = v.CreateFile("/big"))
            {
                f.Write(far, "end"u8);
                f.Write(4096, "start"u8);
                Assert.Equal(far + 3, f.Length);
                var b = new byte[8];
                Assert.Equal(8, f.Read(far - 5, b));
                Assert.Equal([0, 0, 0, 0, 0, (byte)'e', (byte)'n', (byte)'d'], b);
                Assert.Equal(4096, v.Seek(f.Ino, 0, data: true));
                Assert.Equal(8192, v.Seek(f.Ino, 4096, data: false));
                Assert.Equal(far & ~4095L, v.Seek(f.Ino, 8192, data: true));
                Assert.True(f.GetAttributes().Blocks <= 3 * 8, "a sparse file takes only the blocks written");
            }
            v.Dispose();
            using var rv = DaxVolume.Mount(dev);
            Assert.Equal(far + 3, rv.Stat("/big").Size);
        }
    }

    [Fact]
    public void StreamAdapterReadsWritesSeeks()
    {
        var (dev, v) = TestVolumes.Fresh(16 << 20);
        using (dev)
        using (v)
        {
            using var f = v.CreateFile("/s");
            using Stream s = f.AsStream();
            using (var w = new StreamWriter(s, leaveOpen: true))
                w.Write("line one\nline two\n");
            Assert.Equal(18, s.Length);
            s.Seek(5, SeekOrigin.Begin);
            var buf = new byte[3];
            Assert.Equal(3, s.Read(buf));
            Assert.Equal("one", Encoding.ASCII.GetString(buf));
            s.SetLength(4);
            s.Position = 0;
            using var r = new StreamReader(s);
            Assert.Equal("line", r.ReadToEnd());
        }
    }

    [Fact]
    public void UnlinkedOpenFileLivesUntilClosed()
    {
        var (dev, v) = TestVolumes.Fresh(16 << 20);
        using (dev)
        {
            var f = v.CreateFile("/tmp-file");
            f.Write(0, new byte[100_000]);
            long free = v.StatFs().FreeBlocks;
            v.Delete("/tmp-file");
            Assert.False(v.Exists("/tmp-file"));
            f.Write(100_000, "still writable"u8);
            Assert.Equal(100_014, f.Length);
            Assert.Equal(free, v.StatFs().FreeBlocks); // the append fit the last block; nothing freed yet
            // A crash while it is open: the next mount frees the orphan.
            using (var crashed = TestVolumes.FromImage(TestVolumes.Snapshot(dev)))
            using (var rv = DaxVolume.Mount(crashed))
                Assert.Equal(1, rv.OrphansFreed);
            f.Dispose();
            Assert.True(v.StatFs().FreeBlocks > free);
            Assert.Throws<DaxFsException>(() => v.GetAttributes(f.Ino));
            v.Dispose();
            Assert.True(Fsck.Check(dev).Clean);
        }
    }

    [Fact]
    public void ManyThreadsOnManyFilesAndOneDirectory()
    {
        const int threads = 8, rounds = 300;
        var (dev, v) = TestVolumes.Fresh(128 << 20);
        using (dev)
        {
            v.CreateDirectory("/shared");
            var errors = new List<string>();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                try
                {
                    var rnd = new Random(t);
                    using var f = v.CreateFile($"/file{t}");
                    var model = new byte[256 << 10];
                    for (int r = 0; r < rounds; r++)
                    {
                        int off = rnd.Next(model.Length - 9000), len = rnd.Next(1, 9000);
                        var data = new byte[len];
                        rnd.NextBytes(data);
                        f.Write(off, data);
                        data.CopyTo(model, off);
                        v.CreateFile($"/shared/t{t}-{r}").Dispose();
                        if (r % 2 == 1)
                            v.Delete($"/shared/t{t}-{r - 1}");
                        var check = new byte[len];
                        f.Read(off, check);
                        if (!check.AsSpan().SequenceEqual(model.AsSpan(off, len)))
                            lock (errors)
                                errors.Add($"thread {t} round {r}: read back differs");
                    }
                    var all = new byte[f.Length];
                    f.Read(0, all);
                    if (!all.AsSpan().SequenceEqual(model.AsSpan(0, all.Length)))
                        lock (errors)
                            errors.Add($"thread {t}: final contents differ");
                }
                catch (Exception e)
                {
                    lock (errors)
                        errors.Add($"thread {t}: {e}");
                }
            });
            Assert.Empty(errors);
            Assert.Equal(threads * rounds / 2, v.List("/shared").Count);
            v.Dispose();
            var report = Fsck.Check(dev);
            output.WriteLine(string.Join("\n", report.Errors));
            Assert.True(report.Clean);
        }
    }

    /// <summary>FUSE's FORGET frees an unlinked inode outside the namespace lock. Its slot must not be taken again
    /// before the freeing call has committed: here the call is held just before its commit while another creates a
    /// symlink. Were the slot reusable already (it was, until a CI run of the tar test caught it), the symlink would
    /// take the same inode number, commit first, and the freed image committed after it would erase it: the directory
    /// would name a free inode. The symlink gets another slot; the image taken after both mounts with it, fsck clean.</summary>
    [Fact]
    public void FreedInodeSlotIsNotReusedBeforeItsCommit()
    {
        var (dev, v) = TestVolumes.Fresh(16 << 20);
        using (dev)
        using (v)
        {
            ulong pinned;
            using (DaxFile placeholder = v.CreateFile("/placeholder"))
                pinned = placeholder.Ino;
            v.Pin(pinned); // what a FUSE lookup does
            v.Delete("/placeholder");
            using var committing = new ManualResetEventSlim();
            using var created = new ManualResetEventSlim();
            int unpinThread = 0;
            v.BeforeCommitForTests = () =>
            {
                if (Environment.CurrentManagedThreadId != Volatile.Read(ref unpinThread))
                    return;
                committing.Set();
                created.Wait(TimeSpan.FromSeconds(30)); // the test thread fails the test if this times out
            };
            var unpin = new Thread(() =>
            {
                Volatile.Write(ref unpinThread, Environment.CurrentManagedThreadId);
                v.Unpin(pinned);
            });
            unpin.Start();
            Assert.True(committing.Wait(TimeSpan.FromSeconds(30)), "the unpin did not reach its commit");
            string target = string.Join('/', Enumerable.Repeat("../x", 60)); // a block target, like tar's link-long
            ulong link = v.Symlink("/link", target).Ino;
            created.Set();
            Assert.True(unpin.Join(TimeSpan.FromSeconds(30)), "the unpin did not finish");
            v.BeforeCommitForTests = null;
            Assert.NotEqual(pinned, link);
            using PmemDevice image = TestVolumes.FromImage(TestVolumes.Snapshot(dev));
            Assert.True(Fsck.Check(image).Clean);
            using var again = DaxVolume.Mount(image);
            Assert.Equal(target, again.ReadLink("/link"));
        }
    }
}
