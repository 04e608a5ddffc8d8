using System.Text;
using DaxFs.Format;

namespace DaxFs;

/// <summary>InodeAttributes -- what stat(2) reports of an inode. Times are nanoseconds since the Unix epoch.</summary>
/// <param name="Ino">Inode number.</param>
/// <param name="Mode">File type and permission bits (S_IF* | 0o7777).</param>
/// <param name="Nlink">Hard links.</param>
/// <param name="Uid">Owner.</param>
/// <param name="Gid">Group.</param>
/// <param name="Size">Bytes.</param>
/// <param name="Blocks">512-byte units allocated (data, logs, xattrs).</param>
/// <param name="AtimeNs">Last access (set only explicitly: the volume does not write on reads).</param>
/// <param name="MtimeNs">Last data change.</param>
/// <param name="CtimeNs">Last inode change.</param>
/// <param name="BtimeNs">Creation.</param>
/// <param name="Rdev">Device number of a device node.</param>
/// <param name="Generation">Incremented each time the inode number is reused.</param>
public readonly record struct InodeAttributes(ulong Ino, uint Mode, uint Nlink, uint Uid, uint Gid, long Size, long Blocks,
    long AtimeNs, long MtimeNs, long CtimeNs, long BtimeNs, ulong Rdev, uint Generation)
{
    /// <summary>Whether this is a directory.</summary>
    public bool IsDirectory => (Mode & FileModes.TypeMask) == FileModes.Directory;

    /// <summary>Whether this is a regular file.</summary>
    public bool IsRegularFile => (Mode & FileModes.TypeMask) == FileModes.Regular;

    /// <summary>Whether this is a symbolic link.</summary>
    public bool IsSymlink => (Mode & FileModes.TypeMask) == FileModes.Symlink;

    /// <summary>Preferred I/O size.</summary>
    public int BlockSize => Layout.BlockSize;
}

/// <summary>DirEntry -- one name in a directory listing.</summary>
/// <param name="Name">The name's bytes (UTF-8 by convention, any bytes but '/' and NUL allowed).</param>
/// <param name="Ino">The inode it names.</param>
/// <param name="Type">d_type: <see cref="FileModes"/> type bits shifted right by 12.</param>
/// <param name="Cookie">Pass it back to continue the listing after this entry; stable while the entry exists.</param>
public readonly record struct DirEntry(byte[] Name, ulong Ino, byte Type, ulong Cookie)
{
    /// <summary>The name decoded as UTF-8.</summary>
    public string NameString => Encoding.UTF8.GetString(Name);
}

/// <summary>VolumeStats -- statfs(2).</summary>
/// <param name="BlockSize">Bytes per block.</param>
/// <param name="TotalBlocks">Blocks of the data area.</param>
/// <param name="FreeBlocks">Free blocks.</param>
/// <param name="TotalInodes">Inode slots.</param>
/// <param name="FreeInodes">Free inode slots.</param>
/// <param name="MaxNameLength">Longest name in bytes.</param>
/// <param name="FreeAlignedExtents">Free 2 MiB-aligned groups (what large files can still get PMD-mappable).</param>
public readonly record struct VolumeStats(int BlockSize, long TotalBlocks, long FreeBlocks, long TotalInodes, long FreeInodes,
    int MaxNameLength, long FreeAlignedExtents);

/// <summary>SetAttributes -- the fields of a setattr call; null fields are left alone.</summary>
public sealed record SetAttributes
{
    /// <summary>New permission bits (the type bits are ignored).</summary>
    public uint? Mode { get; init; }
    /// <summary>New owner.</summary>
    public uint? Uid { get; init; }
    /// <summary>New group.</summary>
    public uint? Gid { get; init; }
    /// <summary>New size (truncate or extend).</summary>
    public long? Size { get; init; }
    /// <summary>New access time, ns since the epoch.</summary>
    public long? AtimeNs { get; init; }
    /// <summary>New modification time, ns since the epoch.</summary>
    public long? MtimeNs { get; init; }
    /// <summary>New change time (FUSE can send it), ns since the epoch; otherwise ctime becomes now.</summary>
    public long? CtimeNs { get; init; }
}

/// <summary>RenameFlags -- renameat2(2) flags.</summary>
[Flags]
public enum RenameFlags
{
    /// <summary>Replace the target if it exists.</summary>
    None = 0,
    /// <summary>Fail with EEXIST if the target exists.</summary>
    NoReplace = 1,
    /// <summary>Atomically swap source and target; both must exist.</summary>
    Exchange = 2,
}

/// <summary>FallocateMode -- fallocate(2) modes (Linux values).</summary>
[Flags]
public enum FallocateMode
{
    /// <summary>Allocate (as unwritten: reads zeros) and extend the size.</summary>
    Allocate = 0,
    /// <summary>Do not change the size.</summary>
    KeepSize = 1,
    /// <summary>Free the range (with KeepSize).</summary>
    PunchHole = 2,
    /// <summary>Make the range read as zeros, keeping or adding allocation.</summary>
    ZeroRange = 0x10,
}

/// <summary>XattrFlags -- setxattr(2) flags.</summary>
[Flags]
public enum XattrFlags
{
    /// <summary>Create or replace.</summary>
    None = 0,
    /// <summary>Fail with EEXIST if it exists.</summary>
    Create = 1,
    /// <summary>Fail with ENODATA if it does not exist.</summary>
    Replace = 2,
}

/// <summary>FormatOptions -- mkfs settings.</summary>
public sealed record FormatOptions
{
    /// <summary>Journal bytes (default: 1/64 of the device, between 256 KiB and 64 MiB).</summary>
    public long? JournalBytes { get; init; }
    /// <summary>Inode slots (default: one per 16 KiB).</summary>
    public long? InodeCount { get; init; }
}

/// <summary>MountOptions -- how a volume is used.</summary>
public sealed record MountOptions
{
    /// <summary>Make every mutating call durable on return on Page devices too (msync per call).</summary>
    public bool Sync { get; init; }

    /// <summary>How async mappings' dirty data is found at fsync (default: extents; Page and PageFault fall back to
    /// extents, saying why, where the kernel or the backing cannot write-protect).</summary>
    public DirtyTracking DirtyTracking { get; init; } = DirtyTracking.Extent;

    /// <summary>How writes over a file's existing bytes reach the media (default: <see cref="DataMode.Atomic"/>).</summary>
    public DataMode Data { get; init; } = DataMode.Atomic;
}

/// <summary>DataMode -- what a write over bytes a file already has promises after a crash.</summary>
public enum DataMode
{
    /// <summary>Copy on write: every write is atomic and durable when it returns (the durability contract).</summary>
    Atomic,

    /// <summary>In place, as ext4-DAX writes: an overwrite stores into the file's own blocks, durable when it returns
    /// but not atomic -- a crash during the call may leave any mix of old and new 8-byte words
    /// in the range it wrote (never bytes from anywhere else). An overwrite that changes nothing but the file's times
    /// journals those lazily (Linux's lazytime): they become durable with the file's next metadata change, fsync (not
    /// fdatasync), <see cref="DaxVolume.Sync"/> or unmount; they come from the kernel's coarse clock (one scheduler
    /// tick, a few ms), as Linux stamps files. Writes that extend the file, fill holes or convert
    /// unwritten extents stay atomic. On Page devices, whose pages the kernel may write back at any moment before a
    /// sync, writes stay copy on write (<see cref="DaxVolume.DataMode"/> says which mode is in effect).</summary>
    InPlace,
}
