namespace DaxFs.Fuse;

// The public flag sets of include/uapi/linux/fuse.h, linux/fs.h and linux/falloc.h, with the kernel's values.

/// <summary>FuseInitFlags -- the capability bits of fuse_init_in/out.flags; bits 32..63 travel in flags2 when
/// FUSE_INIT_EXT is set.</summary>
[Flags]
public enum FuseInitFlags : ulong
{
    /// <summary>No capability.</summary>
    None = 0,
    /// <summary>FUSE_ASYNC_READ: the kernel may send several reads of one file at once.</summary>
    AsyncRead = 1UL << 0,
    /// <summary>FUSE_POSIX_LOCKS: the daemon implements POSIX locks.</summary>
    PosixLocks = 1UL << 1,
    /// <summary>FUSE_FILE_OPS (unused by kernels).</summary>
    FileOps = 1UL << 2,
    /// <summary>FUSE_ATOMIC_O_TRUNC: the daemon handles O_TRUNC in open.</summary>
    AtomicOTrunc = 1UL << 3,
    /// <summary>FUSE_EXPORT_SUPPORT: the daemon answers lookups of "." and "..".</summary>
    ExportSupport = 1UL << 4,
    /// <summary>FUSE_BIG_WRITES: writes larger than 4 KiB.</summary>
    BigWrites = 1UL << 5,
    /// <summary>FUSE_DONT_MASK: the kernel does not apply the umask to create modes.</summary>
    DontMask = 1UL << 6,
    /// <summary>FUSE_SPLICE_WRITE.</summary>
    SpliceWrite = 1UL << 7,
    /// <summary>FUSE_SPLICE_MOVE.</summary>
    SpliceMove = 1UL << 8,
    /// <summary>FUSE_SPLICE_READ.</summary>
    SpliceRead = 1UL << 9,
    /// <summary>FUSE_FLOCK_LOCKS: the daemon implements BSD locks.</summary>
    FlockLocks = 1UL << 10,
    /// <summary>FUSE_HAS_IOCTL_DIR.</summary>
    HasIoctlDir = 1UL << 11,
    /// <summary>FUSE_AUTO_INVAL_DATA: the kernel invalidates cached pages when mtime changes.</summary>
    AutoInvalData = 1UL << 12,
    /// <summary>FUSE_DO_READDIRPLUS: READDIRPLUS instead of READDIR.</summary>
    DoReaddirplus = 1UL << 13,
    /// <summary>FUSE_READDIRPLUS_AUTO: the kernel picks READDIR or READDIRPLUS adaptively.</summary>
    ReaddirplusAuto = 1UL << 14,
    /// <summary>FUSE_ASYNC_DIO: asynchronous direct I/O submission.</summary>
    AsyncDio = 1UL << 15,
    /// <summary>FUSE_WRITEBACK_CACHE: the kernel caches writes (never negotiated by DaxFS).</summary>
    WritebackCache = 1UL << 16,
    /// <summary>FUSE_NO_OPEN_SUPPORT: the kernel accepts ENOSYS from OPEN as "no open needed".</summary>
    NoOpenSupport = 1UL << 17,
    /// <summary>FUSE_PARALLEL_DIROPS: lookups and readdirs of one directory may run in parallel.</summary>
    ParallelDirops = 1UL << 18,
    /// <summary>FUSE_HANDLE_KILLPRIV.</summary>
    HandleKillpriv = 1UL << 19,
    /// <summary>FUSE_POSIX_ACL.</summary>
    PosixAcl = 1UL << 20,
    /// <summary>FUSE_ABORT_ERROR.</summary>
    AbortError = 1UL << 21,
    /// <summary>FUSE_MAX_PAGES: fuse_init_out.max_pages is valid.</summary>
    MaxPages = 1UL << 22,
    /// <summary>FUSE_CACHE_SYMLINKS: the kernel caches READLINK answers.</summary>
    CacheSymlinks = 1UL << 23,
    /// <summary>FUSE_NO_OPENDIR_SUPPORT.</summary>
    NoOpendirSupport = 1UL << 24,
    /// <summary>FUSE_EXPLICIT_INVAL_DATA.</summary>
    ExplicitInvalData = 1UL << 25,
    /// <summary>FUSE_MAP_ALIGNMENT.</summary>
    MapAlignment = 1UL << 26,
    /// <summary>FUSE_SUBMOUNTS.</summary>
    Submounts = 1UL << 27,
    /// <summary>FUSE_HANDLE_KILLPRIV_V2.</summary>
    HandleKillprivV2 = 1UL << 28,
    /// <summary>FUSE_SETXATTR_EXT: the extended fuse_setxattr_in (not negotiated: the 8-byte one is parsed).</summary>
    SetxattrExt = 1UL << 29,
    /// <summary>FUSE_INIT_EXT: fuse_init_in/out carry flags2.</summary>
    InitExt = 1UL << 30,
    /// <summary>FUSE_INIT_RESERVED.</summary>
    InitReserved = 1UL << 31,
    /// <summary>FUSE_SECURITY_CTX (flags2 bit 0).</summary>
    SecurityCtx = 1UL << 32,
    /// <summary>FUSE_HAS_INODE_DAX (flags2 bit 1).</summary>
    HasInodeDax = 1UL << 33,
    /// <summary>FUSE_DIRECT_IO_ALLOW_MMAP: shared mmap of a file opened with FOPEN_DIRECT_IO.</summary>
    DirectIoAllowMmap = 1UL << 36,
}

