using System.Collections.Concurrent;
using System.Text;

namespace DaxFs.Fuse;

/// <summary>DaxVolumeFileSystem -- the node layer over a <see cref="DaxVolume"/>: each FUSE operation is one call of
/// the volume's inode API. The kernel's lookup references pin inodes (an unlinked file stays usable until the kernel
/// forgets it); reads reply with the file's bytes straight from the mapped media under a read lease.</summary>
public sealed class DaxVolumeFileSystem : FuseFileSystemBase
{
    private readonly DaxVolume _v;
    private readonly ConcurrentDictionary<ulong, long> _lookups = new();
    private readonly nint _base;
    private readonly FuseDataCaching _asked;
    private FuseOpenFlags _openFlags;

    /// <summary>Serves <paramref name="volume"/>; <paramref name="caching"/> says whether file data goes through the
    /// kernel's page cache (default: it does not, where the kernel allows that).</summary>
    public DaxVolumeFileSystem(DaxVolume volume, FuseDataCaching caching = FuseDataCaching.Auto)
    {
        ArgumentNullException.ThrowIfNull(volume);
        if (!Enum.IsDefined(caching))
            throw new ArgumentOutOfRangeException(nameof(caching), caching, "not a FuseDataCaching value");
        _v = volume;
        _base = volume.Device.BaseAddress;
        _asked = caching;
        DataCaching = caching == FuseDataCaching.Kernel ? FuseDataCaching.Kernel : FuseDataCaching.Direct;
    }

    /// <summary>How file data is served once INIT is done: <see cref="FuseDataCaching.Direct"/> (every read and write
    /// of a regular file reaches the daemon; no second copy of the media in the page cache) or
    /// <see cref="FuseDataCaching.Kernel"/>.</summary>
    public FuseDataCaching DataCaching { get; private set; }

    /// <summary>Why <see cref="FuseDataCaching.Auto"/> chose the kernel's page cache (null when it did not).</summary>
    public string? DataCachingFallback { get; private set; }

    /// <inheritdoc/>
    public override void Init(FuseConnectionInfo connection)
    {
        // Direct I/O files can be mmap'ed MAP_SHARED only with FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6); without it a
        // program's shared mapping would fail with ENODEV, so Auto keeps the page cache there.
        bool mmapOk = connection.Flags.HasFlag(FuseInitFlags.DirectIoAllowMmap);
        if (_asked == FuseDataCaching.Auto && !mmapOk)
        {
            DataCaching = FuseDataCaching.Kernel;
            DataCachingFallback = "the kernel does not offer FUSE_DIRECT_IO_ALLOW_MMAP (Linux < 6.6): shared mmap of a direct-I/O file would fail";
        }
        _openFlags = DataCaching == FuseDataCaching.Direct ? FuseOpenFlags.DirectIo | FuseOpenFlags.ParallelDirectWrites : FuseOpenFlags.None;
    }

    /// <inheritdoc/>
    public override void Destroy()
    {
        foreach (ulong ino in _lookups.Keys.ToList())
            if (_lookups.TryRemove(ino, out _) && ino != DaxVolume.RootIno)
                _v.Unpin(ino);
    }

    /// <summary>Counts one kernel reference to the entry's inode (pinning it on the first).</summary>
    private FuseEntry Entry(InodeAttributes a)
    {
        long n = _lookups.AddOrUpdate(a.Ino, 1, (_, c) => c + 1);
        if (n == 1 && a.Ino != DaxVolume.RootIno)
        {
            try
            {
                _v.Pin(a.Ino);
            }
            catch
            {
                _lookups.AddOrUpdate(a.Ino, 0, (_, c) => c - 1);
                throw;
            }
        }
        return new FuseEntry(Attr(a), a.Generation, FuseEntry.DefaultTimeout, FuseEntry.DefaultTimeout);
    }

    private static FuseAttributes Attr(InodeAttributes a) =>
        new(a.Ino, a.Size, a.Blocks, a.AtimeNs, a.MtimeNs, a.CtimeNs, a.Mode, a.Nlink, a.Uid, a.Gid, (uint)a.Rdev, (uint)a.BlockSize);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <inheritdoc/>
    public override FuseEntry Lookup(FuseRequestContext context, ulong parent, string name) => Entry(_v.Lookup(parent, B(name)));

