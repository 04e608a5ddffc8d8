using System.Runtime.InteropServices;
using DaxFs.Fuse;

namespace DaxFs.Fuse.Tests;

/// <summary>MemoryFileSystem -- a small in-memory IFuseFileSystem for the tests: directories, sparse regular files
/// kept in 4 KiB native pages (reads are answered zero-copy with AddSegment on those pages, holes with AddZeros),
/// symlinks, hard links, xattrs, and lookup counting. One reader/writer lock; a read holds it until its reply is
/// sent (FuseReadReply.Hold), so that no page is freed under a pending writev.</summary>
public sealed unsafe class MemoryFileSystem : FuseFileSystemBase, IDisposable
{
    public const int PageSize = 4096;
    public const long MaxFileSize = 64L << 20; // bounds what a fuzzed fallocate can allocate
    private const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFLNK = 0xA000;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Dictionary<ulong, Node> _nodes = [];
    private ulong _nextIno = 2;
    private long _segmentsServed;

    public MemoryFileSystem(ulong rootIno = 1)
    {
        RootIno = rootIno;
        _nextIno = rootIno + 1;
        _nodes[rootIno] = new Node(rootIno, S_IFDIR | 0x1FF, 0, 0) { Parent = rootIno, NLink = 2, Children = NewDirectory() };
    }

    public ulong RootIno { get; }

    /// <summary>Read pieces answered from page memory (the zero-copy path).</summary>
    public long SegmentsServed => Interlocked.Read(ref _segmentsServed);

    /// <summary>Called (outside the lock) before every READ / WRITE: lets a test hold a request in flight.</summary>
    public Action<ulong>? BeforeRead { get; set; }
    public Action<ulong>? BeforeWrite { get; set; }

    public bool InitCalled { get; private set; }
    public int DestroyCalls { get; private set; }
    public FuseConnectionInfo Connection { get; private set; }

    public long LookupCount(ulong ino) => WithRead(() => _nodes.TryGetValue(ino, out var n) ? n.Lookups : -1);

    public bool Exists(ulong ino) => WithRead(() => _nodes.ContainsKey(ino));

    public override void Init(FuseConnectionInfo connection)
    {
        InitCalled = true;
        Connection = connection;
    }

    public override void Destroy() => DestroyCalls++;

    public override FuseEntry Lookup(FuseRequestContext context, ulong parent, string name) => WithWrite(() =>
    {
        var dir = Directory(parent);
        var node = name switch
        {
            "." => dir,
            ".." => _nodes[dir.Parent],
            _ => dir.Children!.TryGetValue(name, out ulong ino) ? _nodes[ino] : throw Fail(Errno.ENOENT, name),
        };
        return EntryOf(node);
    });

    public override void Forget(ulong ino, ulong lookups) => WithWrite(() =>
    {
        if (!_nodes.TryGetValue(ino, out var node))
            return 0;
        node.Lookups = Math.Max(0, node.Lookups - (long)lookups);
        ReleaseIfUnused(node);
        return 0;
    });

    public override FuseAttributes GetAttr(FuseRequestContext context, ulong ino, ulong? handle) =>
        WithRead(() => Get(ino).Attributes);

    public override FuseAttributes SetAttr(FuseRequestContext context, ulong ino, FuseSetAttrRequest r) =>
        WithWrite(() =>
        {
            var node = Get(ino);
            long now = Now();
            if (r.Has(FuseSetAttrFields.Mode))
                node.Mode = (node.Mode & S_IFMT) | (r.Mode & 0xFFF);
            if (r.Has(FuseSetAttrFields.Uid))
                node.Uid = r.Uid;
            if (r.Has(FuseSetAttrFields.Gid))
                node.Gid = r.Gid;
            if (r.Has(FuseSetAttrFields.Size))
            {
                if ((node.Mode & S_IFMT) != S_IFREG)
                    throw Fail(Errno.EINVAL, "truncate of a non-file");
                CheckSize(r.Size);
                Truncate(node, r.Size);
                node.Mtime = now;
            }
            if (r.Has(FuseSetAttrFields.Atime))
                node.Atime = r.Has(FuseSetAttrFields.AtimeNow) ? now : r.AtimeNs;
            if (r.Has(FuseSetAttrFields.Mtime))
                node.Mtime = r.Has(FuseSetAttrFields.MtimeNow) ? now : r.MtimeNs;
            node.Ctime = r.Has(FuseSetAttrFields.Ctime) ? r.CtimeNs : now;
            return node.Attributes;
        });

