using System.Buffers.Binary;
using DaxFs.Format;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests.Corruption;

/// <summary>Images that are mostly garbage: random bytes; random bytes behind a valid superblock (and a valid journal
/// header, a plausible transaction, an inode table of random records with valid checksums); a valid volume with
/// whole blocks overwritten by random bytes or by a copy of another block (a misdirected write). Mount and fsck
/// must fail cleanly or succeed, never throw anything else, never hang.</summary>
public class GarbageImageTests(ITestOutputHelper output)
{
    public const int RandomCases = 60;
    public const int StructuredCases = 60;
    public const int OverwrittenCases = 130;
    private const long SmallDevice = 2 << 20;

    [Fact]
    public void RandomBytesAreRefused()
    {
        int baseSeed = FuzzHarness.BaseSeed();
        var report = new FuzzReport(output, "random images", baseSeed);
        for (int i = 0; i < RandomCases; i++)
        {
            int seed = FuzzHarness.CaseSeed(baseSeed, 10, i);
            var rng = new Random(seed);
            var img = new byte[SmallDevice];
            rng.NextBytes(img);
            if (i % 3 == 0)
                BinaryPrimitives.WriteUInt64LittleEndian(img, Layout.SuperMagic); // get past the magic: the CRC must refuse it
            CaseOutcome o = FuzzHarness.Run(img);
            report.Add(o, () => $"case {i} seed {seed}: random image");
            Assert.False(o.Mounted, $"case {i} seed {seed}: a random image mounted");
        }
        report.Finish();
    }

    [Fact]
    public void RandomBytesBehindAValidSuperblockFailCleanly()
    {
        int baseSeed = FuzzHarness.BaseSeed();
        var report = new FuzzReport(output, "random images with a valid superblock", baseSeed);
        for (int i = 0; i < StructuredCases; i++)
        {
            int seed = FuzzHarness.CaseSeed(baseSeed, 11, i);
            int variant = i % 4;
            byte[] img = StructuredGarbage(new Random(seed), variant);
            CaseOutcome o = FuzzHarness.Run(img, repair: true);
            report.Add(o, () => $"case {i} seed {seed}: random image with valid superblock, variant {variant}");
        }
        report.Finish();
    }

    [Fact]
    public void ValidVolumeWithBlocksOverwrittenFailsCleanly()
    {
        int baseSeed = FuzzHarness.BaseSeed();
        var report = new FuzzReport(output, "overwritten blocks", baseSeed);
        RichImage rich = RichImage.Instance;
        long[] metaBlocks = rich.CleanRegions.SelectMany(r => Enumerable.Range(0, (int)((r.Offset % Layout.BlockSize + r.Length + Layout.BlockSize - 1) / Layout.BlockSize))
            .Select(k => r.Offset / Layout.BlockSize + k)).Distinct().Order().ToArray();
        long blocks = rich.Clean.Length / Layout.BlockSize;
        for (int i = 0; i < OverwrittenCases; i++)
        {
            int seed = FuzzHarness.CaseSeed(baseSeed, 12, i);
            var rng = new Random(seed);
            byte[] img = rich.Clean.ToArray();
            var what = new List<string>();
            int n = rng.Next(1, 4);
            for (int k = 0; k < n; k++)
            {
                long block = rng.Next(2) == 0 ? metaBlocks[rng.Next(metaBlocks.Length)] : rng.NextInt64(blocks);
                Span<byte> dst = img.AsSpan((int)(block * Layout.BlockSize), Layout.BlockSize);
                if (rng.Next(3) == 0)
                {
                    long from = metaBlocks[rng.Next(metaBlocks.Length)];
                    rich.Clean.AsSpan((int)(from * Layout.BlockSize), Layout.BlockSize).CopyTo(dst);
                    what.Add($"block {block} <- copy of block {from}");
                }
                else
                {
                    rng.NextBytes(dst);
                    what.Add($"block {block} <- random");
                }
            }
            CaseOutcome o = FuzzHarness.Run(img, repair: true, writes: true);
            report.Add(o, () => $"case {i} seed {seed}: {string.Join(", ", what)}");
        }
        report.Finish();
    }

