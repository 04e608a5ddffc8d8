using System.Text;
using DaxFs.Format;

namespace DaxFs.Tests.Model;

/// <summary>The file types the model knows.</summary>
internal enum NodeType
{
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

/// <summary>SparseData -- a file's contents as 64 KiB pages (absent pages read as zeros), so a sparse file of
/// terabytes costs only the pages written. Invariant: every byte at or past <see cref="Size"/> is zero.</summary>
internal sealed class SparseData
{
    public const int PageShift = 16;
    public const int PageSize = 1 << PageShift;
    private readonly Dictionary<long, byte[]> _pages = [];

    /// <summary>The file size.</summary>
    public long Size { get; set; }

    private long _version, _nzVersion = -1, _nz;

    /// <summary>Pages held (for tests of the model itself).</summary>
    public int PageCount => _pages.Count;

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        _version++;
        int done = 0;
        while (done < data.Length)
        {
            var (page, inPage, n) = Piece(offset + done, data.Length - done);
            ReadOnlySpan<byte> src = data.Slice(done, n);
            if (!_pages.TryGetValue(page, out byte[]? p))
            {
                if (!src.ContainsAnyExcept((byte)0))
                {
                    done += n;
                    continue;
                }
                p = new byte[PageSize];
                _pages[page] = p;
            }
            src.CopyTo(p.AsSpan(inPage));
            done += n;
        }
        Size = Math.Max(Size, offset + data.Length);
    }

    /// <summary>The page holding byte <paramref name="pos"/>, the offset in it, and how many of the
    /// <paramref name="left"/> bytes from there it holds.</summary>
    private static (long Page, int InPage, int N) Piece(long pos, int left)
    {
        int inPage = (int)(pos & (PageSize - 1));
        return (pos >> PageShift, inPage, Math.Min(PageSize - inPage, left));
    }

    /// <summary>Bytes [offset, offset + dst.Length) regardless of the size (zeros past it by the invariant).</summary>
    public void Read(long offset, Span<byte> dst)
    {
        int done = 0;
        while (done < dst.Length)
        {
            var (page, inPage, n) = Piece(offset + done, dst.Length - done);
            if (_pages.TryGetValue(page, out byte[]? p))
                p.AsSpan(inPage, n).CopyTo(dst.Slice(done, n));
            else
                dst.Slice(done, n).Clear();
            done += n;
        }
    }

    /// <summary>The first index where <paramref name="got"/> differs from bytes [offset, ...), or -1.</summary>
    public int Mismatch(long offset, ReadOnlySpan<byte> got)
    {
        int done = 0;
        while (done < got.Length)
        {
            var (page, inPage, n) = Piece(offset + done, got.Length - done);
            ReadOnlySpan<byte> g = got.Slice(done, n);
            int i = _pages.TryGetValue(page, out byte[]? p) ? g.CommonPrefixLength(p.AsSpan(inPage, n)) : g.IndexOfAnyExcept((byte)0);
            if (i >= 0 && i < n)
                return done + i;
            done += n;
        }
        return -1;
    }

    /// <summary>Makes [offset, offset + length) zeros (does not change the size).</summary>
    public void Zero(long offset, long length)
    {
        if (length <= 0)
            return;
        _version++;
        long end = offset + length;
        long firstPage = offset >> PageShift, lastPage = (end - 1) >> PageShift;
        IEnumerable<long> pages = lastPage - firstPage + 1 <= _pages.Count
            ? Range(firstPage, lastPage)
            : _pages.Keys.Where(k => k >= firstPage && k <= lastPage).ToList();
        foreach (long page in pages)
        {
            if (!_pages.TryGetValue(page, out byte[]? p))
                continue;
            long ps = page << PageShift;
            long from = Math.Max(offset, ps), to = Math.Min(end, ps + PageSize);
            p.AsSpan((int)(from - ps), (int)(to - from)).Clear();
            if (!p.AsSpan().ContainsAnyExcept((byte)0))
                _pages.Remove(page);
        }
    }

    private static IEnumerable<long> Range(long first, long last)
    {
        for (long k = first; k <= last; k++)
            yield return k;
    }

    /// <summary>truncate(2): down zeroes everything past the new end; up only moves the end.</summary>
    public void Truncate(long newSize)
    {
        if (newSize < Size)
            Zero(newSize, Size - newSize);
        Size = newSize;
    }

    /// <summary>Byte ranges of the pages held, sorted.</summary>
    public List<(long Start, long Length)> PageRanges() =>
        _pages.Keys.Order().Select(k => (k << PageShift, (long)PageSize)).ToList();