    /// <inheritdoc/>
    public override void Forget(ulong ino, ulong lookups)
    {
        long left = _lookups.AddOrUpdate(ino, 0, (_, c) => c - (long)lookups);
        if (left <= 0 && _lookups.TryRemove(new KeyValuePair<ulong, long>(ino, left)) && ino != DaxVolume.RootIno)
            _v.Unpin(ino);
    }

    /// <inheritdoc/>
    public override FuseAttributes GetAttr(FuseRequestContext context, ulong ino, ulong? handle) => Attr(_v.GetAttributes(ino));

    /// <inheritdoc/>
    public override FuseAttributes SetAttr(FuseRequestContext context, ulong ino, FuseSetAttrRequest r)
    {
        long now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        var change = new SetAttributes
        {
            Mode = r.Has(FuseSetAttrFields.Mode) ? r.Mode : null,
            Uid = r.Has(FuseSetAttrFields.Uid) ? r.Uid : null,
            Gid = r.Has(FuseSetAttrFields.Gid) ? r.Gid : null,
            Size = r.Has(FuseSetAttrFields.Size) ? r.Size : null,
            AtimeNs = r.Has(FuseSetAttrFields.AtimeNow) ? now : r.Has(FuseSetAttrFields.Atime) ? r.AtimeNs : null,
            MtimeNs = r.Has(FuseSetAttrFields.MtimeNow) ? now : r.Has(FuseSetAttrFields.Mtime) ? r.MtimeNs : null,
            CtimeNs = r.Has(FuseSetAttrFields.Ctime) ? r.CtimeNs : null,
        };
        // HANDLE_KILLPRIV_V2: the kernel asks (FATTR_KILL_SUIDGID) on chown of a non-directory, and on truncate by a
        // caller without CAP_FSETID; the bits go as the VFS would clear them.
        bool kill = r.Has(FuseSetAttrFields.KillSuidGid);
        if (kill)
        {
            uint mode = change.Mode ?? _v.GetAttributes(ino).Mode;
            uint killed = mode & ~SetIdBitsToKill(mode);
            if (killed != mode || change.Mode is not null)
                change = change with { Mode = killed };
        }
        InodeAttributes result = _v.SetAttributes(ino, change);
        if (kill)
            DropCapability(ino);
        return Attr(result);
    }

    private const uint SetUid = 0x800, SetGid = 0x400, GroupExec = 0x8;
    private static readonly byte[] Capability = B("security.capability");

    /// <summary>The set-id bits a write, truncate or chown clears (should_remove_suid): set-user-ID always,
    /// set-group-ID when the group may execute (without group execute it marks mandatory locking, and stays).</summary>
    private static uint SetIdBitsToKill(uint mode) => (mode & SetUid) | ((mode & GroupExec) != 0 ? mode & SetGid : 0);

    private void DropCapability(ulong ino)
    {
        foreach (byte[] name in _v.ListXattrs(ino))
        {
            if (name.AsSpan().SequenceEqual(Capability))
            {
                _v.RemoveXattr(ino, Capability);
                return;
            }
        }
    }

    /// <inheritdoc/>
    public override bool HandlesKillPrivV2 => true;

    /// <inheritdoc/>
    public override bool KillSuidGid(FuseRequestContext context, ulong ino)
    {
        InodeAttributes a = _v.GetAttributes(ino);
        uint kill = SetIdBitsToKill(a.Mode);
        if (kill != 0)
            _v.SetAttributes(ino, new SetAttributes { Mode = a.Mode & ~kill });
        DropCapability(ino);
        return kill != 0;
    }

    /// <inheritdoc/>
    public override string ReadLink(FuseRequestContext context, ulong ino) => Encoding.UTF8.GetString(_v.ReadLink(ino));

    /// <inheritdoc/>
    public override FuseEntry MkNod(FuseRequestContext context, ulong parent, string name, uint mode, uint rdev, uint umask) =>
        Entry(_v.MakeNode(parent, B(name), mode, rdev, context.Uid, context.Gid));

    /// <inheritdoc/>
    public override FuseEntry MkDir(FuseRequestContext context, ulong parent, string name, uint mode, uint umask) =>
        Entry(_v.MakeDirectory(parent, B(name), mode, context.Uid, context.Gid));

    /// <inheritdoc/>
    public override FuseEntry Symlink(FuseRequestContext context, ulong parent, string name, string target) =>
        Entry(_v.CreateSymlink(parent, B(name), B(target), context.Uid, context.Gid));

