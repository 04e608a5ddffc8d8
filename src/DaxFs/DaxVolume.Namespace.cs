using System.Text;
using DaxFs.Format;
using DaxFs.Journal;
using DaxFs.Namespace;

namespace DaxFs;

public sealed partial class DaxVolume
{
    /// <summary>Most hard links an inode may have.</summary>
    public const uint MaxLinks = 65000;

    /// <summary>The attributes of inode <paramref name="ino"/>.</summary>
    public InodeAttributes GetAttributes(ulong ino)
    {
        ThrowIfDisposed();
        Inode i = Get(ino);
        EnterRead(i);
        try
        {
            return i.Attributes;
        }
        finally
        {
            i.Lock.ExitReadLock();
        }
    }

    /// <summary>The inode named <paramref name="name"/> in directory <paramref name="parent"/> ("." and ".." too).</summary>
    public InodeAttributes Lookup(ulong parent, ReadOnlySpan<byte> name)
    {
        ThrowIfDisposed();
        if (name.Length > Layout.MaxNameBytes)
            throw new DaxFsException(Errno.ENAMETOOLONG, $"name of {name.Length} bytes is longer than {Layout.MaxNameBytes}");
        _ns.EnterReadLock();
        try
        {
            Inode dir = GetDir(parent);
            return GetAttributes(LookupLocked(dir, name));
        }
        finally
        {
            _ns.ExitReadLock();
        }
    }

    /// <inheritdoc cref="Lookup(ulong, ReadOnlySpan{byte})"/>
    public InodeAttributes Lookup(ulong parent, string name) => Lookup(parent, Encoding.UTF8.GetBytes(name));

    /// <summary>Creates a regular file; EEXIST if the name is taken.</summary>
    public InodeAttributes CreateFile(ulong parent, ReadOnlySpan<byte> name, uint mode, uint uid = 0, uint gid = 0) =>
        CreateInode(parent, name, FileModes.Regular | (mode & FileModes.PermissionMask), uid, gid, 0, default);

    /// <inheritdoc cref="CreateFile(ulong, ReadOnlySpan{byte}, uint, uint, uint)"/>
    public InodeAttributes CreateFile(ulong parent, string name, uint mode, uint uid = 0, uint gid = 0) =>
        CreateFile(parent, Encoding.UTF8.GetBytes(name), mode, uid, gid);

    /// <summary>Creates a directory.</summary>
    public InodeAttributes MakeDirectory(ulong parent, ReadOnlySpan<byte> name, uint mode, uint uid = 0, uint gid = 0) =>
        CreateInode(parent, name, FileModes.Directory | (mode & FileModes.PermissionMask), uid, gid, 0, default);

    /// <inheritdoc cref="MakeDirectory(ulong, ReadOnlySpan{byte}, uint, uint, uint)"/>
    public InodeAttributes MakeDirectory(ulong parent, string name, uint mode, uint uid = 0, uint gid = 0) =>
        MakeDirectory(parent, Encoding.UTF8.GetBytes(name), mode, uid, gid);

    /// <summary>mknod: a regular file, FIFO, socket or device node (<paramref name="mode"/> carries the type).</summary>
    public InodeAttributes MakeNode(ulong parent, ReadOnlySpan<byte> name, uint mode, ulong rdev, uint uid = 0, uint gid = 0)
    {
        uint type = mode & FileModes.TypeMask;
        if (type == 0)
            type = FileModes.Regular;
        if (type is not (FileModes.Regular or FileModes.Fifo or FileModes.Socket or FileModes.CharDevice or FileModes.BlockDevice))
            throw new DaxFsException(Errno.EINVAL, $"mknod cannot make file type 0o{Convert.ToString(type, 8)}");
        return CreateInode(parent, name, type | (mode & FileModes.PermissionMask), uid, gid,
            type is FileModes.CharDevice or FileModes.BlockDevice ? rdev : 0, default);
    }