    /// <summary>First offset in [from, to) whose byte is not zero, or -1.</summary>
    public long FirstNonZero(long from, long to)
    {
        foreach (long page in _pages.Keys.Where(k => (k << PageShift) < to && ((k + 1) << PageShift) > from).Order())
        {
            long ps = page << PageShift;
            long a = Math.Max(from, ps), b = Math.Min(to, ps + PageSize);
            int i = _pages[page].AsSpan((int)(a - ps), (int)(b - a)).IndexOfAnyExcept((byte)0);
            if (i >= 0)
                return a + i;
        }
        return -1;
    }

    /// <summary>4 KiB blocks holding a nonzero byte: blocks the volume must have allocated.</summary>
    public long NonZeroBlocks()
    {
        if (_nzVersion == _version)
            return _nz;
        long n = 0;
        foreach (byte[] p in _pages.Values)
            for (int b = 0; b < PageSize; b += Layout.BlockSize)
                if (p.AsSpan(b, Layout.BlockSize).ContainsAnyExcept((byte)0))
                    n++;
        (_nz, _nzVersion) = (n, _version);
        return n;
    }
}

/// <summary>A name in a model directory.</summary>
internal sealed class MEntry(byte[] name, MNode node, MNode dir)
{
    public byte[] Name { get; } = name;
    public string Key { get; } = FsModel.Key(name);
    public MNode Node { get; set; } = node;
    public MNode Dir { get; } = dir;
    /// <summary>The listing cookie the volume gave this entry (learned at the first listing; stable while it exists).</summary>
    public ulong? Cookie { get; set; }
    public int Index { get; set; }
}

/// <summary>A model inode.</summary>
internal sealed class MNode
{
    public ulong Ino;
    public NodeType Type;
    public uint Perm;
    public uint Uid, Gid, Nlink;
    public ulong Rdev;
    public SparseData? Data;
    public byte[]? Target;
    public Dictionary<string, MEntry>? Entries;
    public List<MEntry>? Order;
    public MNode? Parent;
    public MEntry? OwnEntry;
    public readonly List<MEntry> Names = [];
    public readonly List<(byte[] Name, byte[] Value)> Xattrs = [];
    public long? Atime, Mtime;
    public int Pins;
    public bool Freed;
    public int FileIndex = -1, DirIndex = -1, OtherIndex = -1;

    public bool IsDir => Type == NodeType.Dir;
    public bool IsFile => Type == NodeType.File;
    public bool IsSymlink => Type == NodeType.Symlink;
    public long Size => Type switch { NodeType.File => Data!.Size, NodeType.Symlink => Target!.Length, _ => 0 };

    public uint Mode => TypeBits(Type) | Perm;

    public static uint TypeBits(NodeType t) => t switch
    {
        NodeType.File => FileModes.Regular,
        NodeType.Dir => FileModes.Directory,
        NodeType.Symlink => FileModes.Symlink,
        NodeType.Fifo => FileModes.Fifo,
        NodeType.Socket => FileModes.Socket,
        NodeType.CharDev => FileModes.CharDevice,
        _ => FileModes.BlockDevice,
    };

    public override string ToString() => $"{Type} ino {Ino}";
}

/// <summary>What the model predicts for a call: the errnos any of which the call may fail with (POSIX: when several
/// error conditions hold, any one may be reported), or success and the change to apply.</summary>
internal sealed class Plan
{
    public HashSet<Errno> Errors { get; } = [];
    public Action? Apply { get; set; }
    public MNode? Result { get; set; }
    public bool Ok => Errors.Count == 0;

    public static Plan Fail(params Errno[] errors)
    {
        var p = new Plan();
        foreach (Errno e in errors)
            p.Errors.Add(e);
        return p;
    }

    public string Describe() => Ok ? "success" : string.Join("|", Errors.Order());
}

/// <summary>The result of resolving a path in the model: a node or an errno.</summary>
internal readonly record struct Resolved(MNode? Node, Errno Error)
{
    public bool Ok => Node is not null;
    public static Resolved Of(MNode n) => new(n, 0);
    public static Resolved Err(Errno e) => new(null, e);
}

/// <summary>ModelBug -- deliberate mistakes of the model, to prove the checker catches a divergence.</summary>
internal enum ModelBug
{
    None,
    /// <summary>A write at an offset ending in 4095 (mod 4096) loses its last byte in the model.</summary>
    DropLastByteOfWriteAt4095,
}

