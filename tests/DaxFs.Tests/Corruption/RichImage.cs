using System.Text;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Support;

namespace DaxFs.Tests.Corruption;

/// <summary>RichImage -- a small volume holding one of everything: nested directories, a directory with a
/// multi-block log and removed entries, small/medium/big/sparse files (copy on write, truncate, fallocate),
/// inline and block symlinks, hard links, a FIFO, xattrs on files and directories. <see cref="Clean"/> is the image
/// after unmount; <see cref="Crash"/> is an image taken while a second mount was still running, with committed
/// transactions waiting in the journal and an orphan (unlinked while open).</summary>
internal sealed class RichImage
{
    public const long Bytes = 8 << 20;

    private static readonly Lazy<RichImage> Shared = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The image, built once per test run (its content is deterministic; times and UUID are not).</summary>
    public static RichImage Instance => Shared.Value;

    public byte[] Clean { get; private init; } = [];

    public byte[] Crash { get; private init; } = [];

    /// <summary>Transactions waiting in <see cref="Crash"/>'s journal.</summary>
    public int CrashTransactions { get; private init; }

    /// <summary>Byte ranges of <see cref="Clean"/> that hold metadata (superblocks, journal header, used inode slots,
    /// log blocks, xattr blocks, symlink blocks).</summary>
    public List<(long Offset, long Length)> CleanRegions { get; private init; } = [];

    /// <summary>As <see cref="CleanRegions"/> for <see cref="Crash"/>, plus the journal transactions.</summary>
    public List<(long Offset, long Length)> CrashRegions { get; private init; } = [];

    public static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static RichImage Build()
    {
        var (dev, v) = TestVolumes.Fresh(Bytes);
        using (dev)
        {
            using (v)
            {
                v.CreateDirectory("/a");
                v.CreateDirectory("/a/b");
                v.CreateDirectory("/empty");
                using (var f = v.CreateFile("/a/small.txt"))
                    f.Write(0, Pattern(100, 1));
                ulong small = v.Resolve("/a/small.txt");
                v.SetXattr(small, "user.one", Encoding.UTF8.GetBytes("first value"));
                v.SetXattr(small, "user.two", Pattern(300, 2));
                v.SetXattr(v.Resolve("/a"), "user.dir", [7, 7, 7]);
                v.Link("/a/small.txt", "/a/b/hard");
                using (var f = v.CreateFile("/a/b/medium"))
                {
                    byte[] chunk = Pattern(4096, 3);
                    for (int k = 0; k < 10; k++)
                        f.Write(k * 4096L, chunk);
                    f.Write(5000, Pattern(9000, 4)); // copy on write in the middle
                    f.SetLength(30000);
                    f.Write(35000, Pattern(3000, 5));
                }
                using (var f = v.CreateFile("/big"))
                    f.Write(0, Pattern((5 << 20) / 2, 6));
                using (var f = v.CreateFile("/sparse"))
                {
                    f.Write(1 << 20, Pattern(4096, 7));
                    f.Fallocate(FallocateMode.KeepSize, 256 << 10, 64 << 10);
                    f.Fallocate(FallocateMode.Allocate, (1 << 20) + 8192, 16384);
                    f.Fallocate(FallocateMode.PunchHole | FallocateMode.KeepSize, 260 << 10, 8192);
                }
                v.Symlink("/a/short", "small.txt");
                v.Symlink("/longlink", "a/" + new string('x', 150) + "/../../a/small.txt");
                v.MakeNode(DaxVolume.RootIno, "fifo"u8, FileModes.Fifo | 0x1A4, 0);
                v.MakeNode(DaxVolume.RootIno, "chr"u8, FileModes.CharDevice | 0x1A4, 0x0103);
                v.CreateDirectory("/many");
                for (int k = 0; k < 90; k++)
                {
                    using var f = v.CreateFile($"/many/entry-with-a-longish-name-{k:D3}");
                    if (k % 4 == 0)
                        f.Write(0, [(byte)k]);
                }
                for (int k = 0; k < 90; k += 3)
                    v.Delete($"/many/entry-with-a-longish-name-{k:D3}");
                v.Rename("/many/entry-with-a-longish-name-001", "/a/b/moved");
                v.SetXattr(v.Resolve("/many"), "user.big", Pattern(1000, 8));
            }
            byte[] clean = TestVolumes.Snapshot(dev);

            using var dev2 = TestVolumes.FromImage(clean);
            var v2 = DaxVolume.Mount(dev2);
            v2.CreateDirectory("/crash");
            using (var f = v2.CreateFile("/crash/new.txt"))
                f.Write(0, Pattern(10000, 9));
            using (var f = v2.OpenFile("/a/small.txt"))
                f.Write(10, Pattern(20, 10));
            v2.Delete("/a/b/hard");
            v2.SetXattr(v2.Resolve("/big"), "user.crash", [1, 2, 3, 4]);
            v2.CreateDirectory("/crash/d");
            v2.Rename("/many/entry-with-a-longish-name-002", "/crash/x");
            var pinned = v2.OpenFile("/a/b/medium");
            v2.Delete("/a/b/medium"); // an orphan: unlinked while open
            if (v2.JournalCheckpoints != 0)
                throw new InvalidOperationException("the crash image's journal was checkpointed; it must hold transactions");
            byte[] crash = TestVolumes.Snapshot(dev2);
            int waiting = Media.Transactions(dev2, Media.Geometry(dev2)).Count;
            pinned.Dispose();
            v2.Dispose();
            byte[] crashReplayed = TestVolumes.Snapshot(dev2);

            var cleanRegions = Regions(clean);
            var crashRegions = Regions(crashReplayed);
            crashRegions.AddRange(Regions(crash, journal: true));
            return new RichImage
            {
                Clean = clean, Crash = crash, CrashTransactions = waiting, CleanRegions = cleanRegions, CrashRegions = crashRegions,
            };
        }
    }

