using System.Buffers.Binary;
using DaxFs.Check;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Corruption;
using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests.Format;

/// <summary>Per-inode logs: a corrupted record or block header makes mount fail with a message naming the log
/// record or block (and its inode); records with valid checksums but impossible contents are refused too; xattr
/// blocks likewise.</summary>
public class LogTests
{
    private const long Bytes = 8 << 20;

    /// <summary>/file (six extent records: four spilled into a log block, the two newest inline), /dir (a
    /// two-block log of entries, some removed, and an inline tail), /other (data blocks to collide with), /x (an
    /// xattr block).</summary>
    private static readonly Lazy<(byte[] Image, ulong File, ulong Dir, ulong Other, ulong X)> Shared = new(() =>
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            ulong file, dir, other, x;
            using (v)
            {
                using (var f = v.CreateFile("/file"))
                {
                    for (int k = 0; k < 6; k++)
                        f.Write(k * 65536L, RichImage.Pattern(4096, 1 + k)); // one extent record each
                    file = f.Ino;
                }
                dir = v.CreateDirectory("/dir").Ino;
                for (int k = 0; k < 90; k++)
                    v.CreateFile($"/dir/an-entry-with-a-long-name-{k:D4}").Dispose();
                for (int k = 0; k < 90; k += 9)
                    v.Delete($"/dir/an-entry-with-a-long-name-{k:D4}");
                using (var f = v.CreateFile("/other"))
                {
                    f.Write(0, RichImage.Pattern(16384, 4));
                    other = f.Ino;
                }
                x = v.CreateFile("/x", 0x1A4).Ino;
                v.SetXattr(x, "user.k", [9, 8, 7]);
            }
            return (TestVolumes.Snapshot(dev), file, dir, other, x);
        }
    });

    private static PmemDevice Volume(out Superblock sb)
    {
        PmemDevice dev = TestVolumes.FromImage(Shared.Value.Image);
        sb = Media.Geometry(dev);
        return dev;
    }

    private static ulong File => Shared.Value.File;
    private static ulong Dir => Shared.Value.Dir;

    private static DaxFsCorruptedException MountFails(PmemDevice dev) =>
        Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());

    /// <summary>Fsck reports it too (without throwing), and a repair leaves a clean volume that mounts.</summary>
    private static void FsckReportsAndRepairs(PmemDevice dev, string fragment)
    {
        FsckReport r = Fsck.Check(dev);
        Assert.Contains(r.Errors, e => e.Contains(fragment, StringComparison.Ordinal));
        FsckReport fixedUp = Fsck.Check(dev, repair: true);
        Assert.True(fixedUp.Clean, "after repair: " + string.Join("\n", fixedUp.Errors));
        using var v = DaxVolume.Mount(dev);
        VolumeWalk.Exercise(v);
    }

    [Fact]
    public void ValidLogsDecode()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        var (fileBlocks, fileRecords) = Media.ReadLog(dev, sb, File);
        var (dirBlocks, dirRecords) = Media.ReadLog(dev, sb, Dir);
        Assert.Single(fileBlocks);
        Assert.Equal(6, fileRecords.Count);
        Assert.Equal(4, fileRecords.Count(r => !r.Inline)); // the inline area filled up and spilled into a block
        Assert.Equal(2, fileRecords.Count(r => r.Inline));
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (long)i), fileRecords.Select(r => r.Index));
        Assert.True(dirBlocks.Count >= 2, $"the directory log should span blocks, has {dirBlocks.Count}");
        Assert.Contains(dirRecords, r => r.Record.Type == LogRecordType.DirRemove);
        Assert.True(Fsck.Check(dev).Clean);
    }

    [Theory]
    [InlineData(8)]   // payload: file block
    [InlineData(16)]  // payload: device block
    [InlineData(4)]   // the record's own checksum
    [InlineData(3)]   // flags
    public void FlippedByteInARecordNamesTheRecord(int at)
    {
        using PmemDevice dev = Volume(out Superblock sb);
        Media.LogRecordInfo rec = Media.BlockRecords(dev, sb, File)[1];
        Media.WriteByte(dev, rec.Offset + at, (byte)(Media.ReadByte(dev, rec.Offset + at) ^ 0x21));
        var e = MountFails(dev);
        Assert.Equal($"log record {rec.Index} of inode {File}", e.Structure);
        Assert.Equal(rec.Offset, e.Offset);
        Assert.Contains("record checksum mismatch", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, $"log record {rec.Index} of inode {File}");
    }

    [Fact]
    public void CorruptedInlineRecordNamesTheRecord()
    {
        // The newest records live in the inode: a bad one (inode checksum recomputed) names the record.
        using PmemDevice dev = Volume(out Superblock sb);
        Media.LogRecordInfo rec = Media.ReadLog(dev, sb, File).Records.Last(r => r.Inline);
        byte[] raw = Media.ReadLogBytes(dev, rec);
        raw[20] ^= 0x40;
        Media.WriteLogBytes(dev, sb, File, rec, raw);
        var e = MountFails(dev);
        Assert.Equal($"log record {rec.Index} of inode {File}", e.Structure);
        Assert.Equal(rec.Offset, e.Offset);
        Assert.Contains("record checksum mismatch", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, $"log record {rec.Index} of inode {File}");
    }

    [Fact]
    public void CorruptedInlineRecordLengthNamesTheInlineLog()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        Media.LogRecordInfo rec = Media.ReadLog(dev, sb, File).Records.First(r => r.Inline);
        byte[] raw = Media.ReadLogBytes(dev, rec);
        raw[0] = 9; // not a multiple of 8
        Media.WriteLogBytes(dev, sb, File, rec, raw);
        var e = MountFails(dev);
        Assert.Equal($"inline log of inode {File}", e.Structure);
        Assert.Contains("record length 9 is invalid", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, $"inline log of inode {File}");
    }

    [Fact]
    public void InlineRecordWithStaleInodeChecksumIsCaughtByTheInode()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        Media.LogRecordInfo rec = Media.ReadLog(dev, sb, File).Records.First(r => r.Inline);
        Media.WriteByte(dev, rec.Offset + 9, (byte)(Media.ReadByte(dev, rec.Offset + 9) ^ 1));
        var e = MountFails(dev);
        Assert.Equal($"inode {File}", e.Structure);
        Assert.Contains("checksum 0x", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadRecordLengthNamesTheRecord()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        Media.LogRecordInfo rec = Media.BlockRecords(dev, sb, Dir)[5];
        dev.CopyPersist(rec.Offset, [12, 0]);
        var e = MountFails(dev);
        Assert.Equal($"log record {rec.Index} of inode {Dir}", e.Structure);
        Assert.Contains("record length 12 is invalid", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, "record length 12 is invalid");
    }

    [Fact]
    public void RecordMovedToAnotherIndexDoesNotValidate()
    {
        // The record checksum is seeded with its index: swapping two records of the same size is caught.
        using PmemDevice dev = Volume(out Superblock sb);
        var recs = Media.BlockRecords(dev, sb, File);
        Media.LogRecordInfo a = recs[0], b = recs.First(r => r.Index > 0 && r.Length == a.Length);
        byte[] ab = Media.Read(dev, a.Offset, a.Length), bb = Media.Read(dev, b.Offset, b.Length);
        Media.Write(dev, a.Offset, bb);
        Media.Write(dev, b.Offset, ab);
        var e = MountFails(dev);
        Assert.Equal($"log record 0 of inode {File}", e.Structure);
    }

    /// <summary>Records whose checksum is valid but whose contents are impossible (replacement, same length).</summary>
    public static TheoryData<string> RewrittenRecords() => new(
        "extent outside the data area", "extent past the largest file", "extent of zero blocks", "unknown record type",
        "entry for inode 0", "entry for an inode past the table", "entry name with a slash", "entry named dot-dot",
        "entry with an id past the directory's next id", "entry name length zero", "remove of an unknown entry");

    [Theory]
    [MemberData(nameof(RewrittenRecords))]
    public void RecordWithValidChecksumButImpossibleContentsIsRefused(string what)
    {
        using PmemDevice dev = Volume(out Superblock sb);
        var fileRecs = Media.ReadLog(dev, sb, File).Records;
        var dirRecs = Media.ReadLog(dev, sb, Dir).Records;
        Media.LogRecordInfo map = fileRecs.First(r => r.Record.Type == LogRecordType.ExtentMap);
        Media.LogRecordInfo add = dirRecs.First(r => r.Record.Type == LogRecordType.DirAdd);
        Media.LogRecordInfo remove = dirRecs.First(r => r.Record.Type == LogRecordType.DirRemove);
        LogRecord m = map.Record, d = add.Record;
        (ulong ino, Media.LogRecordInfo at, LogRecord rec, string fragment) c = what switch
        {
            "extent outside the data area" => (File, map, m with { B = (ulong)sb.InodeTableStart }, "are outside the data area"),
            "extent past the largest file" => (File, map, m with { A = (ulong)(Layout.MaxFileBytes / Layout.BlockSize) + 5 }, "file block range out of range"),
            "extent of zero blocks" => (File, map, m with { C = 0 }, "are outside the data area"),
            "unknown record type" => (File, map, m, "record type 9 with length 32 is unknown"),
            "entry for inode 0" => (Dir, add, d with { A = 0 }, "entry for inode 0"),
            "entry for an inode past the table" => (Dir, add, d with { A = (ulong)sb.InodeCount + 1 }, $"entry for inode {sb.InodeCount + 1}"),
            "entry name with a slash" => (Dir, add, d with { Name = Slashed(d.Name!) }, "entry name is not a valid name"),
            "entry named dot-dot" => (Dir, add, d, "entry name is not a valid name"),
            "entry with an id past the directory's next id" => (Dir, add, d with { B = 1_000_000 }, "with id 1000000 is out of range"),
            "entry name length zero" => (Dir, add, d, "directory entry name length 0 is invalid"),
            "remove of an unknown entry" => (Dir, remove, remove.Record with { A = 999_999 }, "removes entry id 999999, which does not exist"),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        if (what == "entry named dot-dot")
        {
            // Appended (a ".." entry encodes shorter than the names in the log), with an id the directory handed out.
            ulong id = Media.ReadInode(dev, sb, Dir).NextDirentId;
            Media.EditInode(dev, sb, Dir, r => r with { NextDirentId = id + 1 });
            Media.AppendLogRecord(dev, sb, Dir, d with { B = id, Name = ".."u8.ToArray() });
            c.at = Media.ReadLog(dev, sb, Dir).Records[^1];
        }
        else if (what is "entry name length zero" or "unknown record type")
        {
            // Not encodable: patch the bytes in place and fix the record checksum by hand.
            InodeRecord r = Media.ReadInode(dev, sb, c.ino);
            byte[] raw = Media.ReadLogBytes(dev, c.at);
            if (what == "unknown record type")
                raw[2] = 9;
            else
                BinaryPrimitives.WriteUInt16LittleEndian(raw.AsSpan(24), 0);
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(4), Crc.ComputeSkipping(raw, 4, LogFormat.Seed(c.ino, r.Generation, r.LogEpoch, (ulong)c.at.Index)));
            Media.WriteLogBytes(dev, sb, c.ino, c.at, raw);
        }
        else
        {
            Media.RewriteLogRecord(dev, sb, c.ino, c.at, c.rec);
        }
        var e = MountFails(dev);
        Assert.Contains($"log record {(e.Structure.StartsWith("log record of", StringComparison.Ordinal) ? "" : c.at.Index + " ")}of inode {c.ino}", e.Message, StringComparison.Ordinal);
        Assert.Contains(c.fragment, e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, c.fragment);
    }

    private static byte[] Slashed(byte[] name)
    {
        byte[] n = (byte[])name.Clone();
        n[n.Length / 2] = (byte)'/';
        return n;
    }

    [Fact]
    public void DirectoryRecordInAFileLogIsRefused()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        Media.AppendLogRecord(dev, sb, File, new LogRecord(LogRecordType.DirRemove, 0, 3, 0, 0, null));
        var e = MountFails(dev);
        Assert.Equal($"log record of inode {File}", e.Structure);
        Assert.Contains("record type DirRemove does not belong to a file", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, "does not belong to a file");
    }

    [Fact]
    public void FileRecordInADirectoryLogIsRefused()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        Media.AppendLogRecord(dev, sb, Dir, new LogRecord(LogRecordType.ExtentUnmap, 0, 0, 1, 0, null));
        var e = MountFails(dev);
        Assert.Contains("record type ExtentUnmap does not belong to a directory", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, "does not belong to a directory");
    }

    [Fact]
    public void DuplicateEntryNameIsRefused()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        InodeRecord dir = Media.ReadInode(dev, sb, Dir);
        LogRecord add = Media.ReadLog(dev, sb, Dir).Records.Last(r => r.Record.Type == LogRecordType.DirAdd).Record;
        Media.EditInode(dev, sb, Dir, r => r with { NextDirentId = r.NextDirentId + 1 });
        Media.AppendLogRecord(dev, sb, Dir, add with { B = dir.NextDirentId });
        var e = MountFails(dev);
        Assert.Contains("entry name appears twice", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, "entry name appears twice");
    }

    [Fact]
    public void ExtentOverAnotherFilesBlocksIsRefused()
    {
        // One of /file's map records (valid checksum) repointed at /other's blocks: two owners.
        using PmemDevice dev = Volume(out Superblock sb);
        LogRecord theirs = Media.ReadLog(dev, sb, Shared.Value.Other).Records.First(r => r.Record.Type == LogRecordType.ExtentMap).Record;
        Media.LogRecordInfo mine = Media.ReadLog(dev, sb, File).Records.First(r => r.Record.Type == LogRecordType.ExtentMap && r.Record.C <= theirs.C);
        Media.RewriteLogRecord(dev, sb, File, mine, mine.Record with { B = theirs.B });
        var e = MountFails(dev);
        Assert.Contains(e.Structure, new[] { $"inode {File}", $"inode {Shared.Value.Other}" }); // whichever claims second
        Assert.Contains(") is outside the data area or owned by another inode", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, "owned by another inode");
    }

    /// <summary>An ExtentMap record whose count wraps the 64-bit sums of the bound checks (A + C and B + C overflow
    /// to small numbers). Mount must refuse it as corruption; fsck must report it and a repair must get rid of it.
    /// BUG-3.</summary>
    [Fact]
    public void ExtentWhoseCountWrapsAroundIsRefusedAndRepaired()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        Media.AppendLogRecord(dev, sb, File, new LogRecord(LogRecordType.ExtentMap, 0, 200, (ulong)sb.DataStart + 40, ulong.MaxValue - 2, null));
        var e = MountFails(dev);
        Assert.Contains($"inode {File}", e.Message, StringComparison.Ordinal);
        FsckReport r = Fsck.Check(dev);
        Assert.False(r.Clean);
        FsckReport fixedUp = Fsck.Check(dev, repair: true);
        Assert.True(fixedUp.Clean, "after repair: " + string.Join("\n", fixedUp.Errors));
        using var v = DaxVolume.Mount(dev);
        VolumeWalk.Exercise(v);
    }

    // ---- block headers ----------------------------------------------------------------------------------------

    [Fact]
    public void BadHeaderMagicNamesTheBlock()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        long block = Media.ReadLog(dev, sb, Dir).Blocks[0];
        Media.WriteByte(dev, block * Layout.BlockSize, 0x00);
        var e = MountFails(dev);
        Assert.Equal($"log block 0 of inode {Dir}", e.Structure);
        Assert.Equal(block * Layout.BlockSize, e.Offset);
        Assert.Contains("bad magic", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, $"log block 0 of inode {Dir}");
    }

    [Theory]
    [InlineData(4)]   // epoch
    [InlineData(16)]  // prev block
    [InlineData(24)]  // first record
    [InlineData(60)]  // the checksum
    public void FlippedHeaderByteNamesTheBlock(int at)
    {
        using PmemDevice dev = Volume(out Superblock sb);
        var blocks = Media.ReadLog(dev, sb, Dir).Blocks;
        long block = blocks[^1];
        long off = block * Layout.BlockSize + at;
        Media.WriteByte(dev, off, (byte)(Media.ReadByte(dev, off) ^ 0x04));
        var e = MountFails(dev);
        Assert.Equal($"log block {blocks.Count - 1} of inode {Dir}", e.Structure);
        Assert.Contains("header checksum mismatch", e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, "header checksum mismatch");
    }

    public static TheoryData<string> RewrittenHeaders() => new(
        "another owner", "another generation", "another epoch", "block index out of order", "record numbering off",
        "head with a previous block", "tail chained outside the data area");

    [Theory]
    [MemberData(nameof(RewrittenHeaders))]
    public void HeaderWithValidChecksumButWrongContentsIsRefused(string what)
    {
        using PmemDevice dev = Volume(out Superblock sb);
        InodeRecord r = Media.ReadInode(dev, sb, Dir);
        var blocks = Media.ReadLog(dev, sb, Dir).Blocks;
        int k = blocks.Count - 1;
        long tail = blocks[k], prev = blocks[k - 1];
        long first = BinaryPrimitives.ReadInt64LittleEndian(Media.Read(dev, tail * Layout.BlockSize + 24, 8));
        (string structure, string fragment) = what switch
        {
            "another owner" => Header(tail, Dir + 1, r.Generation, r.LogEpoch, prev, first, k, k, "belongs to another inode, generation or epoch"),
            "another generation" => Header(tail, Dir, r.Generation + 1, r.LogEpoch, prev, first, k, k, "belongs to another inode, generation or epoch"),
            "another epoch" => Header(tail, Dir, r.Generation, r.LogEpoch + 1, prev, first, k, k, "belongs to another inode, generation or epoch"),
            "block index out of order" => Header(tail, Dir, r.Generation, r.LogEpoch, prev, first, k + 3, k, $"block index {k + 3} is out of order"),
            "record numbering off" => Header(tail, Dir, r.Generation, r.LogEpoch, prev, first + 1, k, k, $"record numbering {first + 1} does not follow"),
            "head with a previous block" => Header(blocks[0], Dir, r.Generation, r.LogEpoch, tail, 0, 0, 0, "the chain's length disagrees with the inode"),
            "tail chained outside the data area" => Header(tail, Dir, r.Generation, r.LogEpoch, 3, first, k, -1, $"log block {k - 1} is at block 3, outside the data area"),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };

        (string, string) Header(long block, ulong ino, uint gen, uint epoch, long p, long f, int index, int named, string frag)
        {
            Media.RewriteLogHeader(dev, block, ino, gen, epoch, p, f, index);
            return (named < 0 ? $"inode {Dir}" : $"log block {named} of inode {Dir}", frag);
        }

        var e = MountFails(dev);
        if (what == "record numbering off")
        {
            // The previous block is then read one record too far: either the numbering or that record is named.
            Assert.Matches($"^log (block {k}|record \\d+) of inode {Dir}$", e.Structure);
            FsckReportsAndRepairs(dev, $"of inode {Dir}");
            return;
        }
        Assert.Equal(structure, e.Structure);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, fragment);
    }

    // ---- xattr blocks -----------------------------------------------------------------------------------------

    [Theory]
    [InlineData(0, "bad magic")]
    [InlineData(33, "checksum mismatch")]
    [InlineData(17, "used length")]
    [InlineData(28, "checksum mismatch")]
    public void CorruptedXattrBlockNamesIt(int at, string fragment)
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong x = Shared.Value.X;
        long block = Media.ReadInode(dev, sb, x).XattrBlock;
        long off = block * Layout.BlockSize + at;
        Media.WriteByte(dev, off, (byte)(Media.ReadByte(dev, off) ^ 0x10));
        var e = MountFails(dev);
        Assert.Equal($"xattr block of inode {x}", e.Structure);
        Assert.Equal(block * Layout.BlockSize, e.Offset);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        FsckReportsAndRepairs(dev, $"xattr block of inode {x}");
    }

    [Fact]
    public void XattrBlockOfAnotherInodeIsRefused()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong x = Shared.Value.X;
        InodeRecord r = Media.ReadInode(dev, sb, x);
        byte[] block = XattrFormat.Encode([("user.k"u8.ToArray(), new byte[] { 1 })], x + 1, r.Generation);
        Media.Write(dev, r.XattrBlock * Layout.BlockSize, block);
        var e = MountFails(dev);
        Assert.Contains("belongs to another inode", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Appends that continue the file's last extent, and sequential copy-on-write into fresh blocks, replace
    /// the log's last (inline) record with a longer one instead of adding one per call: the log stays short, and a
    /// crash image taken while mounted (journal not checkpointed) replays to the same bytes, fsck clean.</summary>
    [Fact]
    public void ContinuingExtentsExtendTheLastRecord()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        using (v)
        {
            using var f = v.CreateFile("/appended");
            for (int k = 0; k < 100; k++)
                f.Write(k * 4096L, RichImage.Pattern(4096, k));
            InodeRecord r = v.Get(f.Ino).Rec;
            Assert.True(r.LogRecordCount <= 2, $"100 appends left {r.LogRecordCount} log records");
            Assert.Equal(0, r.LogBlockCount);
            for (int k = 10; k < 20; k++)
                f.Write(k * 4096L, RichImage.Pattern(4096, 1000 + k)); // copy on write, block after block
            r = v.Get(f.Ino).Rec;
            Assert.True(r.LogRecordCount <= 4, $"ten sequential overwrites left {r.LogRecordCount} log records");
            using PmemDevice crashed = TestVolumes.FromImage(TestVolumes.Snapshot(dev));
            using (var again = DaxVolume.Mount(crashed))
            {
                using var g = again.OpenFile("/appended");
                var buf = new byte[4096];
                for (int k = 0; k < 100; k++)
                {
                    Assert.Equal(4096, g.Read(k * 4096L, buf));
                    Assert.True(buf.AsSpan().SequenceEqual(RichImage.Pattern(4096, k is >= 10 and < 20 ? 1000 + k : k)), $"block {k}");
                }
            }
            Assert.True(Fsck.Check(crashed).Clean);
        }
    }

    /// <summary>A log is compacted once its dead records outnumber the live ones four to one: emptying a directory
    /// keeps its log within five times its live entries (plus the slack) after every unlink, and compacts it along
    /// the way; the emptied directory's log is short, and mounts.</summary>
    [Fact]
    public void ShrinkingDirectoryLogStaysBounded()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        using (v)
        {
            ulong dir = v.CreateDirectory("/shrinking").Ino;
            for (int k = 0; k < 300; k++)
                v.CreateFile($"/shrinking/entry-{k:D4}").Dispose();
            long most = 0;
            for (int k = 0; k < 300; k++)
            {
                v.Delete($"/shrinking/entry-{k:D4}");
                InodeRecord r = v.Get(dir).Rec;
                long live = 299 - k;
                Assert.True(r.LogRecordCount < 64 || r.LogRecordCount - live <= 4 * live + 32,
                    $"after {k + 1} unlinks: {r.LogRecordCount} records for {live} entries");
                most = Math.Max(most, r.LogRecordCount);
            }
            Assert.True(v.Get(dir).Rec.LogRecordCount < 64, $"the empty directory's log holds {v.Get(dir).Rec.LogRecordCount} records");
            Assert.True(most >= 300, "the log never held the entries");
            using PmemDevice crashed = TestVolumes.FromImage(TestVolumes.Snapshot(dev));
            using (var again = DaxVolume.Mount(crashed))
                Assert.Empty(again.List("/shrinking"));
        }
    }
}