    /// <summary>Creates a symbolic link to <paramref name="target"/> (1..4095 bytes).</summary>
    public InodeAttributes CreateSymlink(ulong parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, uint uid = 0, uint gid = 0)
    {
        if (target.IsEmpty)
            throw new DaxFsException(Errno.ENOENT, "a symbolic link needs a target");
        if (target.Length > Layout.MaxSymlinkBytes)
            throw new DaxFsException(Errno.ENAMETOOLONG, $"symbolic link target of {target.Length} bytes is longer than {Layout.MaxSymlinkBytes}");
        if (target.IndexOf((byte)0) >= 0)
            throw new DaxFsException(Errno.EINVAL, "a symbolic link target cannot contain NUL");
        return CreateInode(parent, name, FileModes.Symlink | 0x1FF, uid, gid, 0, target);
    }

    /// <inheritdoc cref="CreateSymlink(ulong, ReadOnlySpan{byte}, ReadOnlySpan{byte}, uint, uint)"/>
    public InodeAttributes CreateSymlink(ulong parent, string name, string target, uint uid = 0, uint gid = 0) =>
        CreateSymlink(parent, Encoding.UTF8.GetBytes(name), Encoding.UTF8.GetBytes(target), uid, gid);

    /// <summary>The target of symbolic link <paramref name="ino"/>.</summary>
    public byte[] ReadLink(ulong ino)
    {
        ThrowIfDisposed();
        Inode i = Get(ino);
        EnterRead(i);
        try
        {
            if (!i.IsSymlink)
                throw new DaxFsException(Errno.EINVAL, $"inode {ino} is not a symbolic link");
            int len = (int)i.Rec.Size;
            if ((i.Rec.Flags & InodeRecord.FlagInlineTarget) != 0)
                return i.Rec.Inline.AsSpan(0, len).ToArray();
            var (kind, dev, _) = i.Map!.Lookup(0, 1);
            if (kind != Iomap.MapKind.Mapped)
                throw new DaxFsCorruptedException($"inode {ino}", _sb.InodeOffset(ino), "symbolic link has no target block");
            return _dev.GetSpan(dev * Layout.BlockSize, len).ToArray();
        }
        finally
        {
            i.Lock.ExitReadLock();
        }
    }

    /// <summary>Adds the name <paramref name="newName"/> in <paramref name="newParent"/> for inode <paramref name="ino"/>.</summary>
    public InodeAttributes Link(ulong ino, ulong newParent, ReadOnlySpan<byte> newName)
    {
        ThrowIfDisposed();
        ValidateNewName(newName);
        _ns.EnterWriteLock();
        try
        {
            Inode target = Get(ino);
            Inode dir = GetDir(newParent);
            if (target.IsDir)
                throw new DaxFsException(Errno.EPERM, $"inode {ino} is a directory: directories cannot be hard-linked");
            if (dir.Rec.Nlink == 0)
                throw new DaxFsException(Errno.ENOENT, $"directory {newParent} has been removed");
            if (target.Rec.Nlink == 0)
                throw new DaxFsException(Errno.ENOENT, $"inode {ino} has been unlinked");
            if (target.Rec.Nlink >= MaxLinks)
                throw new DaxFsException(Errno.EMLINK, $"inode {ino} has {target.Rec.Nlink} links already");
            if (dir.Dir!.TryGet(newName, out _))
                throw new DaxFsException(Errno.EEXIST, $"'{Show(newName)}' exists in directory {newParent}");
            using LockSet locks = LockAll(dir, target);
            using var tx = Tx.Begin(this);
            tx.Reserve(LogBlocksFor(LogFormat.Length(LogRecordType.DirAdd, newName.Length)));
            tx.BeginChanges();
            long now = NowNs();
            AddEntry(tx, dir, newName.ToArray(), target, now);
            target.Rec.Nlink++;
            target.Rec.CtimeNs = now;
            tx.Touch(target);
            MaybeCompact(tx, dir);
            tx.Commit();
            return target.Attributes;
        }
        finally
        {
            _ns.ExitWriteLock();
        }
    }

    /// <summary>Removes a non-directory name; the inode goes when its last link and last pin do.</summary>
    public void Unlink(ulong parent, ReadOnlySpan<byte> name) => Remove(parent, name, directory: false);

    /// <inheritdoc cref="Unlink(ulong, ReadOnlySpan{byte})"/>
    public void Unlink(ulong parent, string name) => Unlink(parent, Encoding.UTF8.GetBytes(name));

