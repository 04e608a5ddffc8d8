namespace DaxFs.Fuse.Raw;

/// <summary>FuseKernel -- protocol constants of include/uapi/linux/fuse.h and the few other kernel headers the
/// protocol leans on (falloc.h, fs.h, xattr.h, ioctl.h).</summary>
internal static class FuseKernel
{
    /// <summary>FUSE_KERNEL_VERSION: the major version this layer speaks.</summary>
    public const uint KernelVersion = 7;

    /// <summary>The minor version this layer speaks (the structs below are those of 7.38); a newer kernel falls
    /// back to it, as the version negotiation in fuse.h prescribes.</summary>
    public const uint KernelMinorVersion = 38;

    /// <summary>The oldest minor accepted: 7.23 brought RENAME2, time_gran and the 64-byte fuse_init_out.</summary>
    public const uint MinimumKernelMinorVersion = 23;

    /// <summary>FUSE_ROOT_ID: the node id of the root directory.</summary>
    public const ulong RootId = 1;

    /// <summary>FUSE_MIN_READ_BUFFER: the kernel refuses a read of /dev/fuse into a smaller buffer.</summary>
    public const int MinReadBuffer = 8192;

    /// <summary>Longest file name (NAME_MAX).</summary>
    public const int NameMax = 255;

    /// <summary>Longest extended attribute name (XATTR_NAME_MAX).</summary>
    public const int XattrNameMax = 255;

    /// <summary>Largest extended attribute value (XATTR_SIZE_MAX).</summary>
    public const int XattrSizeMax = 65536;

    /// <summary>Longest symlink target including the terminator (PATH_MAX).</summary>
    public const int PathMax = 4096;

    /// <summary>FUSE_DEV_IOC_CLONE = _IOR(229, 0, uint32_t): attach a new /dev/fuse descriptor to the
    /// connection of an existing one.</summary>
    public const uint DevIocClone = (2u << 30) | (sizeof(uint) << 16) | (229u << 8) | 0u;

    /// <summary>The interrupt bit of a reply's unique: an INTERRUPT request's unique is its target's | 1.</summary>
    public const ulong IntReqBit = 1;

    // FUSE_GETATTR_FH: fuse_getattr_in.fh is valid.
    public const uint GetAttrFh = 1;

    // FUSE_WRITE_KILL_SUIDGID (fuse_write_in.write_flags): the writer lacks CAP_FSETID; clear set-id bits.
    public const uint WriteKillSuidGid = 1 << 2;

    // FUSE_NOTIFY_INVAL_INODE: the notification code (in fuse_out_header.error) that drops cached attributes/pages.
    public const int NotifyInvalInode = 2;

    // FUSE_OPEN_KILL_SUIDGID (fuse_open_in.open_flags): open with O_TRUNC by a caller without CAP_FSETID.
    public const uint OpenKillSuidGid = 1 << 0;

    // FUSE_FSYNC_FDATASYNC: sync data only.
    public const uint FsyncFdatasync = 1;

    // FUSE_RELEASE_FLUSH: flush before release.
    public const uint ReleaseFlush = 1;

    // lseek whence values (unistd.h); the kernel only sends SEEK_DATA and SEEK_HOLE to the daemon.
    public const int SeekSet = 0, SeekCur = 1, SeekEnd = 2, SeekData = 3, SeekHole = 4;
}
