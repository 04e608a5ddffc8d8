using System.Globalization;
using System.Text;
using DaxFs.Check;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Corruption;
using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests.Format;

/// <summary>Superblock validation: every field, corrupted with its checksum recomputed (so that the field's own
/// check is what refuses it) and without (the checksum refuses it); the backup taking over from a bad primary;
/// both bad; truncated and oversized devices.</summary>
public class SuperblockTests
{
    private const long Bytes = 8 << 20;

    /// <summary>A corrupted field: where it is, the bad value (from the real geometry), and the message expected,
    /// with {0} standing for the value.</summary>
    internal sealed record FieldCase(int Offset, int Width, Func<Superblock, long> Value, string Fragment);

    private static readonly Dictionary<string, FieldCase> Cases = new()
    {
        ["magic"] = new(0, 8, _ => 0x1122334455667788, "bad magic 0x1122334455667788: not a DaxFS volume"),
        ["version major"] = new(8, 4, _ => 2, "format version 2.0 is not supported (this DaxFS reads 1.x)"),
        ["incompat features"] = new(120, 8, _ => 0x40, "unknown incompatible features 0x40"),
        ["ro-compat features"] = new(128, 8, _ => 0x2, "unknown read-only-compatible features 0x2"),
        ["block size"] = new(16, 4, _ => 8192, "block size 8192 (only 4096 is supported)"),
        ["inode size"] = new(20, 4, _ => 128, "inode size 128 (only 256 is supported)"),
        ["block count below the minimum"] = new(24, 8, _ => 255, "block count {0} does not fit the 8388608-byte device"),
        ["block count past the device"] = new(24, 8, sb => sb.BlockCount + 1, "block count {0} does not fit the 8388608-byte device"),
        ["block count negative"] = new(24, 8, _ => -1, "block count {0} does not fit the 8388608-byte device"),
        ["journal start"] = new(32, 8, _ => 2, "journal start {0} (must be 1)"),
        ["journal length too short"] = new(40, 8, _ => 1, "journal length {0} blocks is out of range"),
        ["journal length past the volume"] = new(40, 8, sb => sb.BlockCount + 1, "journal length {0} blocks is out of range"),
        ["inode table start"] = new(48, 8, sb => sb.InodeTableStart + 1, "inode table start {0} does not follow the journal"),
        ["inode count zero"] = new(56, 8, _ => 0, "inode count {0} is out of range"),
        ["inode count above 2^32"] = new(56, 8, _ => 1L << 32, "inode count {0} is out of range"),
        ["inode count past the volume"] = new(56, 8, sb => sb.BlockCount * Layout.InodesPerBlock, "inode count {0} is out of range"),
        ["data start inside the inode table"] = new(64, 8, sb => sb.InodeTableStart + sb.InodeTableBlocks - 1, "data area start {0} is out of range"),
        ["data start at data end"] = new(64, 8, sb => sb.DataEnd, "data area start {0} is out of range"),
        ["data end on the backup superblock"] = new(72, 8, sb => sb.BlockCount, "data area end {0} runs into the backup superblock"),
        ["root inode"] = new(80, 8, _ => 2, "root inode {0} (must be 1)"),
    };

    public static TheoryData<string> FieldNames() => new(Cases.Keys);