/// <summary>VolumeFault -- faults injected into the volume under test, to prove the checker catches a volume that
/// returns what it was not given.</summary>
internal enum VolumeFault
{
    None,
    /// <summary>After a write at an offset ending in 4095 (mod 4096), the media byte under its last byte is flipped.</summary>
    FlipStoredLastByteOfWriteAt4095,
    /// <summary>A write at an offset ending in 4095 (mod 4096) fails with ENOSPC however much space is free.</summary>
    EnospcOnWriteAt4095,
}

/// <summary>FsModel -- the file system as a dictionary tree: what every call should return and change.</summary>
internal sealed class FsModel
{
    public const int MaxName = Layout.MaxNameBytes;
    public const int MaxSymlink = Layout.MaxSymlinkBytes;
    public const long MaxFileBytes = Layout.MaxFileBytes;
    public const int MaxXattrName = XattrFormat.MaxNameBytes;

    public MNode Root { get; }
    public Dictionary<ulong, MNode> Live { get; } = [];
    public List<MNode> Dirs { get; } = [];
    public List<MNode> Files { get; } = [];
    public List<MNode> Others { get; } = [];
    public List<ulong> FreedInos { get; } = [];
    public ModelBug Bug { get; set; }

    /// <summary>Linux's trailing-slash rule in path walks (off only to tolerate BUGS.md bug 4 in a long run).</summary>
    public bool StrictTrailingSlash { get; set; } = true;

    public FsModel()
    {
        Root = new MNode { Ino = DaxVolume.RootIno, Type = NodeType.Dir, Perm = 0x1ED, Nlink = 2, Entries = [], Order = [] };
        Root.Parent = Root;
        Live[Root.Ino] = Root;
        AddToList(Dirs, Root, ref Root.DirIndex);
    }

    public static string Key(ReadOnlySpan<byte> name) => Encoding.Latin1.GetString(name);

    private static void AddToList(List<MNode> list, MNode n, ref int index)
    {
        if (index >= 0)
            return;
        index = list.Count;
        list.Add(n);
    }

    private static void RemoveFromList(List<MNode> list, ref int index)
    {
        if (index < 0)
            return;
        int i = index;
        index = -1;
        MNode last = list[^1];
        list.RemoveAt(list.Count - 1);
        if (i < list.Count)
        {
            list[i] = last;
            if (last.IsDir)
                last.DirIndex = i;
            else if (last.IsFile)
                last.FileIndex = i;
            else
                last.OtherIndex = i;
        }
    }

    private void Track(MNode n)
    {
        if (n.IsDir)
            AddToList(Dirs, n, ref n.DirIndex);
        else if (n.IsFile)
            AddToList(Files, n, ref n.FileIndex);
        else
            AddToList(Others, n, ref n.OtherIndex);
    }

    private void Untrack(MNode n)
    {
        if (n.IsDir)
            RemoveFromList(Dirs, ref n.DirIndex);
        else if (n.IsFile)
            RemoveFromList(Files, ref n.FileIndex);
        else
            RemoveFromList(Others, ref n.OtherIndex);
    }

    // ---------------------------------------------------------------- paths

    /// <summary>The path of a reachable directory.</summary>
    public string PathOf(MNode dir)
    {
        if (dir == Root)
            return "/";
        var parts = new List<string>();
        for (MNode d = dir; d != Root; d = d.Parent!)
            parts.Add(Encoding.UTF8.GetString(d.OwnEntry!.Name));
        parts.Reverse();
        return "/" + string.Join('/', parts);
    }

    /// <summary>The path of a name.</summary>
    public string PathOf(MEntry e) => Join(PathOf(e.Dir), e.Name);

    public static string Join(string dir, byte[] name) => (dir == "/" ? "/" : dir + "/") + Encoding.UTF8.GetString(name);

    /// <summary>The volume's path walk: '/'-separated, empty and "." parts skipped, symbolic links followed (40 at most).</summary>
    public Resolved Resolve(string path, bool followLast)
    {
        int follows = 0;
        return Walk(Root, Encoding.UTF8.GetBytes(path), followLast, ref follows);
    }

    private Resolved Walk(MNode start, byte[] path, bool followLast, ref int follows)
    {
        // Linux: a trailing "/" or "/." makes the last component a directory lookup: a symbolic link there is
        // followed, and anything but a directory is ENOTDIR.
        ReadOnlySpan<byte> trimmed = path.AsSpan().TrimEnd((byte)'/');
        bool mustBeDir = StrictTrailingSlash && trimmed.Length > 0 && (trimmed.Length < path.Length || trimmed.EndsWith("/."u8) || trimmed.SequenceEqual("."u8));
        if (mustBeDir)
            followLast = true;
        Resolved res = WalkParts(start, path, followLast, ref follows);
        if (mustBeDir && res.Ok && !res.Node!.IsDir)
            return Resolved.Err(Errno.ENOTDIR);
        return res;
    }

