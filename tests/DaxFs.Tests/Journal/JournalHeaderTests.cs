using System.Buffers.Binary;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Corruption;
using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests.Journal;

/// <summary>The journal header's two alternating slots: a reset rewrites the older slot, so that a torn write of it
/// leaves the current one; either slot corrupted, the other is used; both corrupted, a clear error.</summary>
public class JournalHeaderTests
{
    private const long Bytes = 16 << 20;

    /// <summary>Captures the device at the first store into the journal header and tears that store: the state a
    /// power cut in the middle of the header write leaves (the first 16 bytes of the slot new, the rest old).</summary>
    private sealed class TearHeaderWrite(PmemDevice dev, long headerOffset) : IPmemObserver
    {
        private readonly byte[] _old = dev.GetSpan(headerOffset, Layout.BlockSize).ToArray();

        public byte[]? Torn { get; private set; }

        public int Slot { get; private set; } = -1;

        public void OnStore(long offset, long length, bool nonTemporal)
        {
            if (Torn is not null || offset >= headerOffset + 2 * Media.JournalSlotSize || offset + length <= headerOffset)
                return;
            byte[] image = dev.GetSpan(0, checked((int)dev.Length)).ToArray();
            long rel = offset - headerOffset;
            for (long k = 16; k < length && rel + k < Layout.BlockSize; k++)
                image[offset + k] = _old[rel + k];
            Slot = (int)(rel / Media.JournalSlotSize);
            Torn = image;
        }

        public void OnFlush(long offset, long length, bool invalidate)
        {
        }

        public void OnDrain()
        {
        }
    }

    private static void Changes(DaxVolume v, int n)
    {
        for (int k = 0; k < n; k++)
            v.CreateFile($"/f{Guid.NewGuid():N}").Dispose();
    }

