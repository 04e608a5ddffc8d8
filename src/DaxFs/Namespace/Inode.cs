using DaxFs.Format;
using DaxFs.Iomap;

namespace DaxFs.Namespace;

/// <summary>Inode -- an inode in DRAM: its record (authoritative while mounted; the media copy is brought up to date
/// through the journal), its block map or directory index, its xattrs, the blocks of its log, and its lock.</summary>
internal sealed class Inode
{
    public readonly ulong Ino;
    public InodeRecord Rec;
    public ExtentMap? Map;
    public DirIndex? Dir;
    public List<(byte[] Name, byte[] Value)>? Xattrs;
    public readonly List<long> LogBlocks = [];
    public readonly ReaderWriterLockSlim Lock = new(LockRecursionPolicy.NoRecursion);
    public int Pins;
    public bool Freed;
    public List<DaxMapping>? Mappings; // live mappings of this file (under the inode's lock)
    // Page devices: the largest size since the last sync, while a truncate down is not yet durable (valid while
    // HighEpoch is past the volume's durable epoch). A crash can still show bytes up to it, so they are not stored over
    // in place. Under the inode's lock.
    public long UnsyncedHigh;
    public long HighEpoch;
    // In-place data mode: the times in Rec changed since the inode was last journaled (a lazily timed overwrite).
    // Under the inode's lock; the volume keeps the list of such inodes.
    public bool TimesPending;

    public Inode(ulong ino, InodeRecord rec)
    {
        Ino = ino;
        Rec = rec;
        uint type = rec.Mode & FileModes.TypeMask;
        if (type == FileModes.Directory)
            Dir = new DirIndex();
        else
            Map = new ExtentMap();
    }

    public uint Type => Rec.Mode & FileModes.TypeMask;
    public bool IsDir => Type == FileModes.Directory;
    public bool IsRegular => Type == FileModes.Regular;
    public bool IsSymlink => Type == FileModes.Symlink;

    /// <summary>Live records a compacted log would hold.</summary>
    public long LiveRecords => Dir?.Count ?? Map?.Count ?? 0;

    public InodeAttributes Attributes => new(Ino, Rec.Mode, Rec.Nlink, Rec.Uid, Rec.Gid, Rec.Size, Rec.Blocks * (Layout.BlockSize / 512),
        Rec.AtimeNs, Rec.MtimeNs, Rec.CtimeNs, Rec.BtimeNs, Rec.Rdev, Rec.Generation);

    public override string ToString() => $"inode {Ino}";
}