    private static readonly Lazy<byte[]> Image = new(() =>
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            using (v)
            using (var f = v.CreateFile("/hello"))
                f.Write(0, "hello"u8);
            return TestVolumes.Snapshot(dev);
        }
    });

    private static PmemDevice Volume() => TestVolumes.FromImage(Image.Value);

    private static void Corrupt(PmemDevice dev, FieldCase c, bool primary, bool backup, bool fixCrc, out long value)
    {
        Superblock sb = Media.Geometry(dev);
        long v = c.Value(sb);
        if (primary)
            Media.PatchSuperblock(dev, 0, s => Media.SetField(s, c.Offset, c.Width, v), fixCrc);
        if (backup)
            Media.PatchSuperblock(dev, Media.BackupSuperblockOffset(dev), s => Media.SetField(s, c.Offset, c.Width, v), fixCrc);
        value = v;
    }

    private static string Expected(FieldCase c, long value) => string.Format(CultureInfo.InvariantCulture, c.Fragment, value);

    [Theory]
    [MemberData(nameof(FieldNames))]
    public void FieldWithRecomputedChecksumIsRefusedByItsOwnCheck(string field)
    {
        FieldCase c = Cases[field];
        using PmemDevice dev = Volume();
        Corrupt(dev, c, primary: true, backup: true, fixCrc: true, out long value);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal("superblock", e.Structure);
        Assert.Equal(0, e.Offset);
        Assert.Contains("corrupted superblock at device offset 0: " + Expected(c, value), e.Message, StringComparison.Ordinal);
        Assert.Equal(Errno.EUCLEAN, e.Errno);
        var f = Assert.Throws<DaxFsCorruptedException>(() => Fsck.Check(dev));
        Assert.Equal("superblock", f.Structure);
    }

    [Theory]
    [MemberData(nameof(FieldNames))]
    public void FieldWithStaleChecksumIsRefusedByTheChecksum(string field)
    {
        FieldCase c = Cases[field];
        using PmemDevice dev = Volume();
        Corrupt(dev, c, primary: true, backup: true, fixCrc: false, out long value);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal("superblock", e.Structure);
        if (field == "magic")
            Assert.Contains(Expected(c, value), e.Message, StringComparison.Ordinal);
        else
            Assert.Matches("corrupted superblock at device offset 0: checksum 0x[0-9a-f]{8} does not match its contents \\(0x[0-9a-f]{8}\\)", e.Message);
    }

    [Theory]
    [MemberData(nameof(FieldNames))]
    public void BadPrimaryFallsBackToTheBackupAndFsckRewritesIt(string field)
    {
        FieldCase c = Cases[field];
        using PmemDevice dev = Volume();
        Guid uuid = Media.Geometry(dev).Uuid;
        Corrupt(dev, c, primary: true, backup: false, fixCrc: true, out long value);
        using (var v = DaxVolume.Mount(dev))
        {
            Assert.Equal(uuid, v.Uuid);
            Assert.Equal("hello", Encoding.UTF8.GetString(VolumeWalk.ReadAll(v, "/hello")));
        }
        FsckReport check = Fsck.Check(dev);
        Assert.False(check.Clean);
        Assert.Contains(check.Errors, e => e.Contains("superblock at device offset 0: " + Expected(c, value), StringComparison.Ordinal));
        FsckReport repair = Fsck.Check(dev, repair: true);
        Assert.Contains("rewrote the primary superblock from the backup", repair.Repairs);
        Assert.True(repair.Clean, string.Join("\n", repair.Errors));
        Assert.Equal(Media.Read(dev, Media.BackupSuperblockOffset(dev), Superblock.Size), Media.Read(dev, 0, Superblock.Size));
        Assert.True(Fsck.Check(dev).Clean);
    }

    [Fact]
    public void ChecksumFieldItselfIsChecked()
    {
        using PmemDevice dev = Volume();
        foreach (long at in new[] { 0, Media.BackupSuperblockOffset(dev) })
            Media.WriteByte(dev, at + Media.SuperblockCrcOffset + 1, (byte)(Media.ReadByte(dev, at + Media.SuperblockCrcOffset + 1) ^ 0x10));
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Matches("corrupted superblock at device offset 0: checksum 0x[0-9a-f]{8} does not match its contents", e.Message);
    }

    [Fact]
    public void UnknownMinorVersionAndCompatFeaturesAreAccepted()
    {
        using PmemDevice dev = Volume();
        foreach (long at in new[] { 0, Media.BackupSuperblockOffset(dev) })
            Media.PatchSuperblock(dev, at, s =>
            {
                Media.SetField(s, 12, 4, 7);        // version 1.7
                Media.SetField(s, 112, 8, 0x8001);  // compat features this reader does not know
            }, fixCrc: true);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal("hello", Encoding.UTF8.GetString(VolumeWalk.ReadAll(v, "/hello")));
    }

    [Fact]
    public void BothSuperblocksBadGivesTheClearPrimaryError()
    {
        using PmemDevice dev = Volume();
        dev.FillPersist(0, Layout.BlockSize, 0);
        dev.FillPersist(Media.BackupSuperblockOffset(dev), Layout.BlockSize, 0xAB);
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Equal("corrupted superblock at device offset 0: bad magic 0x0000000000000000: not a DaxFS volume (EUCLEAN)", e.Message);
        var f = Assert.Throws<DaxFsCorruptedException>(() => Fsck.Check(dev, repair: true));
        Assert.Contains("neither the primary nor the backup superblock is valid", f.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ZeroedPrimaryMountsFromTheBackup()
    {
        using PmemDevice dev = Volume();
        dev.FillPersist(0, Layout.BlockSize, 0);
        using (var v = DaxVolume.Mount(dev))
            Assert.Equal("hello", Encoding.UTF8.GetString(VolumeWalk.ReadAll(v, "/hello")));
        FsckReport r = Fsck.Check(dev, repair: true);
        Assert.Contains("rewrote the primary superblock from the backup", r.Repairs);
        Assert.True(r.Clean, string.Join("\n", r.Errors));
    }

    [Fact]
    public void CorruptedBackupIsReportedAndRewritten()
    {
        using PmemDevice dev = Volume();
        long backup = Media.BackupSuperblockOffset(dev);
        Media.WriteByte(dev, backup + 60, (byte)(Media.ReadByte(dev, backup + 60) ^ 1));
        using (DaxVolume.Mount(dev))
        {
            // The primary is good: the backup is not even read.
        }
        FsckReport r = Fsck.Check(dev);
        Assert.Contains(r.Errors, e => e.StartsWith($"backup corrupted superblock at device offset {backup}: checksum", StringComparison.Ordinal));
        r = Fsck.Check(dev, repair: true);
        Assert.Contains("rewrote the backup superblock from the primary", r.Repairs);
        Assert.True(r.Clean, string.Join("\n", r.Errors));
        Assert.Equal(Media.Read(dev, 0, Superblock.Size), Media.Read(dev, backup, Superblock.Size));
    }

    [Fact]
    public void BackupThatDiffersFromThePrimaryIsReported()
    {
        using PmemDevice dev = Volume();
        long backup = Media.BackupSuperblockOffset(dev);
        Media.PatchSuperblock(dev, backup, s => Media.SetField(s, 104, 8, 12345), fixCrc: true); // another creation time
        FsckReport r = Fsck.Check(dev);
        Assert.Contains("the backup superblock differs from the primary", r.Errors);
        r = Fsck.Check(dev, repair: true);
        Assert.Contains("rewrote the backup superblock from the primary", r.Repairs);
        Assert.True(r.Clean, string.Join("\n", r.Errors));
    }

    [Fact]
    public void TruncatedImageIsRefused()
    {
        byte[] image = Image.Value;
        using PmemDevice dev = PmemDevice.CreateInMemory(image.Length / 2, TestVolumes.Options());
        dev.CopyPersist(0, image.AsSpan(0, image.Length / 2));
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Contains($"block count {image.Length / Layout.BlockSize} does not fit the {image.Length / 2}-byte device", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeviceSmallerThanAnyVolumeIsRefused()
    {
        using PmemDevice dev = PmemDevice.CreateInMemory(512 << 10, TestVolumes.Options());
        dev.CopyPersist(0, Image.Value.AsSpan(0, 512 << 10));
        var e = Assert.Throws<DaxFsCorruptedException>(() => DaxVolume.Mount(dev).Dispose());
        Assert.Contains("fewer than any volume", e.Message, StringComparison.Ordinal);
        Assert.ThrowsAny<DaxFsException>(() => Fsck.Check(dev));
    }

    /// <summary>Validation accepts a volume smaller than its device (block count up to the device's); such a volume
    /// (a device file grown after mkfs) must check clean, and its backup superblock (block count - 1, where mkfs put
    /// it) must still stand in for a bad primary. BUG-1 in Corruption/BUGS.md.</summary>
    [Fact]
    public void VolumeOnALargerDeviceChecksCleanAndKeepsItsBackup()
    {
        byte[] image = Image.Value;
        using PmemDevice dev = PmemDevice.CreateInMemory(image.Length * 2, TestVolumes.Options());
        dev.CopyPersist(0, image);
        using (var v = DaxVolume.Mount(dev))
            Assert.Equal("hello", Encoding.UTF8.GetString(VolumeWalk.ReadAll(v, "/hello")));
        FsckReport r = Fsck.Check(dev);
        Assert.True(r.Clean, "a valid volume on a larger device: " + string.Join("\n", r.Errors));
        dev.FillPersist(0, Layout.BlockSize, 0);
        using (var v = DaxVolume.Mount(dev))
            Assert.Equal("hello", Encoding.UTF8.GetString(VolumeWalk.ReadAll(v, "/hello")));
    }

    [Fact]
    public void EncodeDecodeRoundTripsEveryField()
    {
        Superblock sb = Superblock.ForDevice(Bytes, null, null, 42) with { FeatureCompat = 5, VersionMinor = 3 };
        byte[] enc = sb.Encode();
        Assert.Equal(sb, Superblock.Decode(enc, 0, Bytes));
        var e = Assert.Throws<DaxFsCorruptedException>(() => Superblock.Decode(enc.AsSpan(0, 100), 0, Bytes));
        Assert.Contains("only 100 bytes", e.Message, StringComparison.Ordinal);
    }
}
