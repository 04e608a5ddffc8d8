using System.Buffers.Binary;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests.Corruption;

/// <summary>Corruptions that get past the checksums: a random field of an inode slot, a log record (in a block or
/// inline), a log block header or an xattr block set to an edge value, with the structure's checksum recomputed --
/// what a bug writing a wrong value, or a crafted image, looks like. Mount, fsck and fsck --repair must stay clean.</summary>
public class ChecksummedMutationTests(ITestOutputHelper output)
{
    public const int Cases = 150;

    private static readonly (int Offset, int Width, string Name)[] InodeFields =
    [
        (0, 4, "mode"), (4, 4, "nlink"), (16, 8, "size"), (56, 4, "generation"), (60, 4, "flags"), (64, 8, "blocks"),
        (72, 8, "rdev"), (80, 8, "xattr block"), (88, 8, "log tail block"), (96, 4, "log tail used"), (100, 4, "log block count"),
        (104, 8, "log record count"), (112, 8, "next entry id"), (120, 8, "parent"), (128, 8, "inline 0"), (136, 8, "inline 8"),
        (248, 4, "log epoch"),
    ];

    private static readonly (int Offset, int Width, string Name)[] HeaderFields =
    [
        (4, 4, "epoch"), (8, 8, "owner"), (16, 8, "prev"), (24, 8, "first record"), (32, 4, "block index"), (36, 4, "generation"),
    ];

    [Fact]
    public void FieldsWithValidChecksumsFailCleanly()
    {
        int baseSeed = FuzzHarness.BaseSeed();
        var report = new FuzzReport(output, "checksummed mutations", baseSeed);
        byte[] baseImage = RichImage.Instance.Clean;
        for (int i = 0; i < Cases; i++)
        {
            int seed = FuzzHarness.CaseSeed(baseSeed, 20, i);
            string what = "";
            byte[] img;
            using (PmemDevice dev = TestVolumes.FromImage(baseImage))
            {
                what = Mutate(dev, new Random(seed));
                img = TestVolumes.Snapshot(dev);
            }
            CaseOutcome o = FuzzHarness.Run(img, repair: true, writes: true);
            report.Add(o, () => $"case {i} seed {seed}: {what}");
        }
        report.Finish();
    }