/// <summary>FuseSetAttrFields -- which fields of a SETATTR request are valid (the FATTR_* bits).</summary>
[Flags]
public enum FuseSetAttrFields : uint
{
    /// <summary>Nothing.</summary>
    None = 0,
    /// <summary>FATTR_MODE: change the permission bits.</summary>
    Mode = 1 << 0,
    /// <summary>FATTR_UID: change the owner.</summary>
    Uid = 1 << 1,
    /// <summary>FATTR_GID: change the group.</summary>
    Gid = 1 << 2,
    /// <summary>FATTR_SIZE: truncate or extend.</summary>
    Size = 1 << 3,
    /// <summary>FATTR_ATIME: set the access time to the given value.</summary>
    Atime = 1 << 4,
    /// <summary>FATTR_MTIME: set the modification time to the given value.</summary>
    Mtime = 1 << 5,
    /// <summary>FATTR_FH: the request names an open file handle.</summary>
    Handle = 1 << 6,
    /// <summary>FATTR_ATIME_NOW: set the access time to now (with <see cref="Atime"/>).</summary>
    AtimeNow = 1 << 7,
    /// <summary>FATTR_MTIME_NOW: set the modification time to now (with <see cref="Mtime"/>).</summary>
    MtimeNow = 1 << 8,
    /// <summary>FATTR_LOCKOWNER: the lock owner is valid.</summary>
    LockOwner = 1 << 9,
    /// <summary>FATTR_CTIME: set the change time.</summary>
    Ctime = 1 << 10,
    /// <summary>FATTR_KILL_SUIDGID: clear set-user-id and set-group-id bits.</summary>
    KillSuidGid = 1 << 11,
}

/// <summary>FuseOpenFlags -- what an OPEN/CREATE/OPENDIR answer asks of the kernel (the FOPEN_* bits).</summary>
[Flags]
public enum FuseOpenFlags : uint
{
    /// <summary>Nothing special: cached I/O, cache dropped on open.</summary>
    None = 0,
    /// <summary>FOPEN_DIRECT_IO: bypass the page cache for this open file.</summary>
    DirectIo = 1 << 0,
    /// <summary>FOPEN_KEEP_CACHE: keep cached data on open.</summary>
    KeepCache = 1 << 1,
    /// <summary>FOPEN_NONSEEKABLE: the file is not seekable.</summary>
    NonSeekable = 1 << 2,
    /// <summary>FOPEN_CACHE_DIR: the kernel may cache this directory's listing.</summary>
    CacheDir = 1 << 3,
    /// <summary>FOPEN_STREAM: no file position at all.</summary>
    Stream = 1 << 4,
    /// <summary>FOPEN_NOFLUSH: no FLUSH on close.</summary>
    NoFlush = 1 << 5,
    /// <summary>FOPEN_PARALLEL_DIRECT_WRITES: direct writes to this file may run in parallel.</summary>
    ParallelDirectWrites = 1 << 6,
}

/// <summary>FuseRenameFlags -- the flags of renameat2 (RENAME_* of linux/fs.h).</summary>
[Flags]
public enum FuseRenameFlags : uint
{
    /// <summary>Plain rename: replace the target if it exists.</summary>
    None = 0,
    /// <summary>RENAME_NOREPLACE: fail with EEXIST if the target exists.</summary>
    NoReplace = 1 << 0,
    /// <summary>RENAME_EXCHANGE: swap source and target atomically; both must exist.</summary>
    Exchange = 1 << 1,
    /// <summary>RENAME_WHITEOUT: leave a whiteout at the source (overlayfs).</summary>
    Whiteout = 1 << 2,
}

/// <summary>FuseFallocateFlags -- the mode of fallocate (FALLOC_FL_* of linux/falloc.h).</summary>
[Flags]
public enum FuseFallocateFlags : uint
{
    /// <summary>Allocate, extending the size if the range passes the end.</summary>
    None = 0,
    /// <summary>FALLOC_FL_KEEP_SIZE: do not change the file size.</summary>
    KeepSize = 0x01,
    /// <summary>FALLOC_FL_PUNCH_HOLE: free the range (always with <see cref="KeepSize"/>).</summary>
    PunchHole = 0x02,
    /// <summary>FALLOC_FL_NO_HIDE_STALE (reserved).</summary>
    NoHideStale = 0x04,
    /// <summary>FALLOC_FL_COLLAPSE_RANGE: remove the range and shift the rest down.</summary>
    CollapseRange = 0x08,
    /// <summary>FALLOC_FL_ZERO_RANGE: make the range read as zeros, allocated.</summary>
    ZeroRange = 0x10,
    /// <summary>FALLOC_FL_INSERT_RANGE: insert a hole and shift the rest up.</summary>
    InsertRange = 0x20,
    /// <summary>FALLOC_FL_UNSHARE_RANGE: unshare shared blocks.</summary>
    UnshareRange = 0x40,
}
