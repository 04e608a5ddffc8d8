using System.Text;
using DaxFs.Format;
using DaxFs.Iomap;
using DaxFs.Journal;
using DaxFs.Namespace;
using DaxFs.Pmem;

namespace DaxFs;

public sealed partial class DaxVolume
{
    /// <summary>fsck's load: problems are collected into <paramref name="problems"/> instead of thrown.</summary>
    internal static DaxVolume OpenForCheck(PmemDevice device, Superblock sb, List<string> problems) =>
        new(device, false, sb, new MountOptions(), problems);

    /// <summary>Inodes in use.</summary>
    internal long InodeCountInUse => _inodes.Count;

    /// <summary>The invariants the loader does not need: link counts, reachability, parents, sizes, orphans.</summary>
    internal void CrossCheck(List<string> errors)
    {
        var refs = new Dictionary<ulong, uint>();
        var subdirs = new Dictionary<ulong, uint>();
        var dirEntries = new Dictionary<ulong, int>();
        foreach (Inode dir in _inodes.Values.Where(i => i.IsDir))
        {
            foreach (var (name, slot) in dir.Dir!.All)
            {
                refs[slot.Ino] = refs.GetValueOrDefault(slot.Ino) + 1;
                if (!_inodes.TryGetValue(slot.Ino, out Inode? child))
                    continue;
                if (child.IsDir)
                {
                    subdirs[dir.Ino] = subdirs.GetValueOrDefault(dir.Ino) + 1;
                    dirEntries[child.Ino] = dirEntries.GetValueOrDefault(child.Ino) + 1;
                    if (child.Rec.Parent != dir.Ino)
                        errors.Add($"directory {child.Ino} ('{Encoding.UTF8.GetString(name)}' in {dir.Ino}) says its parent is {child.Rec.Parent}");
                }
            }
        }
        foreach (Inode i in _inodes.Values.OrderBy(i => i.Ino))
        {
            uint expect = i.IsDir ? 2 + subdirs.GetValueOrDefault(i.Ino) : refs.GetValueOrDefault(i.Ino);
            if (i.Ino != RootIno && i.IsDir && dirEntries.GetValueOrDefault(i.Ino) > 1)
                errors.Add($"directory {i.Ino} has {dirEntries[i.Ino]} names");
            if (i.Rec.Nlink == 0)
                errors.Add($"inode {i.Ino} is an orphan (unlinked while open); a mount frees it");
            else if (i.Rec.Nlink != expect)
                errors.Add($"inode {i.Ino} has link count {i.Rec.Nlink}, but {expect} names/links point at it");
            if (i.IsRegular)
            {
                long visible = (i.Rec.Size + Layout.BlockSize - 1) >> Layout.BlockShift;
                foreach (Extent e in i.Map!.Extents)
                    if (!e.Unwritten && e.FileEnd > visible)
                    {
                        errors.Add($"inode {i.Ino} has written blocks [{e.FileBlock}, {e.FileEnd}) past its size {i.Rec.Size}");
                        break;
                    }
            }
            if (i.IsSymlink)
            {
                bool inline = (i.Rec.Flags & InodeRecord.FlagInlineTarget) != 0;
                var (kind, _, _) = i.Map!.Lookup(0, 1);
                if (i.Rec.Size < 1 || i.Rec.Size > Layout.MaxSymlinkBytes || (!inline && kind != MapKind.Mapped))
                    errors.Add($"symbolic link {i.Ino} has no valid target (size {i.Rec.Size})");
            }
        }
        foreach (ulong ino in Unreachable())
            if (_inodes[ino].Rec.Nlink > 0)
                errors.Add($"inode {ino} is not reachable from the root");
    }

    /// <summary>Live inodes no directory path from the root reaches.</summary>
    private List<ulong> Unreachable()
    {
        var seen = new HashSet<ulong> { RootIno };
        var queue = new Queue<Inode>([_inodes[RootIno]]);
        while (queue.Count > 0)
        {
            Inode d = queue.Dequeue();
            foreach (var (_, slot) in d.Dir!.All)
                if (seen.Add(slot.Ino) && _inodes.TryGetValue(slot.Ino, out Inode? c) && c.IsDir)
                    queue.Enqueue(c);
        }
        return _inodes.Keys.Where(k => !seen.Contains(k)).OrderBy(k => k).ToList();
    }