    /// <summary>Applies one mutation; returns what it did.</summary>
    internal static string Mutate(PmemDevice dev, Random rng)
    {
        Superblock sb = Media.Geometry(dev);
        List<ulong> slots = Media.UsedSlots(dev, sb);
        ulong ino = slots[rng.Next(slots.Count)];
        InodeRecord rec = Media.ReadInode(dev, sb, ino);
        int kind = rng.Next(10);
        if (kind < 4)
        {
            var (off, width, name) = InodeFields[rng.Next(InodeFields.Length)];
            long value = 0;
            Media.PatchInodeRaw(dev, sb, ino, s =>
            {
                long old = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(s.AsSpan(off)) : BinaryPrimitives.ReadInt64LittleEndian(s.AsSpan(off));
                value = Edge(rng, old, sb, width);
                Media.SetField(s, off, width, value);
            }, fixCrc: true);
            return $"inode {ino} {name} (+{off}) = {value}";
        }
        if (kind < 8)
        {
            List<Media.LogRecordInfo> records;
            try
            {
                records = Media.ReadLog(dev, sb, ino).Records;
            }
            catch (Exception e) when (e is DaxFsCorruptedException or InvalidOperationException)
            {
                records = [];
            }
            if (records.Count == 0)
                return Mutate(dev, rng);
            Media.LogRecordInfo at = records[rng.Next(records.Count)];
            byte[] raw = Media.ReadLogBytes(dev, at);
            int field = rng.Next(6);
            string desc;
            switch (field)
            {
                case 0:
                    raw[2] = (byte)rng.Next(0, 9);
                    desc = $"type {raw[2]}";
                    break;
                case 1:
                    raw[3] = (byte)rng.Next(256);
                    desc = $"flags {raw[3]}";
                    break;
                case 5 when at.Record.Type == LogRecordType.DirAdd:
                    int p = 32 + rng.Next(Math.Max(1, at.Length - 32));
                    raw[p] = (byte)"/\0.x"[rng.Next(4)];
                    desc = $"name byte {p - 32} = {raw[p]}";
                    break;
                default:
                    int off = 8 * Math.Min(field - 1, (raw.Length - 8) / 8);
                    off = Math.Clamp(off, 8, raw.Length - 8);
                    long old = BinaryPrimitives.ReadInt64LittleEndian(raw.AsSpan(off));
                    long value = Edge(rng, old, sb, 8);
                    BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(off), value);
                    desc = $"payload +{off} = {value}";
                    break;
            }
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(4), Crc.ComputeSkipping(raw, 4, LogFormat.Seed(ino, rec.Generation, rec.LogEpoch, (ulong)at.Index)));
            Media.WriteLogBytes(dev, sb, ino, at, raw);
            return $"log record {at.Index} ({at.Record.Type}{(at.Inline ? ", inline" : "")}) of inode {ino}: {desc}";
        }
        if (kind == 8 && rec.LogTailBlock != 0)
        {
            List<long> blocks;
            try
            {
                blocks = Media.ReadLog(dev, sb, ino).Blocks;
            }
            catch (Exception e) when (e is DaxFsCorruptedException or InvalidOperationException)
            {
                blocks = [rec.LogTailBlock];
            }
            long block = blocks[rng.Next(blocks.Count)];
            var (off, width, name) = HeaderFields[rng.Next(HeaderFields.Length)];
            byte[] h = Media.Read(dev, block * Layout.BlockSize, LogFormat.HeaderSize);
            long old = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(off)) : BinaryPrimitives.ReadInt64LittleEndian(h.AsSpan(off));
            long value = Edge(rng, old, sb, width);
            Media.SetField(h, off, width, value);
            BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(60), Crc.Compute(h.AsSpan(0, 60)));
            Media.Write(dev, block * Layout.BlockSize, h);
            return $"log block {block} header of inode {ino}: {name} = {value}";
        }
        if (rec.XattrBlock != 0)
        {
            long at = rec.XattrBlock * Layout.BlockSize;
            byte[] x = Media.Read(dev, at, Layout.BlockSize);
            int used = Math.Clamp(BinaryPrimitives.ReadInt32LittleEndian(x.AsSpan(16)), XattrFormat.HeaderSize, Layout.BlockSize);
            string desc;
            switch (rng.Next(4))
            {
                case 0:
                    int count = rng.Next(-2, 300);
                    BinaryPrimitives.WriteInt32LittleEndian(x.AsSpan(4), count);
                    desc = $"count {count}";
                    break;
                case 1:
                    used = Math.Clamp(used + rng.Next(-40, 40), XattrFormat.HeaderSize, Layout.BlockSize);
                    BinaryPrimitives.WriteInt32LittleEndian(x.AsSpan(16), used);
                    desc = $"used {used}";
                    break;
                case 2:
                    x[XattrFormat.HeaderSize] = (byte)rng.Next(256);
                    desc = $"first name length {x[XattrFormat.HeaderSize]}";
                    break;
                default:
                    BinaryPrimitives.WriteUInt16LittleEndian(x.AsSpan(XattrFormat.HeaderSize + 2), (ushort)rng.Next(65536));
                    desc = "first value length";
                    break;
            }
            BinaryPrimitives.WriteUInt32LittleEndian(x.AsSpan(28), Crc.ComputeSkipping(x.AsSpan(0, used), 28));
            Media.Write(dev, at, x);
            return $"xattr block of inode {ino}: {desc}";
        }
        return Mutate(dev, rng);
    }

    /// <summary>An edge value for a field that held <paramref name="old"/>.</summary>
    private static long Edge(Random rng, long old, Superblock sb, int width)
    {
        long v = rng.Next(14) switch
        {
            0 => 0,
            1 => 1,
            2 => -1,
            3 => old + 1,
            4 => old - 1,
            5 => old ^ (1L << rng.Next(width * 8)),
            6 => rng.Next(0, 1000),
            7 => rng.NextInt64(sb.DataStart, sb.DataEnd),
            8 => sb.InodeCount + rng.Next(-1, 2),
            9 => sb.DataEnd + rng.Next(-1, 2),
            10 => int.MaxValue + (long)rng.Next(0, 3),
            11 => long.MaxValue - rng.Next(0, 3),
            12 => old * 2,
            _ => rng.NextInt64(),
        };
        return width == 4 ? (long)(uint)v : v;
    }
}