    /// <summary>Random bytes with, by <paramref name="variant"/>: 0 a valid superblock; 1 and a valid journal
    /// header (both superblocks); 2 and a committed transaction of random records; 3 and an inode table of random
    /// but checksummed records with a valid root.</summary>
    internal static byte[] StructuredGarbage(Random rng, int variant)
    {
        var img = new byte[SmallDevice];
        rng.NextBytes(img);
        Superblock sb = Superblock.ForDevice(SmallDevice, null, null, 0);
        byte[] enc = sb.Encode();
        enc.CopyTo(img, 0);
        if (variant == 0)
            return img;
        enc.CopyTo(img, (int)(SmallDevice - Layout.BlockSize));
        // Journal header: slot 0 valid (next sequence 1), slot 1 garbage.
        Span<byte> slot = img.AsSpan((int)sb.JournalHeaderOffset, Media.JournalSlotSize);
        slot.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(slot, Layout.JournalMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[8..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(slot[16..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[60..], Crc.Compute(slot[..60]));
        long itStart = sb.InodeTableStart * Layout.BlockSize;
        long itBytes = sb.InodeCount * Layout.InodeSize;
        if (variant == 2)
        {
            var records = new List<(long, byte[])>();
            for (int k = rng.Next(1, 4); k > 0; k--)
            {
                int len = rng.Next(3) switch { 0 => Layout.InodeSize, 1 => rng.Next(1, 64), _ => rng.Next(1, 600) };
                long off = rng.Next(4) == 0 ? rng.NextInt64(SmallDevice) : itStart + rng.NextInt64(Math.Max(1, itBytes - len));
                var data = new byte[len];
                rng.NextBytes(data);
                records.Add((off, data));
            }
            Media.EncodeTransaction(records, 1).CopyTo(img, (int)sb.LogOffset);
        }
        else
        {
            img.AsSpan((int)sb.LogOffset, Layout.BlockSize).Clear();
        }
        if (variant == 3)
        {
            for (ulong ino = 1; ino <= (ulong)sb.InodeCount; ino++)
            {
                Span<byte> s = img.AsSpan((int)sb.InodeOffset(ino), Layout.InodeSize);
                if (ino != 1 && rng.Next(5) < 2)
                {
                    s.Clear();
                    continue;
                }
                InodeRecord rec = RandomRecord(rng, sb, ino);
                rec.Encode(s, ino);
            }
        }
        return img;
    }

    /// <summary>An inode record of random but mostly plausible fields (so that validation goes deep).</summary>
    internal static InodeRecord RandomRecord(Random rng, Superblock sb, ulong ino)
    {
        uint[] types = [FileModes.Regular, FileModes.Directory, FileModes.Symlink, FileModes.Fifo, FileModes.CharDevice, 0xE000];
        uint type = ino == 1 ? FileModes.Directory : types[rng.Next(types.Length)];
        bool sane = rng.Next(3) != 0;
        long Block() => rng.Next(4) == 0 ? 0 : rng.NextInt64(sane ? sb.DataStart : 0, sane ? sb.DataEnd : sb.BlockCount + 5);
        var rec = new InodeRecord
        {
            Mode = type | (uint)rng.Next(0x1000),
            Nlink = (uint)rng.Next(0, 4),
            Size = rng.Next(5) switch { 0 => 0, 1 => rng.Next(1, 120), 2 => rng.Next(1 << 22), 3 => rng.NextInt64(Layout.MaxFileBytes), _ => rng.NextInt64() },
            Blocks = sane ? rng.Next(0, 8) : rng.NextInt64(),
            Generation = (uint)rng.Next(),
            XattrBlock = rng.Next(3) == 0 ? Block() : 0,
            Parent = (ulong)rng.Next(1, (int)sb.InodeCount + 1),
            NextDirentId = (ulong)rng.Next(3, 200),
            LogEpoch = (uint)rng.Next(3),
            Flags = (uint)(type == FileModes.Symlink && rng.Next(2) == 0 ? 1 : 0),
            Inline = rng.Next(2) == 0 ? null : RichImage.Pattern(InodeRecord.InlineSize, rng.Next()),
        };
        long tail = Block();
        if (tail != 0)
        {
            rec.LogTailBlock = tail;
            rec.LogTailUsed = sane ? 64 + 8 * rng.Next(0, 504) : rng.Next();
            rec.LogBlockCount = sane ? rng.Next(1, 4) : rng.Next();
            rec.LogRecordCount = sane ? rng.Next(0, 60) : rng.NextInt64();
        }
        return rec;
    }
}
