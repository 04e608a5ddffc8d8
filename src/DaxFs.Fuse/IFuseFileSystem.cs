namespace DaxFs.Fuse;

/// <summary>IFuseFileSystem -- the node layer: one method per FUSE operation, inodes named by number.
/// <para>Contract. Methods are called concurrently from several worker threads and must be thread-safe. Failures
/// are reported by throwing <see cref="DaxFsException"/> with the POSIX errno; any other exception is answered
/// EIO and logged once. The root directory is inode <see cref="FuseMountOptions.RootInode"/>. Every
/// <see cref="FuseEntry"/> returned (Lookup, MkNod, MkDir, Symlink, Link, Create, and the Lookups the session
/// makes for READDIRPLUS) adds one to the inode's lookup count; <see cref="Forget"/> subtracts; an unlinked inode
/// must stay usable until its count reaches zero. With <c>default_permissions</c> (the default) the kernel
/// checks permissions before calling; new inodes belong to <see cref="FuseRequestContext.Uid"/>/
/// <see cref="FuseRequestContext.Gid"/>. The mode passed to MkNod/MkDir/Create already has the umask applied.
/// With export support (the default) Lookup must also answer "." and "..".</para></summary>
public interface IFuseFileSystem
{
    /// <summary>INIT: the connection is set up; <paramref name="connection"/> says what was negotiated.</summary>
    void Init(FuseConnectionInfo connection);

    /// <summary>The mount is going away (DESTROY, or the session's own unmount); called once.</summary>
    void Destroy();

    /// <summary>LOOKUP: the entry <paramref name="name"/> in directory <paramref name="parent"/> (ENOENT if
    /// none).</summary>
    FuseEntry Lookup(FuseRequestContext context, ulong parent, string name);

    /// <summary>FORGET / BATCH_FORGET: the kernel drops <paramref name="lookups"/> references to
    /// <paramref name="ino"/>. No reply; exceptions are logged and ignored.</summary>
    void Forget(ulong ino, ulong lookups);

    /// <summary>GETATTR: the attributes of <paramref name="ino"/>; <paramref name="handle"/> is set for
    /// fstat.</summary>
    FuseAttributes GetAttr(FuseRequestContext context, ulong ino, ulong? handle);

    /// <summary>SETATTR: chmod, chown, truncate, utimens; returns the attributes after the change.</summary>
    FuseAttributes SetAttr(FuseRequestContext context, ulong ino, FuseSetAttrRequest request);

    /// <summary>READLINK: the target of symlink <paramref name="ino"/>.</summary>
    string ReadLink(FuseRequestContext context, ulong ino);

    /// <summary>MKNOD: create a regular file, FIFO, socket or device node.</summary>
    FuseEntry MkNod(FuseRequestContext context, ulong parent, string name, uint mode, uint rdev, uint umask);

    /// <summary>MKDIR: create a directory (<paramref name="mode"/> holds permission bits only).</summary>
    FuseEntry MkDir(FuseRequestContext context, ulong parent, string name, uint mode, uint umask);

    /// <summary>SYMLINK: create symlink <paramref name="name"/> pointing at <paramref name="target"/>.</summary>
    FuseEntry Symlink(FuseRequestContext context, ulong parent, string name, string target);

    /// <summary>LINK: a new name <paramref name="newName"/> in <paramref name="newParent"/> for inode
    /// <paramref name="ino"/>.</summary>
    FuseEntry Link(FuseRequestContext context, ulong ino, ulong newParent, string newName);

    /// <summary>UNLINK: remove a non-directory name.</summary>
    void Unlink(FuseRequestContext context, ulong parent, string name);

    /// <summary>RMDIR: remove an empty directory.</summary>
    void RmDir(FuseRequestContext context, ulong parent, string name);

    /// <summary>RENAME / RENAME2: move a name, with renameat2 <paramref name="flags"/> (NOREPLACE, EXCHANGE,
    /// WHITEOUT; EINVAL for a combination the file system does not support).</summary>
    void Rename(FuseRequestContext context, ulong parent, string name, ulong newParent, string newName,
        FuseRenameFlags flags);

    /// <summary>OPEN: open a file; <paramref name="flags"/> are the open(2) flags (O_CREAT/O_EXCL/O_NOCTTY
    /// removed by the kernel; O_TRUNC is sent as a separate SETATTR).</summary>
    FuseOpenResult Open(FuseRequestContext context, ulong ino, int flags);

    /// <summary>CREATE: create and open a regular file in one step (ENOSYS makes the kernel use MkNod +
    /// Open).</summary>
    FuseCreateResult Create(FuseRequestContext context, ulong parent, string name, uint mode, uint umask, int flags);

    /// <summary>READ: up to <paramref name="size"/> bytes at <paramref name="offset"/> into
    /// <paramref name="reply"/> (fewer at end of file). Prefer <see cref="FuseReadReply.AddSegment"/> with the
    /// file's bytes on the media: that is the zero-copy path.</summary>
    void Read(FuseRequestContext context, ulong ino, ulong handle, long offset, int size, FuseReadReply reply);