    /// <summary>Removes an empty directory.</summary>
    public void RemoveDirectory(ulong parent, ReadOnlySpan<byte> name) => Remove(parent, name, directory: true);

    /// <inheritdoc cref="RemoveDirectory(ulong, ReadOnlySpan{byte})"/>
    public void RemoveDirectory(ulong parent, string name) => RemoveDirectory(parent, Encoding.UTF8.GetBytes(name));

    private void Remove(ulong parent, ReadOnlySpan<byte> name, bool directory)
    {
        ThrowIfDisposed();
        if (name.Length > Layout.MaxNameBytes)
            throw new DaxFsException(Errno.ENAMETOOLONG, $"name of {name.Length} bytes is longer than {Layout.MaxNameBytes}");
        if (name.SequenceEqual("."u8))
            throw new DaxFsException(directory ? Errno.EINVAL : Errno.EISDIR, "cannot remove '.'");
        if (name.SequenceEqual(".."u8))
            throw new DaxFsException(directory ? Errno.ENOTEMPTY : Errno.EISDIR, "cannot remove '..'");
        _ns.EnterWriteLock();
        try
        {
            Inode dir = GetDir(parent);
            if (!dir.Dir!.TryGet(name, out DirSlot slot))
                throw new DaxFsException(Errno.ENOENT, $"no '{Show(name)}' in directory {parent}");
            Inode child = Get(slot.Ino);
            if (directory && !child.IsDir)
                throw new DaxFsException(Errno.ENOTDIR, $"'{Show(name)}' is not a directory");
            if (!directory && child.IsDir)
                throw new DaxFsException(Errno.EISDIR, $"'{Show(name)}' is a directory");
            if (directory && child.Dir!.Count > 0)
                throw new DaxFsException(Errno.ENOTEMPTY, $"directory '{Show(name)}' is not empty");
            using LockSet locks = LockAll(dir, child);
            using var tx = Tx.Begin(this);
            tx.Reserve(LogBlocksFor(16), freeing: true);
            tx.BeginChanges();
            long now = NowNs();
            RemoveEntry(tx, dir, name, now);
            if (directory)
            {
                dir.Rec.Nlink--;
                child.Rec.Nlink = 0;
            }
            else
            {
                child.Rec.Nlink--;
            }
            child.Rec.CtimeNs = now;
            DropIfUnused(tx, child);
            MaybeCompact(tx, dir);
            tx.Commit();
        }
        finally
        {
            _ns.ExitWriteLock();
        }
    }