    /// <summary>Each reset of the header (checkpoint, replay) must rewrite the slot that is not current, leaving the
    /// current one intact -- the first reset after mkfs included. BUG-4.</summary>
    [Fact]
    public void EveryHeaderResetRewritesTheOlderSlot()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        using (v)
        {
            Superblock sb = v.Geometry;
            for (int round = 0; round < 4; round++)
            {
                Media.JournalSlot current = Media.CurrentSlot(dev, sb) ?? throw new InvalidOperationException("no valid header slot");
                byte[] before = Media.Read(dev, sb.JournalHeaderOffset, 2 * Media.JournalSlotSize);
                Changes(v, 3);
                v.Checkpoint();
                byte[] after = Media.Read(dev, sb.JournalHeaderOffset, 2 * Media.JournalSlotSize);
                Media.JournalSlot now = Media.CurrentSlot(dev, sb)!;
                Assert.True(now.SlotSeq > current.SlotSeq, $"round {round}: the header did not move on");
                Assert.True(now.Index != current.Index,
                    $"round {round}: the reset rewrote the current slot {current.Index} (slot sequence {current.SlotSeq} -> {now.SlotSeq}) instead of the older one: a torn write there leaves no valid header");
                int keep = current.Index * Media.JournalSlotSize;
                Assert.True(before.AsSpan(keep, Media.JournalSlotSize).SequenceEqual(after.AsSpan(keep, Media.JournalSlotSize)), $"round {round}: the previous current slot changed");
            }
        }
    }

    /// <summary>A power cut while a checkpoint writes the header: the volume must mount with everything committed.
    /// On the first checkpoint after mkfs and on later ones. BUG-4 for the first.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void TornHeaderWriteDuringACheckpointLosesNothing(int earlierCheckpoints)
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            List<string> expected;
            TearHeaderWrite tear;
            using (v)
            {
                for (int k = 0; k < earlierCheckpoints; k++)
                {
                    Changes(v, 2);
                    v.Checkpoint();
                }
                JournalTests.Workload(v);
                expected = VolumeWalk.Dump(v);
                tear = new TearHeaderWrite(dev, v.Geometry.JournalHeaderOffset);
                dev.Observer = tear;
                v.Checkpoint();
                dev.Observer = null;
            }
            Assert.NotNull(tear.Torn);
            using PmemDevice crashed = TestVolumes.FromImage(tear.Torn!);
            DaxVolume after;
            try
            {
                after = DaxVolume.Mount(crashed);
            }
            catch (DaxFsCorruptedException e)
            {
                Assert.Fail($"after {earlierCheckpoints} earlier checkpoints, a torn write of header slot {tear.Slot} left an unmountable volume: {e.Message}");
                return;
            }
            using (after)
                Assert.Equal(expected, VolumeWalk.Dump(after));
        }
    }

    /// <summary>As above, for the header reset a mount makes after replaying a crash image.</summary>
    [Fact]
    public void TornHeaderWriteDuringReplayLosesNothing()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        byte[] image;
        List<string> expected;
        using (dev)
        using (v)
        {
            Changes(v, 2);
            v.Checkpoint();
            Changes(v, 2);
            v.Checkpoint(); // both slots valid from here on
            JournalTests.Workload(v);
            image = TestVolumes.Snapshot(dev);
            expected = VolumeWalk.Dump(v);
        }
        using PmemDevice replaying = TestVolumes.FromImage(image);
        var tear = new TearHeaderWrite(replaying, Media.Geometry(replaying).JournalHeaderOffset);
        replaying.Observer = tear;
        using (DaxVolume.Mount(replaying))
            replaying.Observer = null;
        Assert.NotNull(tear.Torn);
        using PmemDevice crashed = TestVolumes.FromImage(tear.Torn!);
        using var after = DaxVolume.Mount(crashed);
        Assert.True(after.ReplayedTransactions > 0, "the replay must run again: its header reset never happened");
        Assert.Equal(expected, VolumeWalk.Dump(after));
    }

    [Theory]
    [InlineData("current")]
    [InlineData("older")]
    public void EitherSlotCorruptedTheOtherIsUsed(string which)
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            List<string> expected;
            Superblock sb;
            using (v)
            {
                sb = v.Geometry;
                for (int k = 0; k < 3; k++)
                {
                    Changes(v, 2);
                    v.Checkpoint();
                }
                expected = VolumeWalk.Dump(v);
            }
            var slots = Media.JournalSlots(dev, sb);
            Assert.All(slots, s => Assert.True(s.Valid, $"slot {s.Index} should be valid after three checkpoints"));
            Media.JournalSlot current = Media.CurrentSlot(dev, sb)!;
            Media.JournalSlot target = which == "current" ? current : slots[1 - current.Index];
            long at = sb.JournalHeaderOffset + target.Index * Media.JournalSlotSize + 20;
            Media.WriteByte(dev, at, (byte)(Media.ReadByte(dev, at) ^ 0x33));
            Media.JournalSlot used = Media.CurrentSlot(dev, sb)!;
            Assert.Equal(1 - target.Index, used.Index);
            using (var again = DaxVolume.Mount(dev))
            {
                Assert.Equal(expected, VolumeWalk.Dump(again));
                again.CreateFile("/new").Dispose();
            }
            using var third = DaxVolume.Mount(dev);
            Assert.True(third.Exists("/new"));
        }
    }

    [Fact]
    public void BothSlotsCorruptedIsAClearError()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            v.Dispose();
            Superblock sb = Media.Geometry(dev);
            dev.FillPersist(sb.JournalHeaderOffset, 2 * Media.JournalSlotSize, 0x5A);
            var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
            Assert.Equal("journal header", e.Structure);
            Assert.Equal(sb.JournalHeaderOffset, e.Offset);
            Assert.Contains("neither header slot is valid", e.Message, StringComparison.Ordinal);
            Assert.ThrowsAny<DaxFsException>(() => DaxFs.Check.Fsck.Check(dev));
        }
    }

    [Fact]
    public void SlotChecksumCoversItsFields()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            using (v)
            {
                Changes(v, 1);
                v.Checkpoint();
                Changes(v, 1);
                v.Checkpoint();
            }
            Superblock sb = Media.Geometry(dev);
            Media.JournalSlot current = Media.CurrentSlot(dev, sb)!;
            // A slot whose sequence was bumped without its checksum is not taken as current.
            long seqAt = sb.JournalHeaderOffset + (1 - current.Index) * Media.JournalSlotSize + 8;
            BinaryPrimitives.WriteUInt64LittleEndian(Media.Read(dev, seqAt, 8), 0);
            dev.CopyPersist(seqAt, BitConverter.GetBytes(current.SlotSeq + 100));
            Assert.Equal(current.Index, Media.CurrentSlot(dev, sb)!.Index);
            using var again = DaxVolume.Mount(dev);
            Assert.Equal(0, again.ReplayedTransactions);
        }
    }
}
