using System.Text;
using DaxFs.Check;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Corruption;
using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests.Check;

/// <summary>fsck: a clean volume is clean; each hand-made inconsistency is reported with a specific message, and
/// --repair fixes what it says it fixed: afterwards fsck reports the volume clean and it mounts.</summary>
public class FsckTests
{
    private const long Bytes = 8 << 20;

    /// <summary>The entries of /d.</summary>
    private static readonly string[] DirNames = ["f", "f2", "f3", "f4", "f5"];

    /// <summary>/d (directory), /d/f (20 KiB), /g and its hard link /h, /sym, /x (xattr), /sub/inner/deep, /lonely
    /// (an empty directory), and last /lost-me (its entry is the last record of the root's log).</summary>
    private sealed record Sample(byte[] Image, Dictionary<string, ulong> Ino, Dictionary<string, byte[]> Content);

    private static readonly Lazy<Sample> Shared = new(() =>
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            var ino = new Dictionary<string, ulong>();
            var content = new Dictionary<string, byte[]>();
            using (v)
            {
                ino["/d"] = v.CreateDirectory("/d").Ino;
                content["/d/f"] = RichImage.Pattern(20_000, 1);
                using (var f = v.CreateFile("/d/f"))
                {
                    f.Write(0, content["/d/f"]);
                    ino["/d/f"] = f.Ino;
                }
                foreach (string n in DirNames.Skip(1))
                    v.CreateFile("/d/" + n).Dispose(); // enough entries for /d's log to spill into a block
                content["/g"] = RichImage.Pattern(9000, 2);
                using (var f = v.CreateFile("/g"))
                {
                    f.Write(0, content["/g"]);
                    ino["/g"] = f.Ino;
                }
                v.Link("/g", "/h");
                ino["/sym"] = v.Symlink("/sym", "d/f").Ino;
                using (var f = v.CreateFile("/x"))
                    ino["/x"] = f.Ino;
                v.SetXattr(ino["/x"], "user.k", [1, 2]);
                ino["/sub"] = v.CreateDirectory("/sub").Ino;
                ino["/sub/inner"] = v.CreateDirectory("/sub/inner").Ino;
                content["/sub/inner/deep"] = RichImage.Pattern(5000, 3);
                using (var f = v.CreateFile("/sub/inner/deep"))
                {
                    f.Write(0, content["/sub/inner/deep"]);
                    ino["/sub/inner/deep"] = f.Ino;
                }
                ino["/lonely"] = v.CreateDirectory("/lonely").Ino;
                content["/lost-me"] = RichImage.Pattern(7000, 4);
                using (var f = v.CreateFile("/lost-me"))
                {
                    f.Write(0, content["/lost-me"]);
                    ino["/lost-me"] = f.Ino;
                }
            }
            return new Sample(TestVolumes.Snapshot(dev), ino, content);
        }
    });

    private static ulong Ino(string path) => Shared.Value.Ino[path];

    private static PmemDevice Volume(out Superblock sb)
    {
        PmemDevice dev = TestVolumes.FromImage(Shared.Value.Image);
        sb = Media.Geometry(dev);
        return dev;
    }

    /// <summary>fsck finds <paramref name="error"/>; --repair says <paramref name="repairs"/>; then fsck is clean,
    /// the volume mounts and reads everything without an error. Returns the repaired volume's report.</summary>
    private static FsckReport ReportedAndRepaired(PmemDevice dev, string[] error, string[] repairs)
    {
        FsckReport check = Fsck.Check(dev);
        Assert.False(check.Clean, "fsck missed the corruption");
        foreach (string e in error)
            Assert.True(check.Errors.Any(x => x.Contains(e, StringComparison.Ordinal)), $"no error containing '{e}' in:\n{string.Join("\n", check.Errors)}");
        Assert.Empty(check.Repairs);
        FsckReport repair = Fsck.Check(dev, repair: true);
        foreach (string r in repairs)
            Assert.True(repair.Repairs.Any(x => x.Contains(r, StringComparison.Ordinal)), $"no repair containing '{r}' in:\n{string.Join("\n", repair.Repairs)}");
        Assert.True(repair.Clean, "errors left after the repair:\n" + string.Join("\n", repair.Errors) + "\nrepairs:\n" + string.Join("\n", repair.Repairs));
        FsckReport after = Fsck.Check(dev);
        Assert.True(after.Clean, "fsck after the repair:\n" + string.Join("\n", after.Errors));
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(0, VolumeWalk.Exercise(v).DaxErrors);
        return repair;
    }

    private static void AssertContent(DaxVolume v, string path) => Assert.Equal(Shared.Value.Content[path], VolumeWalk.ReadAll(v, path));

    [Fact]
    public void CleanVolumeIsClean()
    {
        using PmemDevice dev = Volume(out _);
        byte[] before = TestVolumes.Snapshot(dev);
        FsckReport r = Fsck.Check(dev);
        Assert.True(r.Clean, string.Join("\n", r.Errors));
        Assert.Empty(r.Repairs);
        Assert.Equal(Shared.Value.Ino.Count + 1 + DirNames.Length - 1, r.Inodes); // + the root and /d's other entries
        Assert.True(r.UsedBlocks > 10);
        Assert.Equal(0, r.ReplayedTransactions);
        FsckReport again = Fsck.Check(dev, repair: true);
        Assert.True(again.Clean);
        Assert.Empty(again.Repairs);
        Assert.True(before.AsSpan().SequenceEqual(TestVolumes.Snapshot(dev)), "fsck --repair changed a clean volume");
    }

    [Fact]
    public void ProgressHearsEachPhaseInOrder()
    {
        using PmemDevice dev = Volume(out _);
        var steps = new List<(string Step, double Fraction)>();
        FsckReport r = Fsck.Check(dev, progress: new Sync(steps.Add));
        Assert.True(r.Clean);
        Assert.Equal(["superblocks", "journal, inodes, logs, allocation", "link counts, reachability, sizes"], steps.Select(s => s.Step));
        Assert.True(steps.Select(s => s.Fraction).SequenceEqual(steps.Select(s => s.Fraction).Order()));
    }

    private sealed class Sync(Action<(string, double)> report) : IProgress<(string, double)>
    {
        public void Report((string, double) value) => report(value);
    }

    [Fact]
    public void CleanRichImageAndReplayedCrashImageAreClean()
    {
        using (PmemDevice dev = TestVolumes.FromImage(RichImage.Instance.Clean))
        {
            FsckReport r = Fsck.Check(dev);
            Assert.True(r.Clean, string.Join("\n", r.Errors));
        }
        using (PmemDevice dev = TestVolumes.FromImage(RichImage.Instance.Crash))
        {
            // The crash image holds an orphan (unlinked while open): reported, and freed by a repair or a mount.
            FsckReport r = Fsck.Check(dev);
            Assert.Equal(RichImage.Instance.CrashTransactions, r.ReplayedTransactions);
            Assert.Contains(r.Errors, e => e.Contains("is an orphan (unlinked while open); a mount frees it", StringComparison.Ordinal));
            Assert.Single(r.Errors);
            FsckReport repaired = Fsck.Check(dev, repair: true);
            Assert.Contains(repaired.Repairs, x => x.StartsWith("freed orphan inode", StringComparison.Ordinal));
            Assert.True(repaired.Clean, string.Join("\n", repaired.Errors));
        }
    }

    [Fact]
    public void WrongLinkCountIsFixed()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong g = Ino("/g");
        Media.EditInode(dev, sb, g, r => r with { Nlink = 5 });
        ReportedAndRepaired(dev, [$"inode {g} has link count 5, but 2 names/links point at it"], [$"set the link count of inode {g} from 5 to 2"]);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(2u, v.Stat("/g").Nlink);
        AssertContent(v, "/g");
    }

    [Fact]
    public void WrongDirectoryLinkCountIsFixed()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong sub = Ino("/sub");
        Media.EditInode(dev, sb, sub, r => r with { Nlink = 9 });
        ReportedAndRepaired(dev, [$"inode {sub} has link count 9, but 3 names/links point at it"], [$"set the link count of inode {sub} from 9 to 3"]);
    }

    [Fact]
    public void WrongBlockCountIsFixed()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong f = Ino("/d/f");
        long blocks = Media.ReadInode(dev, sb, f).Blocks;
        Media.EditInode(dev, sb, f, r => r with { Blocks = blocks + 3 });
        ReportedAndRepaired(dev, [$"inode {f}", $"owns {blocks} blocks but counts {blocks + 3}"], [$"rewrote the log of inode {f}"]);
        using var v = DaxVolume.Mount(dev);
        AssertContent(v, "/d/f");
        Assert.Equal(blocks * (Layout.BlockSize / 512), v.Stat("/d/f").Blocks);
    }

    [Fact]
    public void EntryNamingAFreeInodeIsRemoved()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong f = Ino("/d/f"), d = Ino("/d");
        long freeBefore;
        using (var v = DaxVolume.Mount(TestVolumes.FromImage(Shared.Value.Image)))
            freeBefore = v.StatFs().FreeBlocks;
        dev.FillPersist(sb.InodeOffset(f), Layout.InodeSize, 0); // the slot is free; /d still names it
        ReportedAndRepaired(dev, [$"corrupted directory {d}", $"entry 'f' names inode {f}, which is not a live inode of that type"], [$"rewrote the log of inode {d}"]);
        using var after = DaxVolume.Mount(dev);
        Assert.False(after.Exists("/d/f"));
        Assert.Equal(DirNames.Skip(1), after.List("/d").Select(e => e.NameString).Order());
        Assert.True(after.StatFs().FreeBlocks > freeBefore, "the freed inode's blocks should be free again");
        AssertContent(after, "/g");
    }

    [Fact]
    public void UnreachableFileIsLinkedIntoLostAndFound()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong lost = Ino("/lost-me");
        ForgetLastRootEntry(dev, sb, "lost-me");
        FsckReport r = ReportedAndRepaired(dev,
            [$"inode {lost} is not reachable from the root", $"inode {lost} has link count 1, but 0 names/links point at it"],
            ["created /lost+found", $"linked unreachable inode {lost} into /lost+found as #{lost}"]);
        Assert.DoesNotContain(r.Repairs, x => x.Contains("set the link count", StringComparison.Ordinal));
        using var v = DaxVolume.Mount(dev);
        Assert.False(v.Exists("/lost-me"));
        Assert.Equal(Shared.Value.Content["/lost-me"], VolumeWalk.ReadAll(v, $"/lost+found/#{lost}"));
        Assert.Equal(1u, v.Stat($"/lost+found/#{lost}").Nlink);
    }

    /// <summary>An unreachable directory tree: only its top goes to /lost+found (with its ".." pointing there); what
    /// is below keeps its one name. BUG-6.</summary>
    [Fact]
    public void UnreachableDirectoryTreeIsLinkedIntoLostAndFound()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong sub = Ino("/sub"), inner = Ino("/sub/inner");
        RemoveRootEntry(dev, sb, "sub");
        FsckReport r = ReportedAndRepaired(dev, [$"inode {sub} is not reachable from the root"], [$"linked unreachable inode {sub} into /lost+found as #{sub}"]);
        Assert.DoesNotContain(r.Repairs, x => x.Contains($"inode {inner} into", StringComparison.Ordinal));
        using var v = DaxVolume.Mount(dev);
        Assert.Equal([$"#{sub}"], v.List("/lost+found").Select(e => e.NameString).ToArray());
        Assert.Equal(Shared.Value.Content["/sub/inner/deep"], VolumeWalk.ReadAll(v, $"/lost+found/#{sub}/inner/deep"));
        Assert.Equal(1u, v.Stat($"/lost+found/#{sub}/inner/deep").Nlink);
        Assert.Equal(v.Resolve("/lost+found"), v.Lookup(sub, "..").Ino);
        Assert.Equal(inner, v.Resolve($"/lost+found/#{sub}/inner"));
    }

    /// <summary>An unreachable empty directory linked into /lost+found: its parent must become /lost+found on the
    /// media, not only in DRAM. BUG-6.</summary>
    [Fact]
    public void UnreachableDirectoryGetsLostAndFoundAsItsParent()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong lonely = Ino("/lonely");
        RemoveRootEntry(dev, sb, "lonely");
        ReportedAndRepaired(dev, [$"inode {lonely} is not reachable from the root"], [$"linked unreachable inode {lonely} into /lost+found as #{lonely}"]);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(v.Resolve("/lost+found"), v.Lookup(lonely, "..").Ino);
    }

    [Fact]
    public void CorruptedBackupSuperblockIsRewritten()
    {
        using PmemDevice dev = Volume(out _);
        long backup = Media.BackupSuperblockOffset(dev);
        Media.WriteByte(dev, backup + 30, (byte)(Media.ReadByte(dev, backup + 30) ^ 0x80));
        ReportedAndRepaired(dev, [$"backup corrupted superblock at device offset {backup}: checksum"], ["rewrote the backup superblock from the primary"]);
        Assert.Equal(Media.Read(dev, 0, Superblock.Size), Media.Read(dev, backup, Superblock.Size));
    }

    [Fact]
    public void BadInodeChecksumClearsTheSlot()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong f = Ino("/d/f"), d = Ino("/d");
        uint generation = Media.ReadInode(dev, sb, f).Generation;
        Media.PatchInodeRaw(dev, sb, f, s => s[17] ^= 0x01, fixCrc: false); // size byte, checksum stale
        ReportedAndRepaired(dev,
            [$"corrupted inode {f} at device offset {sb.InodeOffset(f)}: checksum", $"entry 'f' names inode {f}"],
            [$"cleared the corrupted inode slot {f}", $"rewrote the log of inode {d}"]);
        InodeRecord slot = Media.ReadInode(dev, sb, f);
        Assert.False(slot.InUse);
        using var v = DaxVolume.Mount(dev);
        Assert.False(v.Exists("/d/f"));
        // The slot is reusable, with a new generation.
        ulong again = v.CreateFile(d, "new", 0x1A4).Ino;
        if (again == f)
            Assert.True(v.GetAttributes(f).Generation > generation);
    }

    /// <summary>A directory slot cleared: its subdirectory is orphaned, and only it goes to /lost+found. BUG-6.</summary>
    [Fact]
    public void BadChecksumOfADirectoryOrphansItsTreeIntoLostAndFound()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong sub = Ino("/sub"), inner = Ino("/sub/inner");
        Media.PatchInodeRaw(dev, sb, sub, s => s[40] ^= 0x01, fixCrc: false);
        ReportedAndRepaired(dev,
            [$"corrupted inode {sub}", $"inode {inner} is not reachable from the root"],
            [$"cleared the corrupted inode slot {sub}", $"linked unreachable inode {inner} into /lost+found as #{inner}"]);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(Shared.Value.Content["/sub/inner/deep"], VolumeWalk.ReadAll(v, $"/lost+found/#{inner}/deep"));
        // Only the top of the orphaned tree is linked: deep keeps its one name (BUG-6).
        Assert.Equal([$"#{inner}"], v.List("/lost+found").Select(e => e.NameString).ToArray());
        Assert.Equal(1u, v.Stat($"/lost+found/#{inner}/deep").Nlink);
    }

    [Fact]
    public void LogBlockAlsoClaimedAsDataByAnotherInodeIsGivenToOne()
    {
        // /g's first map record (valid checksum) is repointed at /d's log block: one block, two owners.
        using PmemDevice dev = Volume(out Superblock sb);
        ulong d = Ino("/d"), g = Ino("/g");
        Assert.True(d < g); // /d claims first at load, /g loses
        long dirLog = Media.ReadInode(dev, sb, d).LogTailBlock;
        Assert.NotEqual(0, dirLog);
        Media.LogRecordInfo map = Media.ReadLog(dev, sb, g).Records.First(r => r.Record.Type == LogRecordType.ExtentMap);
        Media.RewriteLogRecord(dev, sb, g, map, map.Record with { B = (ulong)dirLog, C = 1 });
        ReportedAndRepaired(dev, [$"corrupted inode {g}", $"data blocks [{dirLog}, +1) is outside the data area or owned by another inode"],
            [$"rewrote the log of inode {g}"]);
        using var v = DaxVolume.Mount(dev);
        AssertContent(v, "/d/f"); // the directory's log survived
        Assert.Equal(DirNames, v.List("/d").Select(e => e.NameString).Order());
    }

    [Fact]
    public void LogBlockClaimedByTwoInodesIsGivenToItsOwner()
    {
        // /g's inode points its log at /d's log block: the block's header names /d, so /g's claim is refused.
        using PmemDevice dev = Volume(out Superblock sb);
        ulong d = Ino("/d"), g = Ino("/g");
        InodeRecord dir = Media.ReadInode(dev, sb, d);
        Assert.NotEqual(0, dir.LogTailBlock);
        Media.EditInode(dev, sb, g, r => r with { LogTailBlock = dir.LogTailBlock, LogTailUsed = dir.LogTailUsed, LogBlockCount = dir.LogBlockCount, LogRecordCount = dir.LogRecordCount });
        ReportedAndRepaired(dev, [$"log block 0 of inode {g}", "belongs to another inode"], [$"rewrote the log of inode {g}"]);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(DirNames, v.List("/d").Select(e => e.NameString).Order());
        AssertContent(v, "/d/f");
    }

    [Fact]
    public void WrongDirectoryParentIsFixed()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong inner = Ino("/sub/inner"), sub = Ino("/sub"), d = Ino("/d");
        Media.EditInode(dev, sb, inner, r => r with { Parent = d });
        ReportedAndRepaired(dev, [$"directory {inner} ('inner' in {sub}) says its parent is {d}"], [$"set the parent of directory {inner} to {sub}"]);
        using var v = DaxVolume.Mount(dev);
        Assert.Equal(sub, v.Lookup(inner, "..").Ino);
    }

    [Fact]
    public void CorruptedXattrBlockIsDropped()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong x = Ino("/x");
        long block = Media.ReadInode(dev, sb, x).XattrBlock;
        Media.WriteByte(dev, block * Layout.BlockSize + 40, 0xEE);
        ReportedAndRepaired(dev, [$"xattr block of inode {x}"], [$"rewrote the log of inode {x}"]);
        using var v = DaxVolume.Mount(dev);
        Assert.Empty(v.ListXattrs(x));
        Assert.Equal(0, v.Stat("/x").Blocks);
    }

    [Fact]
    public void CorruptedLogRecordKeepsWhatCouldBeRead()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong root = 1;
        var records = Media.ReadLog(dev, sb, root).Records;
        Media.LogRecordInfo last = records[^1]; // the entry of /lost-me
        Media.WriteByte(dev, last.Offset + 12, (byte)(Media.ReadByte(dev, last.Offset + 12) ^ 0x08));
        ReportedAndRepaired(dev, [$"log record {last.Index} of inode 1", "record checksum mismatch"],
            ["rewrote the log of inode 1", $"linked unreachable inode {Ino("/lost-me")} into /lost+found"]);
        using var v = DaxVolume.Mount(dev);
        AssertContent(v, "/g");
        AssertContent(v, "/d/f");
    }

    [Fact]
    public void OrphanIsFreed()
    {
        using PmemDevice dev = Volume(out Superblock sb);
        ulong lost = Ino("/lost-me");
        ForgetLastRootEntry(dev, sb, "lost-me");
        Media.EditInode(dev, sb, lost, r => r with { Nlink = 0 });
        ReportedAndRepaired(dev, [$"inode {lost} is an orphan (unlinked while open); a mount frees it"], [$"freed orphan inode {lost}"]);
        Assert.False(Media.ReadInode(dev, sb, lost).InUse);
    }

    [Fact]
    public void ReadOnlyRepairIsRefused()
    {
        string path = Path.Combine(Path.GetTempPath(), $"daxfs-fsck-{Guid.NewGuid():N}.img");
        try
        {
            File.WriteAllBytes(path, Shared.Value.Image);
            using PmemDevice dev = PmemDevice.Open(path, TestVolumes.Options() with { ReadOnly = true });
            Assert.True(Fsck.Check(dev).Clean);
            Assert.Equal(Errno.EROFS, Assert.Throws<DaxFsException>(() => Fsck.Check(dev, repair: true)).Errno);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Takes the last record (the entry of <paramref name="name"/>) off the root's log: the inode stays, no
    /// name points at it.</summary>
    private static void ForgetLastRootEntry(PmemDevice dev, Superblock sb, string name)
    {
        Media.LogRecordInfo last = Media.ReadLog(dev, sb, 1).Records[^1];
        Assert.Equal(LogRecordType.DirAdd, last.Record.Type);
        Assert.Equal(name, Encoding.UTF8.GetString(last.Record.Name!));
        Media.EditInode(dev, sb, 1, r => r with { LogRecordCount = r.LogRecordCount - 1, LogTailUsed = r.LogTailUsed - last.Length });
    }

    /// <summary>Appends a removal of the root's entry <paramref name="name"/> without touching the named inode (which
    /// keeps its link count): the inode becomes unreachable.</summary>
    private static void RemoveRootEntry(PmemDevice dev, Superblock sb, string name)
    {
        Media.LogRecordInfo add = Media.ReadLog(dev, sb, 1).Records.Last(r => r.Record.Type == LogRecordType.DirAdd && Encoding.UTF8.GetString(r.Record.Name!) == name);
        Media.AppendLogRecord(dev, sb, 1, new LogRecord(LogRecordType.DirRemove, 0, add.Record.B, 0, 0, null));
        if (Media.ReadInode(dev, sb, add.Record.A).Mode is var mode && (mode & FileModes.TypeMask) == FileModes.Directory)
            Media.EditInode(dev, sb, 1, r => r with { Nlink = r.Nlink - 1 });
    }
}