    /// <summary>fsck --repair: clears bad inode slots, rewrites damaged logs and xattrs from what could be read,
    /// fixes link and block counts, links unreachable inodes into /lost+found, frees orphans.</summary>
    internal void Repair(List<string> repairs)
    {
        _ns.EnterWriteLock();
        try
        {
            foreach (ulong ino in _badSlots)
            {
                using var tx = Tx.Begin(this);
                tx.BeginChanges();
                var blank = new Inode(ino, new InodeRecord { Generation = _generations[ino] + 1 });
                tx.Touch(blank);
                tx.Commit();
                ReleaseInodeSlots([ino]);
                repairs.Add($"cleared the corrupted inode slot {ino}");
            }
            foreach (ulong ino in _damaged.Where(_inodes.ContainsKey).OrderBy(x => x))
            {
                Inode i = _inodes[ino];
                using var tx = Tx.Begin(this);
                tx.BeginChanges();
                RewriteLog(tx, i);
                if (i.Rec.XattrBlock == 0 && i.Xattrs is not null)
                    i.Xattrs = null;
                tx.Touch(i);
                tx.Commit();
                repairs.Add($"rewrote the log of inode {ino} from what could be read");
            }
            FixLinks(repairs);
        }
        finally
        {
            _ns.ExitWriteLock();
        }
        foreach (Inode i in _inodes.Values.Where(i => i.Rec.Nlink == 0).ToList())
        {
            using var tx = Tx.Begin(this);
            tx.BeginChanges();
            FreeInode(tx, i);
            tx.Commit();
            repairs.Add($"freed orphan inode {i.Ino}");
        }
    }

    /// <summary>Rewrites an inode's log into a new chain from its DRAM state (a forced compaction).</summary>
    private void RewriteLog(Tx tx, Inode i)
    {
        long live = i.LiveRecords;
        long bytes = i.Dir is { } d ? d.All.Sum(e => (long)LogFormat.Length(LogRecordType.DirAdd, e.Name.Length)) : live * 32;
        tx.Reserve(LogBlocksFor(bytes));
        CompactLog(tx, i, live);
    }

    /// <summary>Link counts from the directory tree; unreachable inodes go to /lost+found.</summary>
    private void FixLinks(List<string> repairs)
    {
        // Only the top of each unreachable subtree is linked: its descendants come back with it.
        var unreachable = Unreachable().Where(k => _inodes[k].Rec.Nlink > 0).ToHashSet();
        var contained = new HashSet<ulong>();
        foreach (ulong k in unreachable)
            if (_inodes[k].Dir is { } d)
                foreach (var (_, slot) in d.All)
                    contained.Add(slot.Ino);
        List<ulong> lost = unreachable.Where(k => !contained.Contains(k)).OrderBy(k => k).ToList();
        if (lost.Count > 0)
        {
            Inode root = _inodes[RootIno];
            if (!root.Dir!.TryGet("lost+found"u8, out DirSlot lf))
            {
                _ns.ExitWriteLock();
                try
                {
                    MakeDirectory(RootIno, "lost+found"u8, 0x1C0);
                }
                finally
                {
                    _ns.EnterWriteLock();
                }
                root.Dir.TryGet("lost+found"u8, out lf);
                repairs.Add("created /lost+found");
            }
            Inode lfDir = _inodes[lf.Ino];
            foreach (ulong ino in lost)
            {
                Inode i = _inodes[ino];
                using var tx = Tx.Begin(this);
                tx.Reserve(LogBlocksFor(64));
                tx.BeginChanges();
                AddEntry(tx, lfDir, Encoding.UTF8.GetBytes("#" + ino), i, NowNs());
                if (i.IsDir)
                {
                    i.Rec.Parent = lfDir.Ino;
                    lfDir.Rec.Nlink++;
                    tx.Touch(i);
                }
                tx.Commit();
                repairs.Add($"linked unreachable inode {ino} into /lost+found as #{ino}");
            }
        }
        var refs = new Dictionary<ulong, uint>();
        var subdirs = new Dictionary<ulong, uint>();
        foreach (Inode dir in _inodes.Values.Where(i => i.IsDir))
            foreach (var (_, slot) in dir.Dir!.All)
            {
                refs[slot.Ino] = refs.GetValueOrDefault(slot.Ino) + 1;
                if (_inodes.TryGetValue(slot.Ino, out Inode? c) && c.IsDir)
                {
                    subdirs[dir.Ino] = subdirs.GetValueOrDefault(dir.Ino) + 1;
                    if (c.Rec.Parent != dir.Ino)
                    {
                        using var ptx = Tx.Begin(this);
                        ptx.BeginChanges();
                        c.Rec.Parent = dir.Ino;
                        ptx.Touch(c);
                        ptx.Commit();
                        repairs.Add($"set the parent of directory {c.Ino} to {dir.Ino}");
                    }
                }
            }
        foreach (Inode i in _inodes.Values.OrderBy(i => i.Ino).ToList())
        {
            uint expect = i.IsDir ? 2 + subdirs.GetValueOrDefault(i.Ino) : refs.GetValueOrDefault(i.Ino);
            if (i.Rec.Nlink == expect || (i.Rec.Nlink == 0 && expect == 0))
                continue;
            using var tx = Tx.Begin(this);
            tx.BeginChanges();
            repairs.Add($"set the link count of inode {i.Ino} from {i.Rec.Nlink} to {expect}");
            i.Rec.Nlink = expect;
            tx.Touch(i);
            tx.Commit();
        }
    }
}