    public override string ReadLink(FuseRequestContext context, ulong ino) =>
        WithRead(() => Get(ino).Target ?? throw Fail(Errno.EINVAL, "not a symlink"));

    public override FuseEntry MkNod(FuseRequestContext context, ulong parent, string name, uint mode, uint rdev,
        uint umask) => WithWrite(() => EntryOf(Add(context, parent, name, mode, n => n.Rdev = rdev)));

    public override FuseEntry MkDir(FuseRequestContext context, ulong parent, string name, uint mode, uint umask) =>
        WithWrite(() =>
        {
            var node = Add(context, parent, name, S_IFDIR | (mode & 0xFFF), n =>
            {
                n.Children = NewDirectory();
                n.NLink = 2;
                n.Parent = parent;
            });
            Directory(parent).NLink++;
            return EntryOf(node);
        });

    public override FuseEntry Symlink(FuseRequestContext context, ulong parent, string name, string target) =>
        WithWrite(() => EntryOf(Add(context, parent, name, S_IFLNK | 0x1FF, n =>
        {
            n.Target = target;
            n.Size = System.Text.Encoding.UTF8.GetByteCount(target);
        })));

    public override FuseEntry Link(FuseRequestContext context, ulong ino, ulong newParent, string newName) =>
        WithWrite(() =>
        {
            var node = Get(ino);
            if ((node.Mode & S_IFMT) == S_IFDIR)
                throw Fail(Errno.EPERM, "hard link to a directory");
            var dir = Directory(newParent);
            if (dir.Children!.ContainsKey(newName))
                throw Fail(Errno.EEXIST, newName);
            dir.Children[newName] = ino;
            node.NLink++;
            node.Ctime = Now();
            return EntryOf(node);
        });

    public override void Unlink(FuseRequestContext context, ulong parent, string name) => WithWrite(() =>
    {
        var node = Child(parent, name);
        if ((node.Mode & S_IFMT) == S_IFDIR)
            throw Fail(Errno.EISDIR, name);
        RemoveName(parent, name, node);
        return 0;
    });

    public override void RmDir(FuseRequestContext context, ulong parent, string name) => WithWrite(() =>
    {
        var node = Child(parent, name);
        if ((node.Mode & S_IFMT) != S_IFDIR)
            throw Fail(Errno.ENOTDIR, name);
        if (node.Children!.Count > 0)
            throw Fail(Errno.ENOTEMPTY, name);
        RemoveName(parent, name, node);
        return 0;
    });

    public override void Rename(FuseRequestContext context, ulong parent, string name, ulong newParent,
        string newName, FuseRenameFlags flags) => WithWrite(() =>
    {
        var from = Directory(parent);
        var to = Directory(newParent);
        var node = Child(parent, name);
        bool targetExists = to.Children!.TryGetValue(newName, out ulong targetIno);
        if (flags.HasFlag(FuseRenameFlags.Whiteout))
            throw Fail(Errno.EINVAL, "whiteouts are not supported");
        if (flags.HasFlag(FuseRenameFlags.NoReplace) && targetExists)
            throw Fail(Errno.EEXIST, newName);
        if (flags.HasFlag(FuseRenameFlags.Exchange))
        {
            if (!targetExists)
                throw Fail(Errno.ENOENT, newName);
            from.Children![name] = targetIno;
            to.Children[newName] = node.Ino;
            return 0;
        }
        if (targetExists && targetIno == node.Ino)
            return 0;
        if (targetExists)
        {
            var target = _nodes[targetIno];
            if ((target.Mode & S_IFMT) == S_IFDIR && target.Children!.Count > 0)
                throw Fail(Errno.ENOTEMPTY, newName);
            RemoveName(newParent, newName, target);
        }
        from.Children!.Remove(name);
        to.Children[newName] = node.Ino;
        if ((node.Mode & S_IFMT) == S_IFDIR && parent != newParent)
        {
            node.Parent = newParent;
            from.NLink--;
            to.NLink++;
        }
        node.Ctime = Now();
        return 0;
    });

    public override FuseOpenResult Open(FuseRequestContext context, ulong ino, int flags) =>
        WithRead(() => new FuseOpenResult(Get(ino).Ino));