    /// <summary>WRITE: store <paramref name="data"/> (a view of the request buffer, valid only during the call)
    /// at <paramref name="offset"/>; returns the bytes written. <paramref name="flags"/> are the open flags.</summary>
    int Write(FuseRequestContext context, ulong ino, ulong handle, long offset, ReadOnlySpan<byte> data, int flags);

    /// <summary>True if the file system clears set-id bits itself (<see cref="KillSuidGid"/>, and
    /// <see cref="FuseSetAttrFields.KillSuidGid"/> in <see cref="SetAttr"/>): INIT then negotiates
    /// FUSE_HANDLE_KILLPRIV_V2 and a write is one round trip (otherwise the kernel asks for the
    /// security.capability attribute before every write).</summary>
    bool HandlesKillPrivV2 { get; }

    /// <summary>Clears what a write, or an open with O_TRUNC, by a caller without CAP_FSETID clears on Linux
    /// file systems: the set-user-ID bit, the set-group-ID bit if the group may execute, and the
    /// security.capability attribute. Called only when <see cref="HandlesKillPrivV2"/> is true. Returns true if
    /// the mode changed (the kernel's cached attributes are then invalidated).</summary>
    bool KillSuidGid(FuseRequestContext context, ulong ino);

    /// <summary>FLUSH: close(2) of one descriptor of the open file (may come several times per open).</summary>
    void Flush(FuseRequestContext context, ulong ino, ulong handle);

    /// <summary>RELEASE: the last descriptor of the open file is closed.</summary>
    void Release(FuseRequestContext context, ulong ino, ulong handle, int flags);

    /// <summary>FSYNC: make the file durable (<paramref name="dataOnly"/> for fdatasync).</summary>
    void Fsync(FuseRequestContext context, ulong ino, ulong handle, bool dataOnly);

    /// <summary>OPENDIR: open a directory for reading.</summary>
    FuseOpenResult OpenDir(FuseRequestContext context, ulong ino, int flags);

    /// <summary>READDIR / READDIRPLUS: entries from <paramref name="offset"/> (0 = start) into
    /// <paramref name="buffer"/> until <see cref="FuseDirectoryBuffer.TryAdd"/> returns false or the directory
    /// ends. Offsets are the file system's cookies: whatever it gave as an entry's nextOffset.</summary>
    void ReadDir(FuseRequestContext context, ulong ino, ulong handle, long offset, FuseDirectoryBuffer buffer);

    /// <summary>RELEASEDIR: the directory is closed.</summary>
    void ReleaseDir(FuseRequestContext context, ulong ino, ulong handle);

    /// <summary>FSYNCDIR: make the directory durable.</summary>
    void FsyncDir(FuseRequestContext context, ulong ino, ulong handle, bool dataOnly);

    /// <summary>STATFS: space and inode counts of the volume.</summary>
    FuseStatFs StatFs(FuseRequestContext context, ulong ino);

    /// <summary>ACCESS: access(2) check of <paramref name="mask"/> (R_OK 4, W_OK 2, X_OK 1, F_OK 0); not sent
    /// with default_permissions.</summary>
    void Access(FuseRequestContext context, ulong ino, int mask);

    /// <summary>SETXATTR: set attribute <paramref name="name"/>; <paramref name="flags"/> XATTR_CREATE (1) /
    /// XATTR_REPLACE (2).</summary>
    void SetXattr(FuseRequestContext context, ulong ino, string name, ReadOnlySpan<byte> value, int flags);

    /// <summary>GETXATTR: the value of attribute <paramref name="name"/> (ENODATA if absent); the session answers
    /// size queries and ERANGE itself.</summary>
    ReadOnlyMemory<byte> GetXattr(FuseRequestContext context, ulong ino, string name);

    /// <summary>LISTXATTR: the names of all attributes of <paramref name="ino"/>.</summary>
    IReadOnlyList<string> ListXattr(FuseRequestContext context, ulong ino);

    /// <summary>REMOVEXATTR: remove attribute <paramref name="name"/> (ENODATA if absent).</summary>
    void RemoveXattr(FuseRequestContext context, ulong ino, string name);

    /// <summary>FALLOCATE: allocate, punch a hole, or zero a range (FALLOC_FL_* in <paramref name="mode"/>;
    /// EOPNOTSUPP for modes the file system does not implement).</summary>
    void Fallocate(FuseRequestContext context, ulong ino, ulong handle, long offset, long length,
        FuseFallocateFlags mode);

    /// <summary>LSEEK: SEEK_DATA (3) or SEEK_HOLE (4) from <paramref name="offset"/>; returns the new offset
    /// (ENXIO past the end). The kernel handles the other whence values itself.</summary>
    long Lseek(FuseRequestContext context, ulong ino, ulong handle, long offset, int whence);

    /// <summary>COPY_FILE_RANGE: copy <paramref name="length"/> bytes between two open files inside the volume;
    /// returns the bytes copied (EXDEV/ENOSYS make the kernel fall back to read + write).</summary>
    long CopyFileRange(FuseRequestContext context, ulong inoIn, ulong handleIn, long offsetIn, ulong inoOut,
        ulong handleOut, long offsetOut, long length, ulong flags);
}