    /// <inheritdoc/>
    public override FuseEntry Link(FuseRequestContext context, ulong ino, ulong newParent, string newName) =>
        Entry(_v.Link(ino, newParent, B(newName)));

    /// <inheritdoc/>
    public override void Unlink(FuseRequestContext context, ulong parent, string name) => _v.Unlink(parent, B(name));

    /// <inheritdoc/>
    public override void RmDir(FuseRequestContext context, ulong parent, string name) => _v.RemoveDirectory(parent, B(name));

    /// <inheritdoc/>
    public override void Rename(FuseRequestContext context, ulong parent, string name, ulong newParent, string newName, FuseRenameFlags flags)
    {
        if ((flags & FuseRenameFlags.Whiteout) != 0)
            throw new DaxFsException(Errno.EINVAL, "RENAME_WHITEOUT is not supported");
        var f = RenameFlags.None;
        if ((flags & FuseRenameFlags.NoReplace) != 0)
            f |= RenameFlags.NoReplace;
        if ((flags & FuseRenameFlags.Exchange) != 0)
            f |= RenameFlags.Exchange;
        _v.Rename(parent, B(name), newParent, B(newName), f);
    }

    /// <inheritdoc/>
    public override FuseOpenResult Open(FuseRequestContext context, ulong ino, int flags)
    {
        InodeAttributes a = _v.GetAttributes(ino);
        if (a.IsDirectory)
            throw new DaxFsException(Errno.EISDIR, $"inode {ino} is a directory");
        return new FuseOpenResult(ino, _openFlags);
    }

    /// <inheritdoc/>
    public override FuseCreateResult Create(FuseRequestContext context, ulong parent, string name, uint mode, uint umask, int flags)
    {
        FuseEntry e = Entry(_v.CreateFile(parent, B(name), mode, context.Uid, context.Gid));
        return new FuseCreateResult(e, new FuseOpenResult(e.Attributes.Ino, _openFlags));
    }

    /// <inheritdoc/>
    public override void Read(FuseRequestContext context, ulong ino, ulong handle, long offset, int size, FuseReadReply reply)
    {
        ReadLease lease = _v.BeginRead(ino);
        reply.Hold(lease); // until the writev from the media is done
        lease.Visit(offset, size, (dev, len) =>
        {
            if (dev >= 0)
                reply.AddSegment(_base + (nint)dev, (int)len);
            else
                reply.AddZeros((int)len);
        });
    }

    /// <inheritdoc/>
    public override int Write(FuseRequestContext context, ulong ino, ulong handle, long offset, ReadOnlySpan<byte> data, int flags) =>
        _v.Write(ino, offset, data);

    /// <inheritdoc/>
    public override void Flush(FuseRequestContext context, ulong ino, ulong handle)
    {
    }

    /// <inheritdoc/>
    public override void Release(FuseRequestContext context, ulong ino, ulong handle, int flags)
    {
    }

    /// <inheritdoc/>
    public override void Fsync(FuseRequestContext context, ulong ino, ulong handle, bool dataOnly) => _v.Fsync(ino, dataOnly);

    /// <inheritdoc/>
    public override FuseOpenResult OpenDir(FuseRequestContext context, ulong ino, int flags)
    {
        if (!_v.GetAttributes(ino).IsDirectory)
            throw new DaxFsException(Errno.ENOTDIR, $"inode {ino} is not a directory");
        return new FuseOpenResult(ino);
    }

    /// <inheritdoc/>
    public override void ReadDir(FuseRequestContext context, ulong ino, ulong handle, long offset, FuseDirectoryBuffer buffer)
    {
        ulong cookie = (ulong)offset;
        while (true)
        {
            IReadOnlyList<DirEntry> page = _v.ReadDirectory(ino, cookie, 256);
            if (page.Count == 0)
                return;
            foreach (DirEntry e in page)
            {
                if (!buffer.TryAdd(e.NameString, e.Ino, (uint)e.Type << 12, (long)e.Cookie))
                    return;
                cookie = e.Cookie;
            }
        }
    }

    /// <inheritdoc/>
    public override void ReleaseDir(FuseRequestContext context, ulong ino, ulong handle)
    {
    }

    /// <inheritdoc/>
    public override void FsyncDir(FuseRequestContext context, ulong ino, ulong handle, bool dataOnly) => _v.Fsync(ino, dataOnly);