    public override FuseCreateResult Create(FuseRequestContext context, ulong parent, string name, uint mode,
        uint umask, int flags) => WithWrite(() =>
    {
        var node = Add(context, parent, name, S_IFREG | (mode & 0xFFF), _ => { });
        return new FuseCreateResult(EntryOf(node), new FuseOpenResult(node.Ino));
    });

    public override void Read(FuseRequestContext context, ulong ino, ulong handle, long offset, int size,
        FuseReadReply reply)
    {
        BeforeRead?.Invoke(ino);
        _lock.EnterReadLock();
        reply.Hold(new ReadLease(_lock)); // released after the session's writev
        var node = Get(ino);
        long end = Math.Min(node.Size, offset + size);
        for (long position = offset; position < end;)
        {
            long index = position / PageSize;
            int inPage = (int)(position % PageSize);
            int count = (int)Math.Min(PageSize - inPage, end - position);
            if (node.Pages!.TryGetValue(index, out nint page))
            {
                reply.AddSegment(page + inPage, count);
                Interlocked.Increment(ref _segmentsServed);
            }
            else
            {
                reply.AddZeros(count);
            }
            position += count;
        }
    }

    public override int Write(FuseRequestContext context, ulong ino, ulong handle, long offset,
        ReadOnlySpan<byte> data, int flags)
    {
        BeforeWrite?.Invoke(ino);
        _lock.EnterWriteLock();
        try
        {
            var node = Get(ino);
            WriteBytes(node, offset, data);
            node.Mtime = node.Ctime = Now();
            return data.Length;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public override void Flush(FuseRequestContext context, ulong ino, ulong handle)
    {
    }

    public override void Release(FuseRequestContext context, ulong ino, ulong handle, int flags)
    {
    }

    public override void Fsync(FuseRequestContext context, ulong ino, ulong handle, bool dataOnly)
    {
    }

    public override FuseOpenResult OpenDir(FuseRequestContext context, ulong ino, int flags) =>
        WithRead(() => new FuseOpenResult(Directory(ino).Ino));

    public override void ReadDir(FuseRequestContext context, ulong ino, ulong handle, long offset,
        FuseDirectoryBuffer buffer) => WithRead(() =>
    {
        var dir = Directory(ino);
        var entries = new List<(string Name, ulong Ino, uint Mode)>
        {
            (".", dir.Ino, dir.Mode),
            ("..", dir.Parent, _nodes[dir.Parent].Mode),
        };
        entries.AddRange(dir.Children!.Select(c => (c.Key, c.Value, _nodes[c.Value].Mode)));
        for (int i = (int)offset; i < entries.Count; i++)
        {
            if (!buffer.TryAdd(entries[i].Name, entries[i].Ino, entries[i].Mode, i + 1))
                break;
        }
        return 0;
    });

    public override void ReleaseDir(FuseRequestContext context, ulong ino, ulong handle)
    {
    }

    public override void FsyncDir(FuseRequestContext context, ulong ino, ulong handle, bool dataOnly)
    {
    }

    public override FuseStatFs StatFs(FuseRequestContext context, ulong ino) =>
        WithRead(() => new FuseStatFs(1 << 20, 1 << 19, 1 << 19, 1 << 16, (ulong)((1 << 16) - _nodes.Count),
            PageSize));

    public override void Access(FuseRequestContext context, ulong ino, int mask) => WithRead(() => Get(ino));

    public override void SetXattr(FuseRequestContext context, ulong ino, string name, ReadOnlySpan<byte> value,
        int flags)
    {
        byte[] copy = value.ToArray();
        WithWrite(() =>
        {
            var node = Get(ino);
            bool exists = node.Xattrs.ContainsKey(name);
            if ((flags & 1) != 0 && exists)
                throw Fail(Errno.EEXIST, name);
            if ((flags & 2) != 0 && !exists)
                throw Fail(Errno.ENODATA, name);
            node.Xattrs[name] = copy;
            return 0;
        });
    }

    public override ReadOnlyMemory<byte> GetXattr(FuseRequestContext context, ulong ino, string name) =>
        WithRead(() => Get(ino).Xattrs.TryGetValue(name, out var v) ? v : throw Fail(Errno.ENODATA, name));

    public override IReadOnlyList<string> ListXattr(FuseRequestContext context, ulong ino) =>
        WithRead(() => Get(ino).Xattrs.Keys.Order(StringComparer.Ordinal).ToList());

    public override void RemoveXattr(FuseRequestContext context, ulong ino, string name) => WithWrite(() =>
        Get(ino).Xattrs.Remove(name) ? 0 : throw Fail(Errno.ENODATA, name));

    public override void Fallocate(FuseRequestContext context, ulong ino, ulong handle, long offset, long length,
        FuseFallocateFlags mode) => WithWrite(() =>
    {
        var node = Get(ino);
        long end = offset + length;
        CheckSize(end);
        if (mode == (FuseFallocateFlags.PunchHole | FuseFallocateFlags.KeepSize))
        {
            Zero(node, offset, Math.Min(end, node.Size), allocate: false);
        }
        else if ((mode & ~FuseFallocateFlags.KeepSize) is FuseFallocateFlags.None or FuseFallocateFlags.ZeroRange)
        {
            Zero(node, offset, end, allocate: true);
            if (!mode.HasFlag(FuseFallocateFlags.KeepSize))
                node.Size = Math.Max(node.Size, end);
        }
        else
        {
            throw Fail(Errno.EOPNOTSUPP, $"fallocate mode {mode}");
        }
        node.Mtime = node.Ctime = Now();
        return 0;
    });

    public override long Lseek(FuseRequestContext context, ulong ino, ulong handle, long offset, int whence) =>
        WithRead(() =>
        {
            var node = Get(ino);
            if (offset < 0 || offset >= node.Size)
                throw Fail((Errno)6 /* ENXIO */, "seek past the end");
            long index = offset / PageSize;
            bool wantData = whence == 3;
            while (index * PageSize < node.Size && node.Pages!.ContainsKey(index) != wantData)
                index++;
            long found = Math.Max(offset, index * PageSize);
            if (found >= node.Size)
                return wantData ? throw Fail((Errno)6, "no data after offset") : node.Size;
            return found;
        });

    public override long CopyFileRange(FuseRequestContext context, ulong inoIn, ulong handleIn, long offsetIn,
        ulong inoOut, ulong handleOut, long offsetOut, long length, ulong flags) => WithWrite(() =>
    {
        var source = Get(inoIn);
        var target = Get(inoOut);
        long count = Math.Max(0, Math.Min(length, source.Size - offsetIn));
        var bytes = new byte[count];
        for (long i = 0; i < count; i++)
            bytes[i] = ByteAt(source, offsetIn + i);
        WriteBytes(target, offsetOut, bytes);
        return count;
    });

    public void Dispose()
    {
        foreach (var node in _nodes.Values)
            FreePages(node, 0);
        _nodes.Clear();
    }

    // ---- helpers ----

    private static void CheckSize(long size)
    {
        if (size > MaxFileSize)
            throw Fail(Errno.EFBIG, $"size {size}");
    }

    private static SortedDictionary<string, ulong> NewDirectory() => new(StringComparer.Ordinal);

    private static DaxFsException Fail(Errno errno, string what) => new(errno, what);

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;

    private T WithRead<T>(Func<T> body)
    {
        _lock.EnterReadLock();
        try
        {
            return body();
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private T WithWrite<T>(Func<T> body)
    {
        _lock.EnterWriteLock();
        try
        {
            return body();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private Node Get(ulong ino) => _nodes.TryGetValue(ino, out var node) ? node : throw Fail(Errno.ENOENT, $"ino {ino}");

    private Node Directory(ulong ino)
    {
        var node = Get(ino);
        return node.Children is null ? throw Fail(Errno.ENOTDIR, $"ino {ino}") : node;
    }

    private Node Child(ulong parent, string name) =>
        Directory(parent).Children!.TryGetValue(name, out ulong ino) ? _nodes[ino] : throw Fail(Errno.ENOENT, name);

    private FuseEntry EntryOf(Node node)
    {
        node.Lookups++;
        return new FuseEntry(node.Attributes, 0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    private Node Add(FuseRequestContext context, ulong parent, string name, uint mode, Action<Node> setup)
    {
        var dir = Directory(parent);
        if (dir.Children!.ContainsKey(name))
            throw Fail(Errno.EEXIST, name);
        var node = new Node(_nextIno++, mode, context.Uid, context.Gid);
        if ((mode & S_IFMT) == S_IFREG)
            node.Pages = [];
        setup(node);
        _nodes[node.Ino] = node;
        dir.Children[name] = node.Ino;
        dir.Mtime = dir.Ctime = node.Ctime;
        return node;
    }

    private void RemoveName(ulong parent, string name, Node node)
    {
        var dir = Directory(parent);
        dir.Children!.Remove(name);
        if (node.Children is not null)
        {
            node.NLink = 0;
            dir.NLink--;
        }
        else
        {
            node.NLink--;
        }
        node.Ctime = dir.Mtime = dir.Ctime = Now();
        ReleaseIfUnused(node);
    }

    private void ReleaseIfUnused(Node node)
    {
        if (node.NLink == 0 && node.Lookups == 0 && node.Ino != RootIno)
        {
            FreePages(node, 0);
            _nodes.Remove(node.Ino);
        }
    }

    private static void WriteBytes(Node node, long offset, ReadOnlySpan<byte> data)
    {
        if (node.Pages is null)
            throw Fail(Errno.EISDIR, "write to a non-file");
        CheckSize(offset + data.Length);
        for (int done = 0; done < data.Length;)
        {
            long position = offset + done;
            int inPage = (int)(position % PageSize);
            int count = Math.Min(PageSize - inPage, data.Length - done);
            data.Slice(done, count).CopyTo(new Span<byte>((byte*)Page(node, position / PageSize) + inPage, count));
            done += count;
        }
        node.Size = Math.Max(node.Size, offset + data.Length);
    }

    private static nint Page(Node node, long index)
    {
        if (!node.Pages!.TryGetValue(index, out nint page))
            node.Pages[index] = page = (nint)NativeMemory.AllocZeroed(PageSize);
        return page;
    }

    private static byte ByteAt(Node node, long position) =>
        node.Pages!.TryGetValue(position / PageSize, out nint page) ? ((byte*)page)[position % PageSize] : (byte)0;

    private static void Zero(Node node, long start, long end, bool allocate)
    {
        for (long position = start; position < end;)
        {
            long index = position / PageSize;
            int inPage = (int)(position % PageSize);
            int count = (int)Math.Min(PageSize - inPage, end - position);
            if (count == PageSize && !allocate)
            {
                if (node.Pages!.Remove(index, out nint page))
                    NativeMemory.Free((void*)page);
            }
            else if (allocate || node.Pages!.ContainsKey(index))
            {
                new Span<byte>((byte*)Page(node, index) + inPage, count).Clear();
            }
            position += count;
        }
    }

    private static void Truncate(Node node, long size)
    {
        if (size < node.Size && size % PageSize != 0 && node.Pages!.TryGetValue(size / PageSize, out nint page))
            new Span<byte>((byte*)page + size % PageSize, PageSize - (int)(size % PageSize)).Clear();
        FreePages(node, (size + PageSize - 1) / PageSize);
        node.Size = size;
    }

    private static void FreePages(Node node, long fromIndex)
    {
        if (node.Pages is null)
            return;
        foreach (long index in node.Pages.Keys.Where(i => i >= fromIndex).ToList())
        {
            NativeMemory.Free((void*)node.Pages[index]);
            node.Pages.Remove(index);
        }
    }

    /// <summary>ReadLease -- the read lock a READ holds until its reply has been sent.</summary>
    private sealed class ReadLease(ReaderWriterLockSlim rwLock) : IDisposable
    {
        public void Dispose() => rwLock.ExitReadLock();
    }

    /// <summary>Node -- one inode.</summary>
    private sealed class Node(ulong ino, uint mode, uint uid, uint gid)
    {
        public ulong Ino { get; } = ino;
        public uint Mode { get; set; } = mode;
        public uint Uid { get; set; } = uid;
        public uint Gid { get; set; } = gid;
        public uint Rdev { get; set; }
        public uint NLink { get; set; } = 1;
        public long Lookups { get; set; }
        public long Size { get; set; }
        public long Atime { get; set; } = Now();
        public long Mtime { get; set; } = Now();
        public long Ctime { get; set; } = Now();
        public ulong Parent { get; set; }
        public string? Target { get; set; }
        public SortedDictionary<string, ulong>? Children { get; set; }
        public SortedDictionary<long, nint>? Pages { get; set; }
        public Dictionary<string, byte[]> Xattrs { get; } = [];

        public FuseAttributes Attributes => new(Ino, Size, (Pages?.Count ?? 0) * (PageSize / 512), Atime, Mtime,
            Ctime, Mode, NLink, Uid, Gid, Rdev, PageSize);
    }
}