    /// <summary>rename / renameat2: moves (or with <see cref="RenameFlags.Exchange"/> swaps) a name, atomically
    /// replacing an existing target unless <see cref="RenameFlags.NoReplace"/>.</summary>
    public void Rename(ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, RenameFlags flags = RenameFlags.None)
    {
        ThrowIfDisposed();
        if ((flags & ~(RenameFlags.NoReplace | RenameFlags.Exchange)) != 0 || flags == (RenameFlags.NoReplace | RenameFlags.Exchange))
            throw new DaxFsException(Errno.EINVAL, $"rename flags {flags} are invalid");
        CheckRenameName(name);
        CheckRenameName(newName);
        ValidateNewName(newName);
        _ns.EnterWriteLock();
        try
        {
            Inode srcDir = GetDir(parent), dstDir = GetDir(newParent);
            if (!srcDir.Dir!.TryGet(name, out DirSlot srcSlot))
                throw new DaxFsException(Errno.ENOENT, $"no '{Show(name)}' in directory {parent}");
            Inode src = Get(srcSlot.Ino);
            bool dstExists = dstDir.Dir!.TryGet(newName, out DirSlot dstSlot);
            bool exchange = (flags & RenameFlags.Exchange) != 0;
            if (exchange && !dstExists)
                throw new DaxFsException(Errno.ENOENT, $"no '{Show(newName)}' in directory {newParent} to exchange with");
            if ((flags & RenameFlags.NoReplace) != 0 && dstExists)
                throw new DaxFsException(Errno.EEXIST, $"'{Show(newName)}' exists in directory {newParent}");
            if (dstDir.Rec.Nlink == 0)
                throw new DaxFsException(Errno.ENOENT, $"directory {newParent} has been removed");
            if (dstExists && dstSlot.Ino == srcSlot.Ino)
                return; // two names of one inode: POSIX says do nothing
            Inode? dst = dstExists ? Get(dstSlot.Ino) : null;
            if (src.IsDir && IsSelfOrAncestor(src, dstDir))
                throw new DaxFsException(Errno.EINVAL, $"cannot move directory {src.Ino} into itself");
            if (exchange && dst!.IsDir && IsSelfOrAncestor(dst, srcDir))
                throw new DaxFsException(Errno.EINVAL, $"cannot move directory {dst.Ino} into itself");
            if (dst is not null && !exchange)
            {
                if (src.IsDir && !dst.IsDir)
                    throw new DaxFsException(Errno.ENOTDIR, $"'{Show(newName)}' is not a directory");
                if (!src.IsDir && dst.IsDir)
                    throw new DaxFsException(Errno.EISDIR, $"'{Show(newName)}' is a directory");
                if (dst.IsDir && dst.Dir!.Count > 0)
                    throw new DaxFsException(Errno.ENOTEMPTY, $"directory '{Show(newName)}' is not empty");
            }
            if (src.IsDir && srcDir != dstDir && !(dst?.IsDir ?? false) && dstDir.Rec.Nlink >= MaxLinks)
                throw new DaxFsException(Errno.EMLINK, $"directory {newParent} has too many links");
            using LockSet locks = LockAll(srcDir, dstDir, src, dst);
            using var tx = Tx.Begin(this);
            long logBytes = 2 * (16 + LogFormat.Length(LogRecordType.DirAdd, Layout.MaxNameBytes));
            tx.Reserve(LogBlocksFor(logBytes) * (srcDir == dstDir ? 1 : 2), freeing: true);
            tx.BeginChanges();
            long now = NowNs();
            byte[] srcName = name.ToArray(), dstName = newName.ToArray();
            if (exchange)
            {
                RemoveEntry(tx, srcDir, srcName, now);
                RemoveEntry(tx, dstDir, dstName, now);
                AddEntry(tx, srcDir, srcName, dst!, now);
                AddEntry(tx, dstDir, dstName, src, now);
                if (srcDir != dstDir)
                {
                    MoveDir(src, srcDir, dstDir);
                    MoveDir(dst!, dstDir, srcDir);
                }
                dst!.Rec.CtimeNs = now;
                tx.Touch(dst);
            }
            else
            {
                if (dst is not null)
                {
                    RemoveEntry(tx, dstDir, dstName, now);
                    if (dst.IsDir)
                    {
                        dst.Rec.Nlink = 0;
                        dstDir.Rec.Nlink--;
                    }
                    else
                    {
                        dst.Rec.Nlink--;
                    }
                    dst.Rec.CtimeNs = now;
                    DropIfUnused(tx, dst);
                }
                RemoveEntry(tx, srcDir, srcName, now);
                AddEntry(tx, dstDir, dstName, src, now);
                if (srcDir != dstDir)
                    MoveDir(src, srcDir, dstDir);
            }
            src.Rec.CtimeNs = now;
            tx.Touch(src);
            MaybeCompact(tx, srcDir);
            if (dstDir != srcDir)
                MaybeCompact(tx, dstDir);
            tx.Commit();
        }
        finally
        {
            _ns.ExitWriteLock();
        }
    }

    /// <inheritdoc cref="Rename(ulong, ReadOnlySpan{byte}, ulong, ReadOnlySpan{byte}, RenameFlags)"/>
    public void Rename(ulong parent, string name, ulong newParent, string newName, RenameFlags flags = RenameFlags.None) =>
        Rename(parent, Encoding.UTF8.GetBytes(name), newParent, Encoding.UTF8.GetBytes(newName), flags);

