namespace DaxFs.Fuse;

/// <summary>FuseFileSystemBase -- an <see cref="IFuseFileSystem"/> whose every operation answers ENOSYS (Init,
/// Destroy and Forget do nothing): derive and override what the file system implements. The kernel takes ENOSYS
/// from OPEN, OPENDIR, FLUSH, FSYNC, ACCESS and the xattr calls as "not needed" and stops asking.</summary>
public abstract class FuseFileSystemBase : IFuseFileSystem
{
    /// <inheritdoc/>
    public virtual void Init(FuseConnectionInfo connection)
    {
    }

    /// <inheritdoc/>
    public virtual void Destroy()
    {
    }

    /// <inheritdoc/>
    public virtual FuseEntry Lookup(FuseRequestContext context, ulong parent, string name)
        => throw NotImplemented("Lookup");

    /// <inheritdoc/>
    public virtual void Forget(ulong ino, ulong lookups)
    {
    }

    /// <inheritdoc/>
    public virtual FuseAttributes GetAttr(FuseRequestContext context, ulong ino, ulong? handle)
        => throw NotImplemented("GetAttr");

    /// <inheritdoc/>
    public virtual FuseAttributes SetAttr(FuseRequestContext context, ulong ino, FuseSetAttrRequest request)
        => throw NotImplemented("SetAttr");

    /// <inheritdoc/>
    public virtual string ReadLink(FuseRequestContext context, ulong ino) => throw NotImplemented("ReadLink");

    /// <inheritdoc/>
    public virtual FuseEntry MkNod(FuseRequestContext context, ulong parent, string name, uint mode, uint rdev,
        uint umask)
        => throw NotImplemented("MkNod");

    /// <inheritdoc/>
    public virtual FuseEntry MkDir(FuseRequestContext context, ulong parent, string name, uint mode, uint umask)
        => throw NotImplemented("MkDir");

    /// <inheritdoc/>
    public virtual FuseEntry Symlink(FuseRequestContext context, ulong parent, string name, string target)
        => throw NotImplemented("Symlink");

    /// <inheritdoc/>
    public virtual FuseEntry Link(FuseRequestContext context, ulong ino, ulong newParent, string newName)
        => throw NotImplemented("Link");

    /// <inheritdoc/>
    public virtual void Unlink(FuseRequestContext context, ulong parent, string name) => throw NotImplemented("Unlink");

    /// <inheritdoc/>
    public virtual void RmDir(FuseRequestContext context, ulong parent, string name) => throw NotImplemented("RmDir");

    /// <inheritdoc/>
    public virtual void Rename(FuseRequestContext context, ulong parent, string name, ulong newParent,
        string newName, FuseRenameFlags flags)
        => throw NotImplemented("Rename");

    /// <inheritdoc/>
    public virtual FuseOpenResult Open(FuseRequestContext context, ulong ino, int flags)
        => throw NotImplemented("Open");

    /// <inheritdoc/>
    public virtual FuseCreateResult Create(FuseRequestContext context, ulong parent, string name, uint mode,
        uint umask, int flags)
        => throw NotImplemented("Create");

    /// <inheritdoc/>
    public virtual void Read(FuseRequestContext context, ulong ino, ulong handle, long offset, int size,
        FuseReadReply reply)
        => throw NotImplemented("Read");

    /// <inheritdoc/>
    public virtual int Write(FuseRequestContext context, ulong ino, ulong handle, long offset,
        ReadOnlySpan<byte> data, int flags)
        => throw NotImplemented("Write");

    /// <inheritdoc/>
    public virtual bool HandlesKillPrivV2 => false;

    /// <inheritdoc/>
    public virtual bool KillSuidGid(FuseRequestContext context, ulong ino) => throw NotImplemented("KillSuidGid");

    /// <inheritdoc/>
    public virtual void Flush(FuseRequestContext context, ulong ino, ulong handle) => throw NotImplemented("Flush");

    /// <inheritdoc/>
    public virtual void Release(FuseRequestContext context, ulong ino, ulong handle, int flags)
        => throw NotImplemented("Release");

    /// <inheritdoc/>
    public virtual void Fsync(FuseRequestContext context, ulong ino, ulong handle, bool dataOnly)
        => throw NotImplemented("Fsync");

    /// <inheritdoc/>
    public virtual FuseOpenResult OpenDir(FuseRequestContext context, ulong ino, int flags)
        => throw NotImplemented("OpenDir");

    /// <inheritdoc/>
    public virtual void ReadDir(FuseRequestContext context, ulong ino, ulong handle, long offset,
        FuseDirectoryBuffer buffer)
        => throw NotImplemented("ReadDir");

    /// <inheritdoc/>
    public virtual void ReleaseDir(FuseRequestContext context, ulong ino, ulong handle)
        => throw NotImplemented("ReleaseDir");

    /// <inheritdoc/>
    public virtual void FsyncDir(FuseRequestContext context, ulong ino, ulong handle, bool dataOnly)
        => throw NotImplemented("FsyncDir");

    /// <inheritdoc/>
    public virtual FuseStatFs StatFs(FuseRequestContext context, ulong ino) => throw NotImplemented("StatFs");

    /// <inheritdoc/>
    public virtual void Access(FuseRequestContext context, ulong ino, int mask) => throw NotImplemented("Access");

    /// <inheritdoc/>
    public virtual void SetXattr(FuseRequestContext context, ulong ino, string name, ReadOnlySpan<byte> value,
        int flags)
        => throw NotImplemented("SetXattr");

    /// <inheritdoc/>
    public virtual ReadOnlyMemory<byte> GetXattr(FuseRequestContext context, ulong ino, string name)
        => throw NotImplemented("GetXattr");

    /// <inheritdoc/>
    public virtual IReadOnlyList<string> ListXattr(FuseRequestContext context, ulong ino)
        => throw NotImplemented("ListXattr");

    /// <inheritdoc/>
    public virtual void RemoveXattr(FuseRequestContext context, ulong ino, string name)
        => throw NotImplemented("RemoveXattr");

    /// <inheritdoc/>
    public virtual void Fallocate(FuseRequestContext context, ulong ino, ulong handle, long offset, long length,
        FuseFallocateFlags mode)
        => throw NotImplemented("Fallocate");

    /// <inheritdoc/>
    public virtual long Lseek(FuseRequestContext context, ulong ino, ulong handle, long offset, int whence)
        => throw NotImplemented("Lseek");

    /// <inheritdoc/>
    public virtual long CopyFileRange(FuseRequestContext context, ulong inoIn, ulong handleIn, long offsetIn,
        ulong inoOut, ulong handleOut, long offsetOut, long length, ulong flags)
        => throw NotImplemented("CopyFileRange");

    /// <summary>The ENOSYS failure of an operation that is not overridden.</summary>
    protected static DaxFsException NotImplemented(string operation) =>
        new(Errno.ENOSYS, $"{operation} is not implemented");
}
