namespace DaxFs.Fuse;

/// <summary>FuseAttributes -- the attributes of an inode as stat(2) shows them. Times are nanoseconds since the
/// Unix epoch (negative before it).</summary>
/// <param name="Ino">Inode number; also the node id the kernel uses to name the inode (the root is
/// <see cref="FuseMountOptions.RootInode"/>).</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="Blocks">Allocated space in 512-byte units.</param>
/// <param name="AtimeNs">Last access, ns since the epoch.</param>
/// <param name="MtimeNs">Last modification of the contents, ns since the epoch.</param>
/// <param name="CtimeNs">Last change of the inode, ns since the epoch.</param>
/// <param name="Mode">File type and permission bits (S_IFMT | 07777).</param>
/// <param name="NLink">Number of hard links.</param>
/// <param name="Uid">Owner.</param>
/// <param name="Gid">Group.</param>
/// <param name="Rdev">Device number of a device node.</param>
/// <param name="BlockSize">Preferred I/O size (st_blksize).</param>
public readonly record struct FuseAttributes(ulong Ino, long Size, long Blocks, long AtimeNs, long MtimeNs,
    long CtimeNs, uint Mode, uint NLink, uint Uid, uint Gid, uint Rdev = 0, uint BlockSize = 4096);

/// <summary>FuseEntry -- the answer to a name lookup (and to every call that creates a name): the inode's
/// attributes, its generation, and how long the kernel may cache the name and the attributes. Every entry
/// returned counts as one lookup that a later <see cref="IFuseFileSystem.Forget"/> gives back.</summary>
/// <param name="Attributes">The inode's attributes; <see cref="FuseAttributes.Ino"/> is the node id.</param>
/// <param name="Generation">Inode generation: (ino, generation) must be unique for the volume's lifetime (NFS
/// export handles depend on it).</param>
/// <param name="EntryTimeout">How long the kernel may cache the name → inode binding.</param>
/// <param name="AttributeTimeout">How long the kernel may cache the attributes.</param>
public readonly record struct FuseEntry(FuseAttributes Attributes, ulong Generation, TimeSpan EntryTimeout,
    TimeSpan AttributeTimeout)
{
    /// <summary>The cache timeout used by <see cref="FuseEntry(FuseAttributes)"/>: one second, as libfuse.</summary>
    public static TimeSpan DefaultTimeout { get; } = TimeSpan.FromSeconds(1);

    /// <summary>An entry with generation 0 and the default timeouts.</summary>
    public FuseEntry(FuseAttributes attributes) : this(attributes, 0, DefaultTimeout, DefaultTimeout)
    {
    }
}