    /// <summary>Up to <paramref name="max"/> entries of directory <paramref name="ino"/> after <paramref name="cookie"/>
    /// (0 starts at the beginning; "." and ".." come first).</summary>
    public IReadOnlyList<DirEntry> ReadDirectory(ulong ino, ulong cookie = 0, int max = int.MaxValue)
    {
        ThrowIfDisposed();
        var list = new List<DirEntry>();
        if (max <= 0)
            return list;
        _ns.EnterReadLock();
        try
        {
            Inode dir = GetDir(ino);
            EnterRead(dir);
            try
            {
                if (cookie < 1)
                    list.Add(new DirEntry("."u8.ToArray(), ino, FileModes.DirentType(FileModes.Directory), 1));
                if (cookie < 2 && list.Count < max)
                    list.Add(new DirEntry(".."u8.ToArray(), dir.Rec.Parent, FileModes.DirentType(FileModes.Directory), 2));
                foreach (var (name, slot) in dir.Dir!.After(Math.Max(cookie, 2)))
                {
                    if (list.Count >= max)
                        break;
                    list.Add(new DirEntry(name, slot.Ino, slot.Type, slot.Id));
                }
            }
            finally
            {
                dir.Lock.ExitReadLock();
            }
        }
        finally
        {
            _ns.ExitReadLock();
        }
        return list;
    }