    /// <inheritdoc/>
    public override FuseStatFs StatFs(FuseRequestContext context, ulong ino)
    {
        VolumeStats s = _v.StatFs();
        return new FuseStatFs((ulong)s.TotalBlocks, (ulong)s.FreeBlocks, (ulong)s.FreeBlocks, (ulong)s.TotalInodes, (ulong)s.FreeInodes,
            (uint)s.BlockSize, (uint)s.MaxNameLength, (uint)s.BlockSize);
    }

    /// <inheritdoc/>
    public override void Access(FuseRequestContext context, ulong ino, int mask)
    {
        InodeAttributes a = _v.GetAttributes(ino);
        if (context.Uid == 0 || mask == 0)
            return;
        uint bits = context.Uid == a.Uid ? (a.Mode >> 6) & 7 : context.Gid == a.Gid ? (a.Mode >> 3) & 7 : a.Mode & 7;
        if ((bits & (uint)mask) != (uint)mask)
            throw new DaxFsException(Errno.EACCES, $"access 0{mask} to inode {ino} denied");
    }

    /// <inheritdoc/>
    public override void SetXattr(FuseRequestContext context, ulong ino, string name, ReadOnlySpan<byte> value, int flags) =>
        _v.SetXattr(ino, B(name), value, (XattrFlags)flags);

    /// <inheritdoc/>
    public override ReadOnlyMemory<byte> GetXattr(FuseRequestContext context, ulong ino, string name) => _v.GetXattr(ino, B(name));

    /// <inheritdoc/>
    public override IReadOnlyList<string> ListXattr(FuseRequestContext context, ulong ino) =>
        _v.ListXattrs(ino).Select(n => Encoding.UTF8.GetString(n)).ToList();

    /// <inheritdoc/>
    public override void RemoveXattr(FuseRequestContext context, ulong ino, string name) => _v.RemoveXattr(ino, B(name));

    /// <inheritdoc/>
    public override void Fallocate(FuseRequestContext context, ulong ino, ulong handle, long offset, long length, FuseFallocateFlags mode)
    {
        const FuseFallocateFlags known = FuseFallocateFlags.KeepSize | FuseFallocateFlags.PunchHole | FuseFallocateFlags.ZeroRange;
        if ((mode & ~known) != 0)
            throw new DaxFsException(Errno.EOPNOTSUPP, $"fallocate mode {mode} is not supported");
        _v.Fallocate(ino, (FallocateMode)(uint)mode, offset, length);
    }

    /// <inheritdoc/>
    public override long Lseek(FuseRequestContext context, ulong ino, ulong handle, long offset, int whence) => whence switch
    {
        3 => _v.Seek(ino, offset, data: true),
        4 => _v.Seek(ino, offset, data: false),
        _ => throw new DaxFsException(Errno.EINVAL, $"whence {whence} is not SEEK_DATA or SEEK_HOLE"),
    };

    /// <inheritdoc/>
    public override long CopyFileRange(FuseRequestContext context, ulong inoIn, ulong handleIn, long offsetIn, ulong inoOut,
        ulong handleOut, long offsetOut, long length, ulong flags)
    {
        if (flags != 0)
            throw new DaxFsException(Errno.EINVAL, "copy_file_range flags must be 0");
        byte[] buf = new byte[(int)Math.Min(length, 1 << 20)];
        long done = 0;
        while (done < length)
        {
            int n = _v.Read(inoIn, offsetIn + done, buf.AsSpan(0, (int)Math.Min(buf.Length, length - done)));
            if (n == 0)
                break;
            _v.Write(inoOut, offsetOut + done, buf.AsSpan(0, n));
            done += n;
        }
        return done;
    }
}

/// <summary>FuseDataCaching -- whether a FUSE mount's file data also lives in the kernel's page cache.</summary>
public enum FuseDataCaching
{
    /// <summary><see cref="Direct"/> where the kernel can still give programs shared mappings of such files
    /// (FUSE_DIRECT_IO_ALLOW_MMAP), else <see cref="Kernel"/>.</summary>
    Auto,
    /// <summary>FOPEN_DIRECT_IO: reads are copied once, from the media into the program's buffer; writes once from the
    /// program's buffer to the daemon, once to the media; nothing is held twice in DRAM. Re-reads always reach the
    /// daemon.</summary>
    Direct,
    /// <summary>The kernel's page cache in front of the daemon (a re-read of cached data never leaves the kernel;
    /// writes are copied into the cache as well, and the data is held twice).</summary>
    Kernel,
}