    private Resolved WalkParts(MNode start, byte[] path, bool followLast, ref int follows)
    {
        MNode cur = path.Length > 0 && path[0] == '/' ? Root : start;
        var parts = new List<byte[]>();
        foreach (Range r in path.AsSpan().Split((byte)'/'))
        {
            ReadOnlySpan<byte> part = path.AsSpan()[r];
            if (part.Length > 0 && !part.SequenceEqual("."u8))
                parts.Add(part.ToArray());
        }
        for (int k = 0; k < parts.Count; k++)
        {
            if (parts[k].Length > MaxName)
                return Resolved.Err(Errno.ENAMETOOLONG);
            if (!cur.IsDir)
                return Resolved.Err(Errno.ENOTDIR);
            MNode? next = LookupNode(cur, parts[k]);
            if (next is null)
                return Resolved.Err(Errno.ENOENT);
            bool last = k == parts.Count - 1;
            if (next.IsSymlink && (!last || followLast))
            {
                if (++follows > 40)
                    return Resolved.Err(Errno.ELOOP);
                Resolved t = Walk(cur, next.Target!, true, ref follows);
                if (!t.Ok)
                    return t;
                cur = t.Node!;
                continue;
            }
            cur = next;
        }
        return Resolved.Of(cur);
    }

    /// <summary>A name in a directory, "." and ".." included; null when absent.</summary>
    public static MNode? LookupNode(MNode dir, ReadOnlySpan<byte> name)
    {
        if (name.SequenceEqual("."u8))
            return dir;
        if (name.SequenceEqual(".."u8))
            return dir.Parent;
        if (name.IsEmpty)
            return null;
        return dir.Entries!.TryGetValue(Key(name), out MEntry? e) ? e.Node : null;
    }

    public static MEntry? Entry(MNode dir, ReadOnlySpan<byte> name) =>
        dir.Entries is { } es && es.TryGetValue(Key(name), out MEntry? e) ? e : null;

    /// <summary>The path API's split: the parent resolved (following links), the final name not.</summary>
    public (Resolved Parent, byte[] Name) ResolveParent(string path)
    {
        byte[] p = Encoding.UTF8.GetBytes(path);
        int end = p.Length;
        while (end > 1 && p[end - 1] == '/')
            end--;
        int slash = Array.LastIndexOf(p, (byte)'/', end - 1 >= 0 ? end - 1 : 0);
        byte[] name = p[(slash + 1)..end];
        if (name.Length == 0)
            return (Resolved.Err(Errno.EINVAL), name);
        if (slash <= 0)
            return (Resolved.Of(Root), name);
        int follows = 0;
        return (Walk(Root, p[..slash], true, ref follows), name);
    }

    // ---------------------------------------------------------------- namespace