    /// <summary>Keeps inode <paramref name="ino"/> alive while unlinked (open handles, FUSE lookups).</summary>
    public void Pin(ulong ino)
    {
        ThrowIfDisposed();
        Inode i = Get(ino);
        EnterWrite(i);
        try
        {
            i.Pins++;
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <summary>Drops a pin; an unlinked inode with no pins left is freed.</summary>
    public void Unpin(ulong ino)
    {
        if (_disposed != 0 || !_inodes.TryGetValue(ino, out Inode? i))
            return;
        i.Lock.EnterWriteLock();
        try
        {
            if (i.Pins > 0)
                i.Pins--;
            if (i.Pins == 0 && i.Rec.Nlink == 0 && !i.Freed && _failed is null)
            {
                using var tx = Tx.Begin(this);
                tx.BeginChanges();
                FreeInode(tx, i);
                tx.Commit();
            }
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <summary>Common body of create, mkdir, mknod and symlink.</summary>
    private InodeAttributes CreateInode(ulong parent, ReadOnlySpan<byte> name, uint mode, uint uid, uint gid, ulong rdev, ReadOnlySpan<byte> target)
    {
        ThrowIfDisposed();
        ValidateNewName(name);
        bool isDir = (mode & FileModes.TypeMask) == FileModes.Directory;
        bool isLink = (mode & FileModes.TypeMask) == FileModes.Symlink;
        bool blockTarget = isLink && target.Length > InodeRecord.InlineSize;
        _ns.EnterWriteLock();
        try
        {
            Inode dir = GetDir(parent);
            if (dir.Rec.Nlink == 0)
                throw new DaxFsException(Errno.ENOENT, $"directory {parent} has been removed");
            if (dir.Dir!.TryGet(name, out _))
                throw new DaxFsException(Errno.EEXIST, $"'{Show(name)}' exists in directory {parent}");
            if (isDir && dir.Rec.Nlink >= MaxLinks)
                throw new DaxFsException(Errno.EMLINK, $"directory {parent} has too many links");
            EnterWrite(dir);
            try
            {
                using var tx = Tx.Begin(this);
                tx.Reserve(LogBlocksFor(LogFormat.Length(LogRecordType.DirAdd, name.Length)) + (blockTarget ? 1 + LogBlocksFor(32) : 0));
                (ulong ino, uint gen) = AllocateInodeSlot();
                long now = NowNs();
                // A set-group-ID directory gives new entries its group, and new directories its set-group-ID bit.
                if ((dir.Rec.Mode & 0x400) != 0)
                {
                    gid = dir.Rec.Gid;
                    if (isDir)
                        mode |= 0x400;
                }
                var rec = new InodeRecord
                {
                    Mode = mode, Nlink = isDir ? 2u : 1u, Uid = uid, Gid = gid, AtimeNs = now, MtimeNs = now, CtimeNs = now, BtimeNs = now,
                    Generation = gen, Rdev = rdev, Parent = isDir ? parent : 0, NextDirentId = isDir ? DirFirstId : 0,
                };
                var inode = new Inode(ino, rec);
                tx.BeginChanges();
                _inodes[ino] = inode;
                if (isLink)
                {
                    inode.Rec.Size = target.Length;
                    if (blockTarget)
                    {
                        long block = tx.AllocateOne(-1);
                        OrderedFill(tx, block * Layout.BlockSize + target.Length, Layout.BlockSize - target.Length, 0);
                        OrderedWrite(tx, block * Layout.BlockSize, target);
                        inode.Map!.Map(0, 1, block, unwritten: false);
                        inode.Rec.Blocks++;
                        AppendLog(tx, inode, new LogRecord(LogRecordType.ExtentMap, 0, 0, (ulong)block, 1, null));
                    }
                    else
                    {
                        inode.Rec.Flags |= InodeRecord.FlagInlineTarget;
                        inode.Rec.Inline = target.ToArray();
                    }
                }
                AddEntry(tx, dir, name.ToArray(), inode, now);
                if (isDir)
                    dir.Rec.Nlink++;
                tx.Touch(inode);
                MaybeCompact(tx, dir);
                tx.Commit();
                return inode.Attributes;
            }
            finally
            {
                dir.Lock.ExitWriteLock();
            }
        }
        finally
        {
            _ns.ExitWriteLock();
        }
    }

    /// <summary>Adds a directory entry (log record, DRAM index, parent times).</summary>
    private void AddEntry(Tx tx, Inode dir, byte[] name, Inode target, long now)
    {
        ulong id = dir.Rec.NextDirentId++;
        byte type = FileModes.DirentType(target.Rec.Mode);
        AppendLog(tx, dir, new LogRecord(LogRecordType.DirAdd, 0, target.Ino, id, type, name));
        dir.Dir!.Add(name, new DirSlot(target.Ino, id, type));
        dir.Rec.MtimeNs = dir.Rec.CtimeNs = now;
        tx.Touch(dir);
    }

    /// <summary>Removes a directory entry (log record, DRAM index, parent times).</summary>
    private void RemoveEntry(Tx tx, Inode dir, ReadOnlySpan<byte> name, long now)
    {
        DirSlot slot = dir.Dir!.Remove(name);
        AppendLog(tx, dir, new LogRecord(LogRecordType.DirRemove, 0, slot.Id, 0, 0, null));
        dir.Rec.MtimeNs = dir.Rec.CtimeNs = now;
        tx.Touch(dir);
    }

    /// <summary>A directory moved from one parent to another: its ".." and both parents' link counts.</summary>
    private static void MoveDir(Inode moved, Inode from, Inode to)
    {
        if (!moved.IsDir)
            return;
        moved.Rec.Parent = to.Ino;
        from.Rec.Nlink--;
        to.Rec.Nlink++;
    }

    /// <summary>Frees an inode with no links and no pins in this transaction; journals it otherwise.</summary>
    private void DropIfUnused(Tx tx, Inode inode)
    {
        if (inode.Rec.Nlink == 0 && inode.Pins == 0)
            FreeInode(tx, inode);
        else
            tx.Touch(inode);
    }

    /// <summary>Whether <paramref name="dir"/> is <paramref name="candidate"/> or below it.</summary>
    private bool IsSelfOrAncestor(Inode candidate, Inode dir)
    {
        Inode d = dir;
        for (int depth = 0; depth < 100_000; depth++)
        {
            if (d == candidate)
                return true;
            if (d.Ino == Layout.RootIno || !_inodes.TryGetValue(d.Rec.Parent, out Inode? p))
                return false;
            d = p;
        }
        throw new DaxFsCorruptedException($"directory {dir.Ino}", _sb.InodeOffset(dir.Ino), "its parent chain does not reach the root");
    }

    /// <summary>Looks a name up in a directory the caller holds (namespace lock).</summary>
    private ulong LookupLocked(Inode dir, ReadOnlySpan<byte> name)
    {
        if (name.SequenceEqual("."u8))
            return dir.Ino;
        if (name.SequenceEqual(".."u8))
            return dir.Rec.Parent;
        if (name.IsEmpty || !dir.Dir!.TryGet(name, out DirSlot slot))
            throw new DaxFsException(Errno.ENOENT, $"no '{Show(name)}' in directory {dir.Ino}");
        return slot.Ino;
    }

    /// <summary>The live directory <paramref name="ino"/>, or ENOENT/ENOTDIR.</summary>
    private Inode GetDir(ulong ino)
    {
        Inode i = Get(ino);
        if (!i.IsDir)
            throw new DaxFsException(Errno.ENOTDIR, $"inode {ino} is not a directory");
        return i;
    }

    private static void CheckRenameName(ReadOnlySpan<byte> n)
    {
        if (n.Length > Layout.MaxNameBytes)
            throw new DaxFsException(Errno.ENAMETOOLONG, $"name of {n.Length} bytes is longer than {Layout.MaxNameBytes}");
        if (n.IsEmpty)
            throw new DaxFsException(Errno.ENOENT, "empty name");
        if (n.SequenceEqual("."u8) || n.SequenceEqual(".."u8))
            throw new DaxFsException(Errno.EBUSY, "cannot rename '.' or '..'");
    }

    /// <summary>A name a new entry may have: 1..255 bytes, no '/' or NUL, not "." or "..".</summary>
    private static void ValidateNewName(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty)
            throw new DaxFsException(Errno.ENOENT, "empty name");
        if (name.Length > Layout.MaxNameBytes)
            throw new DaxFsException(Errno.ENAMETOOLONG, $"name of {name.Length} bytes is longer than {Layout.MaxNameBytes}");
        if (name.IndexOfAny((byte)'/', (byte)0) >= 0)
            throw new DaxFsException(Errno.EINVAL, $"name '{Show(name)}' contains '/' or NUL");
        if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8))
            throw new DaxFsException(Errno.EEXIST, $"'{Show(name)}' always exists");
    }

    /// <summary>A name for messages.</summary>
    private static string Show(ReadOnlySpan<byte> name) => Encoding.UTF8.GetString(name);

    /// <summary>Write-locks distinct inodes in ascending inode order (the one lock order of the volume); ENOENT if one
    /// of them was freed before its lock was taken.</summary>
    private static LockSet LockAll(Inode? a, Inode? b, Inode? c = null, Inode? d = null)
    {
        var set = new LockSet(a, b, c, d);
        set.Enter();
        return set;
    }

    /// <summary>Up to four inodes write-locked in ascending order, without allocating.</summary>
    private struct LockSet(Inode? a, Inode? b, Inode? c, Inode? d) : IDisposable
    {
        private Inode? _a = a, _b = b, _c = c, _d = d;
        private int _held;

        public void Enter()
        {
            // Sort the four slots by inode number (nulls last) and drop duplicates.
            Span<Inode?> s = [_a, _b, _c, _d];
            for (int i = 1; i < 4; i++)
                for (int j = i; j > 0 && Before(s[j], s[j - 1]); j--)
                    (s[j], s[j - 1]) = (s[j - 1], s[j]);
            int n = 0;
            for (int i = 0; i < 4; i++)
                if (s[i] is not null && (n == 0 || s[n - 1] != s[i]))
                    s[n++] = s[i];
            (_a, _b, _c, _d) = (s[0], n > 1 ? s[1] : null, n > 2 ? s[2] : null, n > 3 ? s[3] : null);
            bool freed = false;
            for (int i = 0; i < n; i++)
            {
                s[i]!.Lock.EnterWriteLock();
                _held = i + 1;
                freed |= s[i]!.Freed;
            }
            if (freed)
            {
                Dispose();
                throw new DaxFsException(Errno.ENOENT, "an inode of this call was removed");
            }
        }

        private static bool Before(Inode? x, Inode? y) => x is not null && (y is null || x.Ino < y.Ino);

        public void Dispose()
        {
            for (int k = _held - 1; k >= 0; k--)
                (k switch { 0 => _a, 1 => _b, 2 => _c, _ => _d })!.Lock.ExitWriteLock();
            _held = 0;
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed != 0, this);

    /// <summary>Read-locks an inode that was looked up before the lock: if it was freed meanwhile, ENOENT.</summary>
    private static void EnterRead(Inode i)
    {
        i.Lock.EnterReadLock();
        if (i.Freed)
        {
            i.Lock.ExitReadLock();
            throw new DaxFsException(Errno.ENOENT, $"inode {i.Ino} was removed");
        }
    }

    /// <summary>Write-locks an inode that was looked up before the lock: if it was freed meanwhile, ENOENT.</summary>
    private static void EnterWrite(Inode i)
    {
        i.Lock.EnterWriteLock();
        if (i.Freed)
        {
            i.Lock.ExitWriteLock();
            throw new DaxFsException(Errno.ENOENT, $"inode {i.Ino} was removed");
        }
    }
}
