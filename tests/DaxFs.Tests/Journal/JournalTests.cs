using System.Buffers.Binary;
using System.Text;
using DaxFs.Check;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Corruption;
using DaxFs.Tests.Support;
using Xunit;
using JournalLog = DaxFs.Journal.Journal;

namespace DaxFs.Tests.Journal;

/// <summary>The redo journal: committed transactions replayed at mount from a crash image taken before any
/// checkpoint; a torn last transaction ignored while the earlier ones replay; replay idempotent (twice, on two
/// devices, after a crash in the middle of a replay); transactions aiming outside the inode table reported as
/// corruption; stale transactions of an older log generation ignored.</summary>
public class JournalTests
{
    private const long Bytes = 16 << 20;

    /// <summary>A spread of operations, each one transaction.</summary>
    internal static void Workload(DaxVolume v)
    {
        v.CreateDirectory("/d");
        using (var f = v.CreateFile("/d/f"))
        {
            f.Write(0, RichImage.Pattern(5000, 1));
            f.Write(1000, RichImage.Pattern(3000, 2));
            f.Fallocate(FallocateMode.Allocate, 8192, 16384);
            f.SetLength(20000);
        }
        v.Symlink("/d/short", "f");
        v.Symlink("/long", "d/" + new string('z', 300));
        v.SetXattr(v.Resolve("/d/f"), "user.a", Encoding.UTF8.GetBytes("alpha"));
        v.Link("/d/f", "/hard");
        v.CreateDirectory("/e");
        v.Rename("/d/short", "/e/short2");
        using (var f = v.CreateFile("/gone"))
            f.Write(0, [1, 2, 3]);
        v.Delete("/gone");
        v.MakeNode(DaxVolume.RootIno, "fifo"u8, FileModes.Fifo | 0x1B6, 0);
    }