    private static void NewNameErrors(ReadOnlySpan<byte> name, HashSet<Errno> errs)
    {
        if (name.IsEmpty)
            errs.Add(Errno.ENOENT);
        else if (name.Length > MaxName)
            errs.Add(Errno.ENAMETOOLONG);
        else if (name.IndexOfAny((byte)'/', (byte)0) >= 0)
            errs.Add(Errno.EINVAL);
        else if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8))
            errs.Add(Errno.EEXIST);
    }

    private static bool ValidNewName(ReadOnlySpan<byte> name) =>
        !name.IsEmpty && name.Length <= MaxName && name.IndexOfAny((byte)'/', (byte)0) < 0 && !name.SequenceEqual("."u8) && !name.SequenceEqual(".."u8);

    /// <summary>create / mkdir / mknod / symlink in <paramref name="parent"/>.</summary>
    public Plan Create(MNode parent, byte[] name, NodeType type, uint perm, uint uid, uint gid, ulong rdev, byte[]? target, bool mknodBadType = false)
    {
        var plan = new Plan();
        HashSet<Errno> errs = plan.Errors;
        if (type == NodeType.Symlink)
        {
            if (target!.Length == 0)
                errs.Add(Errno.ENOENT);
            else if (target.Length > MaxSymlink)
                errs.Add(Errno.ENAMETOOLONG);
            else if (Array.IndexOf(target, (byte)0) >= 0)
                errs.Add(Errno.EINVAL);
        }
        if (mknodBadType)
            errs.Add(Errno.EINVAL);
        NewNameErrors(name, errs);
        if (!parent.IsDir)
            errs.Add(Errno.ENOTDIR);
        else if (ValidNewName(name) && Entry(parent, name) is not null)
            errs.Add(Errno.EEXIST);
        if (!plan.Ok)
            return plan;
        plan.Apply = () =>
        {
            // A set-group-ID directory gives new entries its group, and new directories its set-group-ID bit.
            bool setgid = (parent.Perm & 0x400) != 0;
            var n = new MNode
            {
                Type = type, Perm = (type == NodeType.Symlink ? 0x1FF : perm & FileModes.PermissionMask) | (setgid && type == NodeType.Dir ? 0x400u : 0),
                Uid = uid, Gid = setgid ? parent.Gid : gid,
                Nlink = type == NodeType.Dir ? 2u : 1u, Rdev = type is NodeType.CharDev or NodeType.BlockDev ? rdev : 0,
            };
            if (type == NodeType.File)
                n.Data = new SparseData();
            if (type == NodeType.Symlink)
                n.Target = target;
            if (type == NodeType.Dir)
            {
                n.Entries = [];
                n.Order = [];
                n.Parent = parent;
                parent.Nlink++;
            }
            AddEntry(parent, name, n);
            Track(n);
            parent.Mtime = null;
            plan.Result = n;
        };
        return plan;
    }

    /// <summary>Registers the volume's inode number of a node the model just created.</summary>
    public void Register(MNode n, ulong ino)
    {
        n.Ino = ino;
        Live[ino] = n;
    }

    private static MEntry AddEntry(MNode dir, byte[] name, MNode n)
    {
        var e = new MEntry(name, n, dir) { Index = dir.Order!.Count };
        dir.Mtime = null;
        dir.Entries!.Add(e.Key, e);
        dir.Order.Add(e);
        if (n.IsDir)
            n.OwnEntry = e;
        else
            n.Names.Add(e);
        return e;
    }

    private static void RemoveEntry(MEntry e)
    {
        MNode dir = e.Dir;
        dir.Entries!.Remove(e.Key);
        List<MEntry> order = dir.Order!;
        MEntry last = order[^1];
        order[e.Index] = last;
        last.Index = e.Index;
        order.RemoveAt(order.Count - 1);
        if (!e.Node.IsDir)
            e.Node.Names.Remove(e);
        dir.Mtime = null;
    }

    /// <summary>Frees a node with no links and no pins.</summary>
    private void DropIfUnused(MNode n)
    {
        if (n.Nlink > 0)
            return;
        Untrack(n);
        if (n.Pins > 0)
            return;
        Free(n);
    }

    private void Free(MNode n)
    {
        n.Freed = true;
        Live.Remove(n.Ino);
        FreedInos.Add(n.Ino);
        if (FreedInos.Count > 64)
            FreedInos.RemoveAt(0);
    }

    /// <summary>unlink / rmdir.</summary>
    public Plan Remove(MNode parent, byte[] name, bool directory)
    {
        var plan = new Plan();
        HashSet<Errno> errs = plan.Errors;
        if (name.Length > MaxName)
            errs.Add(Errno.ENAMETOOLONG);
        else if (name.AsSpan().SequenceEqual("."u8))
            errs.Add(directory ? Errno.EINVAL : Errno.EISDIR);
        else if (name.AsSpan().SequenceEqual(".."u8))
            errs.Add(directory ? Errno.ENOTEMPTY : Errno.EISDIR);
        if (!parent.IsDir)
            errs.Add(Errno.ENOTDIR);
        if (!plan.Ok)
            return plan;
        MEntry? e = Entry(parent, name);
        if (e is null)
            return Plan.Fail(Errno.ENOENT);
        MNode child = e.Node;
        if (directory && !child.IsDir)
            errs.Add(Errno.ENOTDIR);
        if (!directory && child.IsDir)
            errs.Add(Errno.EISDIR);
        if (directory && child.IsDir && child.Entries!.Count > 0)
            errs.Add(Errno.ENOTEMPTY);
        if (!plan.Ok)
            return plan;
        plan.Apply = () =>
        {
            RemoveEntry(e);
            if (child.IsDir)
            {
                parent.Nlink--;
                child.Nlink = 0;
            }
            else
            {
                child.Nlink--;
            }
            DropIfUnused(child);
            plan.Result = child;
        };
        return plan;
    }

    private static bool IsSelfOrAncestor(MNode candidate, MNode dir)
    {
        for (MNode d = dir; ; d = d.Parent!)
        {
            if (d == candidate)
                return true;
            if (d.Parent == d)
                return false;
        }
    }

    /// <summary>rename / renameat2.</summary>
    public Plan Rename(MNode srcDir, byte[] name, MNode dstDir, byte[] newName, RenameFlags flags)
    {
        var plan = new Plan();
        HashSet<Errno> errs = plan.Errors;
        if ((flags & ~(RenameFlags.NoReplace | RenameFlags.Exchange)) != 0 || flags == (RenameFlags.NoReplace | RenameFlags.Exchange))
            errs.Add(Errno.EINVAL);
        foreach (byte[] n in new[] { name, newName })
        {
            if (n.Length > MaxName)
                errs.Add(Errno.ENAMETOOLONG);
            else if (n.Length == 0)
                errs.Add(Errno.ENOENT);
            else if (n.AsSpan().SequenceEqual("."u8) || n.AsSpan().SequenceEqual(".."u8))
                errs.Add(Errno.EBUSY);
        }
        if (newName.AsSpan().IndexOfAny((byte)'/', (byte)0) >= 0 && newName.Length <= MaxName)
            errs.Add(Errno.EINVAL);
        if (!srcDir.IsDir || !dstDir.IsDir)
            errs.Add(Errno.ENOTDIR);
        if (!plan.Ok)
            return plan;
        MEntry? se = Entry(srcDir, name);
        if (se is null)
            return Plan.Fail(Errno.ENOENT);
        MEntry? de = Entry(dstDir, newName);
        MNode src = se.Node;
        MNode? dst = de?.Node;
        bool exchange = (flags & RenameFlags.Exchange) != 0;
        if (exchange && dst is null)
            errs.Add(Errno.ENOENT);
        if ((flags & RenameFlags.NoReplace) != 0 && dst is not null)
            errs.Add(Errno.EEXIST);
        if (!plan.Ok)
            return plan;
        if (dst == src)
        {
            plan.Apply = () => { };
            return plan;
        }
        if (src.IsDir && IsSelfOrAncestor(src, dstDir))
            errs.Add(Errno.EINVAL);
        if (exchange && dst!.IsDir && IsSelfOrAncestor(dst, srcDir))
            errs.Add(Errno.EINVAL);
        if (dst is not null && !exchange)
        {
            if (dst.IsDir && IsSelfOrAncestor(dst, srcDir))
                errs.Add(Errno.ENOTEMPTY); // Linux: the target is an ancestor of the source
            if (src.IsDir && !dst.IsDir)
                errs.Add(Errno.ENOTDIR);
            if (!src.IsDir && dst.IsDir)
                errs.Add(Errno.EISDIR);
            if (src.IsDir && dst.IsDir && dst.Entries!.Count > 0)
                errs.Add(Errno.ENOTEMPTY);
        }
        if (!plan.Ok)
            return plan;
        plan.Apply = () =>
        {
            if (exchange)
            {
                RemoveEntry(se);
                RemoveEntry(de!);
                AddEntry(srcDir, name, dst!);
                AddEntry(dstDir, newName, src);
                if (srcDir != dstDir)
                {
                    MoveDir(src, srcDir, dstDir);
                    MoveDir(dst!, dstDir, srcDir);
                }
                if (dst!.IsDir)
                    dst.Mtime = null;
            }
            else
            {
                if (de is not null)
                {
                    RemoveEntry(de);
                    if (dst!.IsDir)
                    {
                        dst.Nlink = 0;
                        dstDir.Nlink--;
                    }
                    else
                    {
                        dst.Nlink--;
                    }
                    DropIfUnused(dst);
                    plan.Result = dst;
                }
                RemoveEntry(se);
                AddEntry(dstDir, newName, src);
                if (srcDir != dstDir)
                    MoveDir(src, srcDir, dstDir);
            }
            if (src.IsDir)
                src.Mtime = null;
        };
        return plan;
    }

    private static void MoveDir(MNode moved, MNode from, MNode to)
    {
        if (!moved.IsDir)
            return;
        moved.Parent = to;
        from.Nlink--;
        to.Nlink++;
    }

    /// <summary>link(2) of <paramref name="target"/> (null: the source does not resolve).</summary>
    public Plan Link(MNode target, MNode dir, byte[] newName)
    {
        var plan = new Plan();
        HashSet<Errno> errs = plan.Errors;
        NewNameErrors(newName, errs);
        if (!dir.IsDir)
            errs.Add(Errno.ENOTDIR);
        if (target.IsDir)
            errs.Add(Errno.EPERM);
        if (target.Nlink == 0)
            errs.Add(Errno.ENOENT);
        if (dir.IsDir && ValidNewName(newName) && Entry(dir, newName) is not null)
            errs.Add(Errno.EEXIST);
        if (!plan.Ok)
            return plan;
        plan.Apply = () =>
        {
            AddEntry(dir, newName, target);
            target.Nlink++;
        };
        return plan;
    }

    // ---------------------------------------------------------------- attributes

    public static Plan SetAttr(MNode n, uint? mode, uint? uid, uint? gid, long? size, long? atime, long? mtime)
    {
        var plan = new Plan();
        if (size is { } sz)
        {
            if (n.IsDir)
                plan.Errors.Add(Errno.EISDIR);
            else if (!n.IsFile)
                plan.Errors.Add(Errno.EINVAL);
            if (sz < 0)
                plan.Errors.Add(Errno.EINVAL);
            if (sz > MaxFileBytes)
                plan.Errors.Add(Errno.EFBIG);
        }
        if (!plan.Ok)
            return plan;
        plan.Apply = () =>
        {
            if (size is { } s)
            {
                n.Data!.Truncate(s);
                n.Mtime = null;
            }
            if (mode is { } m)
                n.Perm = m & FileModes.PermissionMask;
            if (uid is { } u)
                n.Uid = u;
            if (gid is { } g)
                n.Gid = g;
            if (atime is { } a)
                n.Atime = a;
            if (mtime is { } t)
                n.Mtime = t;
        };
        return plan;
    }

    // ---------------------------------------------------------------- xattrs

    public static int XattrBytes(IEnumerable<(byte[] Name, byte[] Value)> set) => XattrFormat.HeaderSize + set.Sum(e => 4 + e.Name.Length + e.Value.Length);

    private static void XattrNameErrors(byte[] name, HashSet<Errno> errs)
    {
        if (name.Length == 0)
            errs.Add(Errno.EINVAL);
        else if (name.Length > MaxXattrName)
            errs.Add(Errno.ERANGE);
        else if (Array.IndexOf(name, (byte)0) >= 0)
            errs.Add(Errno.EINVAL);
        else if (!name.AsSpan().StartsWith("user."u8) && !name.AsSpan().StartsWith("trusted."u8) && !name.AsSpan().StartsWith("security."u8))
            errs.Add(Errno.EOPNOTSUPP); // the namespaces DaxFS stores; others (system.*, unknown) as Linux refuses them
    }

    private static int XattrIndex(MNode n, byte[] name) => n.Xattrs.FindIndex(x => x.Name.AsSpan().SequenceEqual(name));

    public static (Plan Plan, byte[]? Value) GetXattr(MNode n, byte[] name)
    {
        var plan = new Plan();
        XattrNameErrors(name, plan.Errors);
        if (!plan.Ok)
            return (plan, null);
        int i = XattrIndex(n, name);
        if (i < 0)
            return (Plan.Fail(Errno.ENODATA), null);
        return (plan, n.Xattrs[i].Value);
    }

    public static Plan SetXattr(MNode n, byte[] name, byte[] value, XattrFlags flags)
    {
        var plan = new Plan();
        HashSet<Errno> errs = plan.Errors;
        XattrNameErrors(name, errs);
        if ((flags & ~(XattrFlags.Create | XattrFlags.Replace)) != 0)
            errs.Add(Errno.EINVAL); // both flags together are valid (Linux): EEXIST if it exists, ENODATA if not
        if (value.Length > ushort.MaxValue)
            errs.Add(Errno.E2BIG);
        if (!plan.Ok)
        {
            if (errs.Contains(Errno.E2BIG))
                errs.Add(Errno.ENOSPC); // too large for the one attribute block as well
            return plan;
        }
        int i = XattrIndex(n, name);
        if (i >= 0 && (flags & XattrFlags.Create) != 0)
            errs.Add(Errno.EEXIST);
        if (i < 0 && (flags & XattrFlags.Replace) != 0)
            errs.Add(Errno.ENODATA);
        if (!plan.Ok)
            return plan;
        var set = n.Xattrs.ToList();
        if (i >= 0)
            set[i] = (set[i].Name, value);
        else
            set.Add((name, value));
        if (XattrBytes(set) > Layout.BlockSize)
            return Plan.Fail(Errno.ENOSPC);
        plan.Apply = () =>
        {
            n.Xattrs.Clear();
            n.Xattrs.AddRange(set);
        };
        return plan;
    }

    public static Plan RemoveXattr(MNode n, byte[] name)
    {
        var plan = new Plan();
        XattrNameErrors(name, plan.Errors);
        if (!plan.Ok)
            return plan;
        int i = XattrIndex(n, name);
        if (i < 0)
            return Plan.Fail(Errno.ENODATA);
        plan.Apply = () => n.Xattrs.RemoveAt(i);
        return plan;
    }

    // ---------------------------------------------------------------- data

    /// <summary>Errors of a data call on <paramref name="n"/> (read/write need a regular file).</summary>
    public static void RegularErrors(MNode n, HashSet<Errno> errs)
    {
        if (n.IsDir)
            errs.Add(Errno.EISDIR);
        else if (!n.IsFile)
            errs.Add(Errno.EINVAL);
    }

    public Plan Write(MNode n, long offset, byte[] data)
    {
        var plan = new Plan();
        if (offset < 0)
            plan.Errors.Add(Errno.EINVAL);
        else if (offset + (long)data.Length > MaxFileBytes)
            plan.Errors.Add(Errno.EFBIG);
        RegularErrors(n, plan.Errors);
        if (!plan.Ok)
            return plan;
        plan.Apply = () =>
        {
            if (data.Length == 0)
                return;
            if (Bug == ModelBug.DropLastByteOfWriteAt4095 && (offset & 4095) == 4095 && data.Length > 1)
                n.Data!.Write(offset, data.AsSpan(0, data.Length - 1));
            else
                n.Data!.Write(offset, data);
            n.Data!.Size = Math.Max(n.Data.Size, offset + data.Length);
            n.Mtime = null;
        };
        return plan;
    }

    public static Plan Read(MNode n, long offset)
    {
        var plan = new Plan();
        if (offset < 0)
            plan.Errors.Add(Errno.EINVAL);
        RegularErrors(n, plan.Errors);
        return plan;
    }

    public static Plan Fallocate(MNode n, FallocateMode mode, long offset, long length)
    {
        var plan = new Plan();
        HashSet<Errno> errs = plan.Errors;
        bool punch = (mode & FallocateMode.PunchHole) != 0, zero = (mode & FallocateMode.ZeroRange) != 0;
        bool keep = (mode & FallocateMode.KeepSize) != 0;
        if ((mode & ~(FallocateMode.KeepSize | FallocateMode.PunchHole | FallocateMode.ZeroRange)) != 0)
            errs.Add(Errno.EOPNOTSUPP);
        if (punch && zero)
            errs.Add(Errno.EINVAL);
        if (punch && !keep)
            errs.Add(Errno.EOPNOTSUPP);
        if (offset < 0 || length <= 0)
            errs.Add(Errno.EINVAL);
        else if (offset + length > MaxFileBytes || offset + length < 0)
            errs.Add(Errno.EFBIG);
        if (n.IsDir)
            errs.Add(Errno.EISDIR);
        else if (!n.IsFile)
            errs.Add(Errno.ENODEV);
        if (!plan.Ok)
            return plan;
        plan.Apply = () =>
        {
            SparseData d = n.Data!;
            long end = offset + length;
            if (punch || zero)
                d.Zero(offset, length);
            if (!keep && end > d.Size)
                d.Size = end;
            if (punch || zero || !keep)
                n.Mtime = null;
        };
        return plan;
    }

    // ---------------------------------------------------------------- handles

    public static void Pin(MNode n) => n.Pins++;

    public void Unpin(MNode n)
    {
        if (n.Pins > 0)
            n.Pins--;
        if (n.Pins == 0 && n.Nlink == 0 && !n.Freed)
            Free(n);
    }

    /// <summary>Unmount with handles left open: the unlinked-but-open nodes are orphans that the next mount frees.</summary>
    public List<MNode> DropAllPins()
    {
        var orphans = Live.Values.Where(n => n.Nlink == 0 && n.Pins > 0).ToList();
        foreach (MNode n in Live.Values)
            n.Pins = 0;
        foreach (MNode o in orphans)
            Free(o);
        return orphans;
    }

    /// <summary>Roughly the bytes the files' data occupy (pages held): the generator's measure of fullness.</summary>
    public long ApproxDataBytes() => Files.Sum(f => (long)f.Data!.PageCount) * SparseData.PageSize;

    /// <summary>Every live node reachable from the root (each once).</summary>
    public IEnumerable<MNode> Reachable()
    {
        var seen = new HashSet<MNode> { Root };
        var queue = new Queue<MNode>([Root]);
        yield return Root;
        while (queue.Count > 0)
        {
            MNode d = queue.Dequeue();
            foreach (MEntry e in d.Order!)
            {
                if (!seen.Add(e.Node))
                    continue;
                yield return e.Node;
                if (e.Node.IsDir)
                    queue.Enqueue(e.Node);
            }
        }
    }
}
