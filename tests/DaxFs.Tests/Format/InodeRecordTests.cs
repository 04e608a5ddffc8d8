using System.Buffers.Binary;
using System.Globalization;
using DaxFs.Check;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Corruption;
using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests.Format;

/// <summary>Inode record validation: every field of a 256-byte slot, corrupted with a correct checksum (the field's
/// own check refuses it, naming "inode N") and with a stale one (the checksum refuses it); then the checks mount
/// makes of an inode against its log, blocks and directory.</summary>
public class InodeRecordTests
{
    private const long Bytes = 8 << 20;

    /// <summary>The test volume: /dir (with entries: a block log and an inline tail), /file (five extents: a
    /// block log and an inline tail, an xattr), /link (inline symlink), /blink (a symlink with a block target),
    /// /dir/sub, /empty (no log at all); the root's log spilled into a block too.</summary>
    internal sealed record Sample(byte[] Image, Dictionary<string, ulong> Ino);

    private static readonly Lazy<Sample> Shared = new(() =>
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            var ino = new Dictionary<string, ulong>();
            using (v)
            {
                ino["dir"] = v.CreateDirectory("/dir").Ino;
                using (var f = v.CreateFile("/file"))
                {
                    for (int k = 0; k < 5; k++)
                        f.Write(k * 16384L, RichImage.Pattern(2048, 1 + k));
                    f.Write(100, RichImage.Pattern(50, 9));
                }
                ino["file"] = v.Resolve("/file");
                v.SetXattr(ino["file"], "user.a", [1, 2, 3]);
                ino["link"] = v.Symlink("/link", "file").Ino;
                ino["blink"] = v.Symlink("/blink", new string('y', 200)).Ino;
                ino["sub"] = v.CreateDirectory("/dir/sub").Ino;
                for (int k = 1; k <= 5; k++)
                    v.CreateFile($"/dir/f{k}").Dispose();
                ino["empty"] = v.CreateFile("/empty").Ino;
            }
            return new Sample(TestVolumes.Snapshot(dev), ino);
        }
    });

    internal static Sample Image => Shared.Value;

    internal static PmemDevice Volume() => TestVolumes.FromImage(Image.Image);

    /// <summary>A field corruption: which inode, the edit, the message expected ({0}: the inode's record after edit,
    /// formatted by <see cref="Fragment"/>).</summary>
    internal sealed record FieldCase(string Inode, Func<InodeRecord, Superblock, InodeRecord> Edit, Func<InodeRecord, string> Fragment);

    private static readonly Dictionary<string, FieldCase> Cases = new()
    {
        ["mode type"] = new("file", (r, _) => r with { Mode = 0xE000 | (r.Mode & FileModes.PermissionMask) },
            r => $"mode 0o{Convert.ToString(r.Mode, 8)} has no valid file type"),
        ["size negative"] = new("file", (r, _) => r with { Size = -1 }, _ => "size -1 is out of range"),
        ["size past the largest file"] = new("file", (r, _) => r with { Size = Layout.MaxFileBytes + 1 }, r => $"size {r.Size} is out of range"),
        ["blocks negative"] = new("file", (r, _) => r with { Blocks = -3 }, _ => "block count -3 is out of range"),
        ["blocks past the volume"] = new("file", (r, sb) => r with { Blocks = sb.BlockCount + 1 }, r => $"block count {r.Blocks} is out of range"),
        ["xattr block in the inode table"] = new("file", (r, sb) => r with { XattrBlock = sb.InodeTableStart }, r => $"xattr block {r.XattrBlock} is outside the data area"),
        ["xattr block past the data area"] = new("file", (r, sb) => r with { XattrBlock = sb.DataEnd }, r => $"xattr block {r.XattrBlock} is outside the data area"),
        ["xattr block negative"] = new("file", (r, _) => r with { XattrBlock = -1 }, _ => "xattr block -1 is outside the data area"),
        ["log tail block missing"] = new("file", (r, _) => r with { LogTailBlock = 0 }, _ => "has log records but no log block"),
        ["log tail block outside the data area"] = new("file", (r, _) => r with { LogTailBlock = 1 }, _ => "log tail block 1 is outside the data area"),
        ["log tail used below the header"] = new("file", (r, _) => r with { LogTailUsed = 8 }, _ => "log tail use 8 is out of range"),
        ["log tail used unaligned"] = new("file", (r, _) => r with { LogTailUsed = r.LogTailUsed + 4 }, r => $"log tail use {r.LogTailUsed} is out of range"),
        ["log tail used past the block"] = new("file", (r, _) => r with { LogTailUsed = Layout.BlockSize + 8 }, r => $"log tail use {r.LogTailUsed} is out of range"),
        ["log block count zero"] = new("file", (r, _) => r with { LogBlockCount = 0 }, _ => "log block count 0 is out of range"),
        ["log block count past the data area"] = new("file", (r, sb) => r with { LogBlockCount = (int)(sb.DataEnd - sb.DataStart + 1) }, r => $"log block count {r.LogBlockCount} is out of range"),
        ["log record count negative"] = new("file", (r, _) => r with { LogRecordCount = -1 }, _ => "log record count -1 is out of range"),
        ["log record count past the log's capacity"] = new("file", (r, _) => r with { LogRecordCount = r.LogBlockCount * 512L + r.InlineLogUsed / 16 + 1 }, r => $"log record count {r.LogRecordCount} is out of range"),
        ["log records without a log block"] = new("empty", (r, _) => r with { LogRecordCount = 1 }, _ => "has log records but no log block"),
        ["inline log length unaligned"] = new("file", (r, _) => InlineLog(r, r.InlineLogUsed + 4), r => $"inline log length {r.InlineLogUsed} is invalid"),
        ["inline log length past the inline area"] = new("file", (r, _) => InlineLog(r, InodeRecord.InlineSize + 8), r => $"inline log length {r.InlineLogUsed} is invalid"),
        ["inline log in an inline symlink"] = new("link", (r, _) => InlineLog(r, 16), _ => "inline log length 16 is invalid"),
        ["block symlink size past the longest target"] = new("blink", (r, _) => r with { Size = Layout.MaxSymlinkBytes + 1 }, r => $"target of {r.Size} bytes is"),
        ["directory parent zero"] = new("dir", (r, _) => r with { Parent = 0 }, _ => "parent inode 0 is out of range"),
        ["directory parent past the inode table"] = new("dir", (r, sb) => r with { Parent = (ulong)sb.InodeCount + 1 }, r => $"parent inode {r.Parent} is out of range"),
        ["inline flag on a regular file"] = new("empty", (r, _) => r with { Flags = r.Flags | InodeRecord.FlagInlineTarget }, r => $"inline symlink target of {r.Size} bytes is invalid"),
        ["inline flag on a file with an inline log"] = new("file", (r, _) => r with { Flags = r.Flags | InodeRecord.FlagInlineTarget }, r => $"inline log length {r.InlineLogUsed} is invalid"),
        ["inline symlink longer than the inline area"] = new("link", (r, _) => r with { Size = InodeRecord.InlineSize + 1 }, _ => "inline symlink target of 121 bytes is invalid"),
        ["inline symlink empty"] = new("link", (r, _) => r with { Size = 0 }, _ => "target of 0 bytes is"),
    };

    private static InodeRecord InlineLog(InodeRecord r, int used)
    {
        r.InlineLogUsed = used;
        return r;
    }

    public static TheoryData<string, bool> FieldCases()
    {
        var d = new TheoryData<string, bool>();
        foreach (string k in Cases.Keys)
        {
            d.Add(k, true);
            d.Add(k, false);
        }
        return d;
    }

    /// <summary>Encodes the edited record; with a stale checksum, the original slot's CRC is kept.</summary>
    private static byte[] EditedSlot(PmemDevice dev, ulong ino, FieldCase c, bool fixCrc, out InodeRecord edited)
    {
        Superblock sb = Media.Geometry(dev);
        byte[] original = Media.Read(dev, sb.InodeOffset(ino), Layout.InodeSize);
        edited = c.Edit(Media.ReadInode(dev, sb, ino), sb);
        var slot = new byte[Layout.InodeSize];
        edited.Encode(slot, ino);
        Assert.False(slot.AsSpan(0, Media.InodeCrcOffset).SequenceEqual(original.AsSpan(0, Media.InodeCrcOffset)), "the edit must change the slot");
        if (!fixCrc)
            original.AsSpan(Media.InodeCrcOffset).CopyTo(slot.AsSpan(Media.InodeCrcOffset));
        return slot;
    }

    [Theory]
    [MemberData(nameof(FieldCases))]
    public void CorruptedFieldIsRefusedNamingTheInode(string field, bool fixCrc)
    {
        FieldCase c = Cases[field];
        using PmemDevice dev = Volume();
        ulong ino = Image.Ino[c.Inode];
        Superblock sb = Media.Geometry(dev);
        byte[] slot = EditedSlot(dev, ino, c, fixCrc, out InodeRecord edited);
        string expected = fixCrc ? c.Fragment(edited) : "checksum 0x";

        // The decoder alone.
        var d = Assert.Throws<DaxFsCorruptedException>(() => InodeRecord.Decode(slot, ino, sb.InodeOffset(ino), sb));
        Assert.Equal($"inode {ino}", d.Structure);
        Assert.Contains(expected, d.Message, StringComparison.Ordinal);

        // Mount.
        Media.Write(dev, sb.InodeOffset(ino), slot);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal($"inode {ino}", e.Structure);
        Assert.Equal(sb.InodeOffset(ino), e.Offset);
        Assert.StartsWith($"corrupted inode {ino} at device offset {sb.InodeOffset(ino)}: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        if (!fixCrc)
            Assert.Matches("checksum 0x[0-9a-f]{8} does not match its contents \\(0x[0-9a-f]{8}\\)", e.Message);

        // Fsck reports the same problem (and does not throw).
        FsckReport r = Fsck.Check(dev);
        Assert.Contains(r.Errors, x => x.Contains($"inode {ino}", StringComparison.Ordinal) && x.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void ChecksumFieldItselfIsChecked()
    {
        using PmemDevice dev = Volume();
        Superblock sb = Media.Geometry(dev);
        ulong ino = Image.Ino["file"];
        Media.PatchInodeRaw(dev, sb, ino, s => s[Media.InodeCrcOffset + 2] ^= 0x40, fixCrc: false);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal($"inode {ino}", e.Structure);
        Assert.Contains("checksum 0x", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SlotCopiedToAnotherInodeNumberDoesNotValidate()
    {
        // The checksum is seeded with the inode number: a slot written to the wrong place is refused.
        using PmemDevice dev = Volume();
        Superblock sb = Media.Geometry(dev);
        ulong from = Image.Ino["file"], to = Image.Ino["link"];
        Media.Write(dev, sb.InodeOffset(to), Media.Read(dev, sb.InodeOffset(from), Layout.InodeSize));
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal($"inode {to}", e.Structure);
        Assert.Contains("checksum", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Checks mount makes of a valid-looking record against the rest of the volume (Structure and
    /// Fragment are regexes, {0} the inode number): the structure named is the inode or a part of its log.</summary>
    internal sealed record LoadCase(string Inode, Func<InodeRecord, Superblock, InodeRecord> Edit, string Structure, string Fragment);

    private static readonly Dictionary<string, LoadCase> LoadCases = new()
    {
        ["block count disagrees with the blocks owned"] = new("file", (r, _) => r with { Blocks = r.Blocks + 1 }, "inode {0}", "blocks but counts"),
        ["log record count short"] = new("file", (r, _) => r with { LogRecordCount = r.LogRecordCount - 1 }, "log block 0 of inode {0}", "records end at"),
        ["log record count short of the inline records"] = new("file", (r, _) => r with { LogRecordCount = 0 }, "inode {0}", "disagrees with its log"),
        ["log record count long"] = new("file", (r, _) => r with { LogRecordCount = r.LogRecordCount + 1 }, "log record \\d+ of inode {0}", "truncated record|record length"),
        ["log block count long"] = new("file", (r, _) => r with { LogBlockCount = r.LogBlockCount + 1 }, "log block 1 of inode {0}", "block index 0 is out of order"),
        ["generation differs from the log's"] = new("file", (r, _) => r with { Generation = r.Generation + 1 }, "log block 0 of inode {0}", "belongs to another inode, generation or epoch"),
        ["log epoch differs from the log's"] = new("dir", (r, _) => r with { LogEpoch = r.LogEpoch + 1 }, "log block 0 of inode {0}", "belongs to another inode, generation or epoch"),
        ["log tail points at another inode's log"] = new("dir", (r, _) => r, "log block 0 of inode {0}", "belongs to another inode"),
        ["next entry id below the entries'"] = new("dir", (r, _) => r with { NextDirentId = DaxVolume.DirFirstId }, "log record of inode {0}", "is out of range"),
        ["xattr block pointing at a data block"] = new("file", (r, _) => r, "xattr block of inode {0}", "bad magic"),
        ["root is not a directory"] = new("root", (r, _) => InlineLog(r with { Mode = FileModes.Regular | 0x1A4, LogTailBlock = 0, LogTailUsed = 0, LogBlockCount = 0, LogRecordCount = 0, Blocks = 0 }, 0),
            "inode 1", "the root directory is missing"),
    };

    public static TheoryData<string> LoadCaseNames() => new(LoadCases.Keys);

    [Theory]
    [MemberData(nameof(LoadCaseNames))]
    public void InconsistentInodeIsRefusedAtMount(string name)
    {
        LoadCase c = LoadCases[name];
        using PmemDevice dev = Volume();
        Superblock sb = Media.Geometry(dev);
        ulong ino = c.Inode == "root" ? 1 : Image.Ino[c.Inode];
        InodeRecord r = c.Edit(Media.ReadInode(dev, sb, ino), sb);
        if (name == "log tail points at another inode's log")
            r.LogTailBlock = Media.ReadInode(dev, sb, Image.Ino["sub"]).LogTailBlock is var t && t != 0 ? t : Media.ReadInode(dev, sb, 1).LogTailBlock;
        if (name == "xattr block pointing at a data block")
        {
            long data = -1;
            using (var v = DaxVolume.Mount(TestVolumes.FromImage(Image.Image)))
                VolumeWalk.Extents(v, ino).ForEach(x => data = data < 0 && x.DevOffset >= 0 ? x.DevOffset / Layout.BlockSize : data);
            r.XattrBlock = data;
        }
        Media.WriteInode(dev, sb, ino, r);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Matches("^" + string.Format(CultureInfo.InvariantCulture, c.Structure, ino) + "$", e.Structure);
        Assert.Contains($"inode {ino}", e.Message, StringComparison.Ordinal);
        Assert.Matches(c.Fragment, e.Message);
    }

    [Fact]
    public void EntryNamingAFreedSlotIsRefusedAtMount()
    {
        using PmemDevice dev = Volume();
        Superblock sb = Media.Geometry(dev);
        ulong ino = Image.Ino["link"];
        dev.FillPersist(sb.InodeOffset(ino), Layout.InodeSize, 0);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal("directory 1", e.Structure);
        Assert.Contains($"entry 'link' names inode {ino}, which is not a live inode of that type", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EntryWhoseTypeDisagreesWithTheInodeIsRefusedAtMount()
    {
        using PmemDevice dev = Volume();
        Superblock sb = Media.Geometry(dev);
        ulong ino = Image.Ino["link"];
        Media.EditInode(dev, sb, ino, r => r with { Mode = FileModes.Fifo | 0x1A4, Flags = 0, Size = 0 });
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Contains($"entry 'link' names inode {ino}, which is not a live inode of that type", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A symlink target is 1..4095 bytes. A block symlink whose record says more (valid checksum) must be
    /// refused as corrupted -- at mount, or at readlink -- and never read past its block or crash. BUG-2.</summary>
    [Theory]
    [InlineData(5000L)]
    [InlineData(1L << 20)]
    [InlineData(3_000_000_000L)]
    public void BlockSymlinkLongerThanAnyTargetIsRefused(long size)
    {
        using PmemDevice dev = Volume();
        Superblock sb = Media.Geometry(dev);
        ulong ino = Image.Ino["blink"];
        Media.EditInode(dev, sb, ino, r => r with { Size = size });
        DaxVolume v;
        try
        {
            v = DaxVolume.Mount(dev);
        }
        catch (DaxFsCorruptedException e)
        {
            Assert.Contains($"inode {ino}", e.Message, StringComparison.Ordinal);
            return;
        }
        using (v)
        {
            byte[]? target = null;
            Exception? thrown = Record.Exception(() => target = v.ReadLink(ino));
            Assert.True(thrown is DaxFsCorruptedException, $"readlink of a {size}-byte symlink returned {target?.Length} bytes / threw {thrown?.GetType().Name}: {thrown?.Message}");
        }
    }

    [Fact]
    public void FreeSlotNeedsNoChecksumButAnyModeMakesItChecked()
    {
        using PmemDevice dev = Volume();
        Superblock sb = Media.Geometry(dev);
        ulong free = (ulong)sb.InodeCount; // never used
        // Garbage after a zero mode is ignored (a free slot keeps only its generation).
        Media.PatchInodeRaw(dev, sb, free, s => s.AsSpan(4, 200).Fill(0xEE), fixCrc: false);
        using (DaxVolume.Mount(dev))
        {
        }
        Media.PatchInodeRaw(dev, sb, free, s => BinaryPrimitives.WriteUInt32LittleEndian(s, FileModes.Regular), fixCrc: false);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal($"inode {free}", e.Structure);
    }
}