    /// <summary>The metadata byte ranges of an image.</summary>
    private static List<(long, long)> Regions(byte[] image, bool journal = false)
    {
        using PmemDevice dev = TestVolumes.FromImage(image);
        Superblock sb = Media.Geometry(dev);
        var r = new List<(long, long)>
        {
            (0, Superblock.Size),
            (Media.BackupSuperblockOffset(dev), Superblock.Size),
            (sb.JournalHeaderOffset, 2 * Media.JournalSlotSize),
        };
        if (journal)
            foreach (Media.TxInfo tx in Media.Transactions(dev, sb))
                r.Add((tx.Offset, tx.Length));
        foreach (ulong ino in Media.UsedSlots(dev, sb))
        {
            r.Add((sb.InodeOffset(ino), Layout.InodeSize));
            InodeRecord rec;
            try
            {
                rec = Media.ReadInode(dev, sb, ino);
            }
            catch (DaxFsCorruptedException)
            {
                continue;
            }
            try
            {
                var (blocks, _) = Media.ReadLog(dev, sb, ino);
                for (int k = 0; k < blocks.Count; k++)
                    r.Add((blocks[k] * Layout.BlockSize, k == blocks.Count - 1 ? rec.LogTailUsed : Layout.BlockSize));
            }
            catch (Exception e) when (e is DaxFsCorruptedException or InvalidOperationException)
            {
                // A stale inode image (crash image before replay) may not match its log: skip it.
            }
            if (rec.XattrBlock != 0)
                r.Add((rec.XattrBlock * Layout.BlockSize, 1024));
            if ((rec.Mode & FileModes.TypeMask) == FileModes.Symlink && (rec.Flags & InodeRecord.FlagInlineTarget) == 0 && rec.LogTailBlock != 0)
            {
                // The target block: the first ExtentMap record's device block.
                try
                {
                    var (_, records) = Media.ReadLog(dev, sb, ino);
                    foreach (var info in records.Where(x => x.Record.Type == LogRecordType.ExtentMap).Take(1))
                        r.Add(((long)info.Record.B * Layout.BlockSize, rec.Size));
                }
                catch (Exception e) when (e is DaxFsCorruptedException or InvalidOperationException)
                {
                    // As above.
                }
            }
        }
        return r;
    }
}