    /// <summary>A mounted volume after <see cref="Workload"/>, its crash image (no checkpoint happened) and the
    /// state a correct replay must give.</summary>
    private static (byte[] Image, List<string> Expected, long Commits) CrashImage(bool pmem = true, Action<DaxVolume>? more = null)
    {
        var (dev, v) = TestVolumes.Fresh(Bytes, emulatePmem: pmem);
        using (dev)
        using (v)
        {
            Workload(v);
            more?.Invoke(v);
            if (!pmem)
                v.Sync(); // Page devices: the committed transactions reach the log at sync
            Assert.Equal(0, v.JournalCheckpoints);
            return (TestVolumes.Snapshot(dev), VolumeWalk.Dump(v), v.JournalCommits);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void CommittedTransactionsAreReplayedAtMount(bool pmem)
    {
        var (image, expected, commits) = CrashImage(pmem);
        using PmemDevice dev = TestVolumes.FromImage(image, pmem);
        Superblock sb = Media.Geometry(dev);
        Assert.Equal(commits, Media.Transactions(dev, sb).Count);
        byte[] homeBefore = VolumeWalk.InodeTable(dev);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(commits, v.ReplayedTransactions);
        Assert.True(v.ReplayedTransactions > 0);
        Assert.NotEqual(homeBefore, VolumeWalk.InodeTable(dev)); // the changes were only in the journal
        Assert.Equal(expected, VolumeWalk.Dump(v));
        Assert.Empty(Media.Transactions(dev, sb)); // the header now points past them
    }

    [Fact]
    public void ReadOnlyDeviceRefusesToMountWithTransactionsWaiting()
    {
        var (image, _, commits) = CrashImage();
        string path = Path.Combine(Path.GetTempPath(), $"daxfs-journal-{Guid.NewGuid():N}.img");
        try
        {
            File.WriteAllBytes(path, image);
            using PmemDevice dev = PmemDevice.Open(path, TestVolumes.Options() with { ReadOnly = true });
            var e = Assert.Throws<DaxFsException>(() => DaxVolume.Mount(dev).Dispose());
            Assert.Equal(Errno.EROFS, e.Errno);
            Assert.Contains($"holds {commits} committed transactions", e.Message, StringComparison.Ordinal);
            FsckReport r = Fsck.Check(dev);
            Assert.Equal(-commits, r.ReplayedTransactions);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static TheoryData<string> Tears() => new("byte in the middle", "commit record zeroed", "commit sequence", "header length", "last byte");

    [Theory]
    [MemberData(nameof(Tears))]
    public void TornLastTransactionIsIgnoredAndTheEarlierOnesReplayed(string tear)
    {
        List<string> expectedBefore = [];
        var (image, _, commits) = CrashImage(more: v =>
        {
            expectedBefore = VolumeWalk.Dump(v);
            using var f = v.OpenFile("/d/f");
            f.Write(100, RichImage.Pattern(200, 3)); // the last transaction: copy on write of a visible block
        });
        using PmemDevice dev = TestVolumes.FromImage(image);
        Superblock sb = Media.Geometry(dev);
        var txs = Media.Transactions(dev, sb);
        Assert.Equal(commits, txs.Count);
        Media.TxInfo last = txs[^1];
        switch (tear)
        {
            case "byte in the middle":
                Media.WriteByte(dev, last.Offset + last.Length / 2, (byte)(Media.ReadByte(dev, last.Offset + last.Length / 2) ^ 0x5A));
                break;
            case "commit record zeroed":
                dev.FillPersist(last.Offset + last.Length - JournalLog.CommitSize, JournalLog.CommitSize, 0);
                break;
            case "commit sequence":
                Media.WriteByte(dev, last.Offset + last.Length - JournalLog.CommitSize, (byte)(Media.ReadByte(dev, last.Offset + last.Length - 16) + 1));
                break;
            case "header length":
                Media.WriteByte(dev, last.Offset + 16, (byte)(Media.ReadByte(dev, last.Offset + 16) + 8));
                break;
            case "last byte":
                Media.WriteByte(dev, last.Offset + last.Length - 1, (byte)(Media.ReadByte(dev, last.Offset + last.Length - 1) ^ 1));
                break;
        }
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(commits - 1, v.ReplayedTransactions);
        Assert.Equal(expectedBefore, VolumeWalk.Dump(v));
    }

    [Fact]
    public void TornTransactionInTheMiddleEndsTheLog()
    {
        var (image, _, commits) = CrashImage();
        using PmemDevice dev = TestVolumes.FromImage(image);
        Superblock sb = Media.Geometry(dev);
        var txs = Media.Transactions(dev, sb);
        Media.TxInfo mid = txs[txs.Count / 2];
        Media.WriteByte(dev, mid.Offset + 40, (byte)(Media.ReadByte(dev, mid.Offset + 40) ^ 0xFF));
        // Mount may refuse the half-replayed state (later in-place log appends are then not counted) but must
        // replay exactly the transactions before the torn one, and fail (if it fails) cleanly.
        try
        {
            using var v = DaxVolume.Mount(dev);
            Assert.Equal(txs.Count / 2, v.ReplayedTransactions);
            VolumeWalk.Exercise(v);
        }
        catch (DaxFsCorruptedException)
        {
            // acceptable: only the first txs.Count / 2 transactions count
        }
        Assert.True(commits > 2);
    }

    [Fact]
    public void ReplayingTwiceEqualsReplayingOnce()
    {
        var (image, expected, commits) = CrashImage();
        // Same image, two devices: identical inode tables (and identical devices) after replay.
        using PmemDevice a = TestVolumes.FromImage(image), b = TestVolumes.FromImage(image);
        byte[] tableA, tableB;
        using (var va = DaxVolume.Mount(a))
        {
            Assert.Equal(commits, va.ReplayedTransactions);
            tableA = VolumeWalk.InodeTable(a);
        }
        using (var vb = DaxVolume.Mount(b))
        {
            Assert.Equal(commits, vb.ReplayedTransactions);
            tableB = VolumeWalk.InodeTable(b);
        }
        Assert.Equal(tableA, tableB);
        Assert.True(TestVolumes.Snapshot(a).AsSpan().SequenceEqual(TestVolumes.Snapshot(b)), "two replays of one image must leave identical devices");
        // Mount, unmount, mount again: nothing left to replay, the same state.
        using (var again = DaxVolume.Mount(a))
        {
            Assert.Equal(0, again.ReplayedTransactions);
            Assert.Equal(expected, VolumeWalk.Dump(again));
            Assert.Equal(tableA, VolumeWalk.InodeTable(a));
        }
    }

    /// <summary>A crash in the middle of a replay: any prefix of the transactions already written home (but the
    /// header not yet moved). Replaying again from the start must give the same result.</summary>
    [Fact]
    public void ReplayAfterACrashDuringReplayGivesTheSameResult()
    {
        var (image, expected, commits) = CrashImage();
        byte[] reference;
        using (PmemDevice r = TestVolumes.FromImage(image))
        using (DaxVolume.Mount(r))
            reference = VolumeWalk.InodeTable(r);
        for (int applied = 0; applied <= commits; applied += Math.Max(1, (int)commits / 5))
        {
            using PmemDevice dev = TestVolumes.FromImage(image);
            Superblock sb = Media.Geometry(dev);
            foreach (Media.TxInfo tx in Media.Transactions(dev, sb).Take(applied))
                ApplyHome(dev, tx);
            using var v = DaxVolume.Mount(dev);
            Assert.Equal(commits, v.ReplayedTransactions);
            Assert.Equal(reference, VolumeWalk.InodeTable(dev));
            Assert.Equal(expected, VolumeWalk.Dump(v));
        }
    }

    /// <summary>Writes a transaction's records home, as a replay does.</summary>
    private static void ApplyHome(PmemDevice dev, Media.TxInfo tx)
    {
        byte[] t = Media.Read(dev, tx.Offset, tx.Length);
        int p = JournalLog.TxHeaderSize;
        for (int i = 0; i < tx.RecordCount; i++)
        {
            long off = BinaryPrimitives.ReadInt64LittleEndian(t.AsSpan(p));
            int len = BinaryPrimitives.ReadInt32LittleEndian(t.AsSpan(p + 8));
            dev.CopyPersist(off, t.AsSpan(p + JournalLog.RecordHeaderSize, len));
            p += JournalLog.RecordHeaderSize + JournalLog.Align8(len);
        }
    }

    public static TheoryData<string> BadRecords() => new(
        "targets the superblock", "targets the journal", "straddles the end of the inode table", "targets the data area",
        "negative offset", "zero length", "record count past the records", "records short of the commit");

    /// <summary>A committed transaction (valid CRC) whose records do not parse or aim outside the inode table is
    /// corruption, and nothing is written through it.</summary>
    [Theory]
    [MemberData(nameof(BadRecords))]
    public void TransactionAimingOutsideTheInodeTableIsCorruption(string what)
    {
        var (image, _, _) = CrashImage();
        using PmemDevice dev = TestVolumes.FromImage(image);
        Superblock sb = Media.Geometry(dev);
        Media.TxInfo last = Media.Transactions(dev, sb)[^1];
        byte[] tx = Media.Read(dev, last.Offset, last.Length);
        int rec = JournalLog.TxHeaderSize;
        long itStart = sb.InodeTableStart * Layout.BlockSize, itEnd = itStart + sb.InodeCount * Layout.InodeSize;
        string fragment;
        switch (what)
        {
            case "targets the superblock":
                BinaryPrimitives.WriteInt64LittleEndian(tx.AsSpan(rec), 0);
                fragment = "record 0 targets device offset 0, outside the inode table";
                break;
            case "targets the journal":
                BinaryPrimitives.WriteInt64LittleEndian(tx.AsSpan(rec), sb.JournalHeaderOffset);
                fragment = $"record 0 targets device offset {sb.JournalHeaderOffset}, outside the inode table";
                break;
            case "straddles the end of the inode table":
                BinaryPrimitives.WriteInt64LittleEndian(tx.AsSpan(rec), itEnd - 100);
                fragment = $"record 0 targets device offset {itEnd - 100}, outside the inode table";
                break;
            case "targets the data area":
                BinaryPrimitives.WriteInt64LittleEndian(tx.AsSpan(rec), sb.DataStart * Layout.BlockSize);
                fragment = "outside the inode table";
                break;
            case "negative offset":
                BinaryPrimitives.WriteInt64LittleEndian(tx.AsSpan(rec), -Layout.InodeSize);
                fragment = $"record 0 targets device offset {-Layout.InodeSize}, outside the inode table";
                break;
            case "zero length":
                BinaryPrimitives.WriteInt32LittleEndian(tx.AsSpan(rec + 8), 0);
                fragment = "record 0 has bad length 0";
                break;
            case "record count past the records":
                BinaryPrimitives.WriteUInt32LittleEndian(tx.AsSpan(4), (uint)last.RecordCount + 1);
                fragment = $"record {last.RecordCount} runs past the transaction";
                break;
            case "records short of the commit":
                BinaryPrimitives.WriteUInt32LittleEndian(tx.AsSpan(4), (uint)last.RecordCount - 1);
                fragment = "records do not fill the transaction";
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(what));
        }
        Media.FixTransactionCrc(tx);
        Media.Write(dev, last.Offset, tx);
        byte[] sbBefore = Media.Read(dev, 0, Layout.BlockSize), headerBefore = Media.Read(dev, sb.JournalHeaderOffset, Layout.BlockSize);
        byte[] dataBefore = Media.Read(dev, sb.DataStart * Layout.BlockSize, Layout.BlockSize);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal($"journal transaction {last.Seq}", e.Structure);
        Assert.Equal(last.Offset, e.Offset);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.Equal(sbBefore, Media.Read(dev, 0, Layout.BlockSize));
        Assert.Equal(headerBefore, Media.Read(dev, sb.JournalHeaderOffset, Layout.BlockSize));
        Assert.Equal(dataBefore, Media.Read(dev, sb.DataStart * Layout.BlockSize, Layout.BlockSize));
        // The same answer every time (the failed mount did not move the journal on).
        var again = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal(e.Message, again.Message);
        // fsck refuses it cleanly too.
        Assert.ThrowsAny<DaxFsException>(() => Fsck.Check(dev));
    }

    /// <summary>A checkpoint reads the log back: every slot gets its newest image (the later of two records for one
    /// slot in one transaction, too); with a record that is not a whole inode image in the log it replays in order,
    /// so a partial record lands on the image before it and a later whole image replaces it.</summary>
    [Fact]
    public void CheckpointWritesTheNewestBytesOfEverySlotHome()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        v.Dispose();
        using (dev)
        {
            Superblock sb = Media.Geometry(dev);
            JournalLog j = JournalLog.Recover(dev, sb, null, out _);
            long a = sb.InodeOffset(20), b = sb.InodeOffset(21), c = sb.InodeOffset(22);
            static byte[] Img(byte x) => Enumerable.Repeat(x, Layout.InodeSize).ToArray();
            j.Commit([(a, Img(0x11)), (b, Img(0xB1))]);
            j.Commit([(a, Img(0x22))]);
            j.Commit([(c, Img(0xC1)), (a, Img(0x33))]);
            j.Commit([(b, Img(0xB2)), (b, Img(0xB3))]);
            j.Checkpoint();
            Assert.Equal(Img(0x33), Media.Read(dev, a, Layout.InodeSize));
            Assert.Equal(Img(0xB3), Media.Read(dev, b, Layout.InodeSize));
            Assert.Equal(Img(0xC1), Media.Read(dev, c, Layout.InodeSize));

            j.Commit([(a, Img(0x44))]);
            j.Commit([(a + 16, Enumerable.Repeat((byte)0xAB, 8).ToArray())]);
            j.Commit([(c + 8, Enumerable.Repeat((byte)0xCD, 8).ToArray())]);
            j.Commit([(c, Img(0xC2))]);
            j.Commit([(b, Img(0xB4))]);
            j.Checkpoint();
            byte[] wantA = Img(0x44);
            wantA.AsSpan(16, 8).Fill(0xAB);
            Assert.Equal(wantA, Media.Read(dev, a, Layout.InodeSize));
            Assert.Equal(Img(0xB4), Media.Read(dev, b, Layout.InodeSize));
            Assert.Equal(Img(0xC2), Media.Read(dev, c, Layout.InodeSize));

            // Back to whole images only: the newest again, and nothing left from the last batch's replay.
            j.Commit([(b, Img(0xB5))]);
            j.Commit([(b, Img(0xB6)), (a, Img(0x55))]);
            j.Checkpoint();
            Assert.Equal(Img(0x55), Media.Read(dev, a, Layout.InodeSize));
            Assert.Equal(Img(0xB6), Media.Read(dev, b, Layout.InodeSize));
            Assert.Equal(Img(0xC2), Media.Read(dev, c, Layout.InodeSize));
            Assert.Equal(0, j.Used);
        }
    }

    [Fact]
    public void HandMadeTransactionAppendedToTheLogIsReplayed()
    {
        // The test's encoder and the core agree on the format: a transaction built here is replayed.
        var (image, _, commits) = CrashImage();
        using PmemDevice dev = TestVolumes.FromImage(image);
        Superblock sb = Media.Geometry(dev);
        Media.TxInfo last = Media.Transactions(dev, sb)[^1];
        ulong ino = 1;
        InodeRecord root;
        using (PmemDevice probe = TestVolumes.FromImage(image))
        using (DaxVolume.Mount(probe))
            root = Media.ReadInode(probe, Media.Geometry(probe), ino);
        root.Uid = 4242;
        var img = new byte[Layout.InodeSize];
        root.Encode(img, ino);
        byte[] tx = Media.EncodeTransaction([(sb.InodeOffset(ino), img)], last.Seq + 1);
        Media.Write(dev, last.Offset + ((last.Length + 63) & ~63), tx);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(commits + 1, v.ReplayedTransactions);
        Assert.Equal(4242u, v.GetAttributes(ino).Uid);
    }

    [Fact]
    public void StaleTransactionsOfAnOlderLogAreNotReplayed()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            byte[] image;
            List<string> expected;
            using (v)
            {
                Workload(v);
                v.Checkpoint(); // the header moves on; the old transactions stay in the log's bytes
                v.CreateFile("/after").Dispose();
                image = TestVolumes.Snapshot(dev);
                expected = VolumeWalk.Dump(v);
            }
            using PmemDevice copy = TestVolumes.FromImage(image);
            Superblock sb = Media.Geometry(copy);
            var live = Media.Transactions(copy, sb);
            Assert.Single(live);
            long next = live[0].Offset + ((live[0].Length + 63) & ~63);
            bool stale = false;
            for (long p = next; p < next + (64 << 10) && !stale; p += 64)
                stale = BinaryPrimitives.ReadUInt32LittleEndian(Media.Read(copy, p, 4)) == Layout.TxMagic;
            Assert.True(stale, "older transactions should still lie in the log's bytes");
            using var v2 = DaxVolume.Mount(copy);
            Assert.Equal(1, v2.ReplayedTransactions);
            Assert.Equal(expected, VolumeWalk.Dump(v2));
        }
    }
}
