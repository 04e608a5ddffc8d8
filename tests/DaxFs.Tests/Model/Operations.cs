using System.Globalization;
using System.Text;

namespace DaxFs.Tests.Model;

/// <summary>Which of the volume's two APIs a call goes through.</summary>
internal enum Api
{
    /// <summary>The path API (Resolve, CreateFile(path), DaxFile, ...).</summary>
    Path,
    /// <summary>The inode API (FUSE-style: parent inode + name, inode numbers).</summary>
    Inode,
}

/// <summary>What a data call works on: a path (resolved through <see cref="Via"/>) or an open handle slot.</summary>
internal readonly record struct Target(string? Path, int Handle, Api Via, bool Follow = true)
{
    public static Target OfHandle(int slot) => new(null, slot, Api.Path);

    public override string ToString() =>
        Handle >= 0 ? $"#h{Handle}" : $"{Fmt.Path(Path!)}{(Via == Api.Inode ? " [ino]" : "")}{(Follow ? "" : " [nofollow]")}";
}

/// <summary>Formatting of names and paths in op listings.</summary>
internal static class Fmt
{
    public static string Name(byte[] name)
    {
        if (name.Length > 24 && name.All(b => b == name[0]))
            return $"'{(char)name[0]}'*{name.Length}";
        var sb = new StringBuilder("'");
        string s = Encoding.UTF8.GetString(name);
        foreach (char c in s.Length > 60 ? s[..60] + "..." : s)
            sb.Append(c < 32 ? $"\\x{(int)c:x2}" : c.ToString());
        if (name.Length > 60)
            sb.Append(CultureInfo.InvariantCulture, $"({name.Length} bytes)");
        return sb.Append('\'').ToString();
    }

    public static string Path(string p) => Name(Encoding.UTF8.GetBytes(p));

    public static string Num(long? v) => v is null ? "-" : v.Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One generated call (or composite step). Ops are plain data: a run is the list of its ops, and any
/// subsequence of that list can be replayed (ops whose handle slot is empty are skipped).</summary>
internal abstract record Op;

/// <summary>create / mkdir / mknod / symlink. <see cref="Variant"/>: 0 plain; 1 path API non-exclusive create (opens
/// an existing file); 2 mknod with an invalid type (EINVAL); 3 mknod of a regular file with type bits 0.</summary>
internal sealed record CreateOp(string Parent, byte[] Name, NodeType Type, uint Perm, uint Uid, uint Gid, ulong Rdev, byte[]? Target, Api Via, int Variant) : Op
{
    public override string ToString()
    {
        string what = Type switch
        {
            NodeType.File => Variant == 3 ? "mknod-reg" : Via == Api.Path && Variant == 1 ? "create-or-open" : "create",
            NodeType.Dir => "mkdir",
            NodeType.Symlink => "symlink",
            _ => $"mknod-{Type.ToString().ToLowerInvariant()}" + (Variant == 2 ? "(bad-type)" : ""),
        };
        string tgt = Target is null ? "" : $" -> {Fmt.Name(Target)}";
        return $"{what} {Fmt.Path(Parent)} {Fmt.Name(Name)}{tgt} mode=0{Convert.ToString(Perm, 8)} uid={Uid} gid={Gid}{(Rdev != 0 ? $" rdev={Rdev}" : "")} via={Via}";
    }
}

/// <summary>unlink / rmdir.</summary>
internal sealed record RemoveOp(string Parent, byte[] Name, bool Directory, Api Via) : Op
{
    public override string ToString() => $"{(Directory ? "rmdir" : "unlink")} {Fmt.Path(Parent)} {Fmt.Name(Name)} via={Via}";
}

/// <summary>rename / renameat2.</summary>
internal sealed record RenameOp(string FromParent, byte[] FromName, string ToParent, byte[] ToName, RenameFlags Flags, Api Via) : Op
{
    public override string ToString() =>
        $"rename {Fmt.Path(FromParent)} {Fmt.Name(FromName)} -> {Fmt.Path(ToParent)} {Fmt.Name(ToName)} flags={Flags} via={Via}";
}

/// <summary>link(2): <see cref="Existing"/> (not followed) or the inode of handle <see cref="Handle"/>.</summary>
internal sealed record LinkOp(string? Existing, int Handle, string NewParent, byte[] NewName, Api Via) : Op
{
    public override string ToString() =>
        $"link {(Handle >= 0 ? $"#h{Handle}" : Fmt.Path(Existing!))} -> {Fmt.Path(NewParent)} {Fmt.Name(NewName)} via={Via}";
}

/// <summary>readlink.</summary>
internal sealed record ReadLinkOp(string Path, Api Via) : Op
{
    public override string ToString() => $"readlink {Fmt.Path(Path)} via={Via}";
}

/// <summary>stat / lstat / lookup / exists. Variant 0 stat(path), 1 lookup(parent inode, name), 2 exists(path).</summary>
internal sealed record StatOp(string Path, bool Follow, int Variant) : Op
{
    public override string ToString() => $"{(Variant switch { 0 => Follow ? "stat" : "lstat", 1 => "lookup", _ => "exists" })} {Fmt.Path(Path)}";
}

/// <summary>A directory listing read in chunks (sizes from <see cref="ChunkSeed"/>), resuming with the cookie;
/// optionally with <see cref="Nested"/> (a create or unlink in the same directory) run after chunk
/// <see cref="NestedAfter"/>.</summary>
internal sealed record ListDirOp(string Path, int ChunkSeed, Op? Nested, int NestedAfter) : Op
{
    public override string ToString() =>
        $"readdir {Fmt.Path(Path)} chunks={ChunkSeed}{(Nested is null ? "" : $" with [{Nested}] after chunk {NestedAfter}")}";
}

/// <summary>setattr: chmod, chown, truncate, utimens (null fields untouched).</summary>
internal sealed record SetAttrOp(Target T, uint? Mode, uint? Uid, uint? Gid, long? Size, long? Atime, long? Mtime) : Op
{
    public override string ToString()
    {
        var sb = new StringBuilder($"setattr {T}");
        if (Mode is { } m)
            sb.Append(CultureInfo.InvariantCulture, $" mode=0{Convert.ToString(m, 8)}");
        if (Uid is { } u)
            sb.Append(CultureInfo.InvariantCulture, $" uid={u}");
        if (Gid is { } g)
            sb.Append(CultureInfo.InvariantCulture, $" gid={g}");
        if (Size is { } s)
            sb.Append(CultureInfo.InvariantCulture, $" size={s}");
        if (Atime is { } a)
            sb.Append(CultureInfo.InvariantCulture, $" atime={a}");
        if (Mtime is { } t)
            sb.Append(CultureInfo.InvariantCulture, $" mtime={t}");
        return sb.ToString();
    }
}

internal enum XattrAction
{
    Get,
    Set,
    List,
    Remove,
}

/// <summary>getxattr / setxattr / listxattr / removexattr.</summary>
internal sealed record XattrOp(Target T, XattrAction Action, byte[] Name, int ValueLen, int ValueSeed, XattrFlags Flags) : Op
{
    public override string ToString() => Action switch
    {
        XattrAction.Set => $"setxattr {T} {Fmt.Name(Name)} len={ValueLen} seed={ValueSeed} flags={Flags}",
        XattrAction.List => $"listxattr {T}",
        _ => $"{Action.ToString().ToLowerInvariant()}xattr {T} {Fmt.Name(Name)}",
    };
}

/// <summary>statfs.</summary>
internal sealed record StatFsOp : Op
{
    public override string ToString() => "statfs";
}

/// <summary>pwrite of <see cref="Length"/> bytes made from <see cref="DataSeed"/> (0: zeros).</summary>
internal sealed record WriteOp(Target T, long Offset, int Length, int DataSeed) : Op
{
    public override string ToString() => $"write {T} off={Offset} len={Length} seed-bytes={DataSeed}";
}

/// <summary>pread; <see cref="Extents"/> reads through ReadExtents (the zero-copy path) instead.</summary>
internal sealed record ReadOp(Target T, long Offset, int Length, bool Extents) : Op
{
    public override string ToString() => $"read{(Extents ? "-extents" : "")} {T} off={Offset} len={Length}";
}

/// <summary>DaxFile.Append.</summary>
internal sealed record AppendOp(Target T, int Length, int DataSeed) : Op
{
    public override string ToString() => $"append {T} len={Length} seed-bytes={DataSeed}";
}

/// <summary>fallocate(2).</summary>
internal sealed record FallocateOp(Target T, FallocateMode Mode, long Offset, long Length) : Op
{
    public override string ToString() => $"fallocate {T} mode={Mode} off={Offset} len={Length}";
}

/// <summary>fsync (or, <see cref="Whole"/>, the volume's Sync).</summary>
internal sealed record FsyncOp(Target T, bool Whole, bool Checkpoint = false) : Op
{
    public override string ToString() => Checkpoint ? "checkpoint" : Whole ? "sync" : $"fsync {T}";
}

/// <summary>lseek SEEK_DATA / SEEK_HOLE.</summary>
internal sealed record SeekOp(Target T, long Offset, bool Data) : Op
{
    public override string ToString() => $"seek-{(Data ? "data" : "hole")} {T} off={Offset}";
}

/// <summary>DaxFile.Map: map a range (read or read-write, sync or async), store <see cref="Stores"/> runs through the
/// mapping (made from <see cref="Seed"/>), read the window back, unmap.</summary>
internal sealed record MapOp(Target T, long Offset, int Length, MapAccess Access, MapMode Mode, int Stores, int Seed) : Op
{
    public override string ToString() => $"mmap {T} off={Offset} len={Length} {Access} {Mode} stores={Stores} seed={Seed}";
}

/// <summary>A few calls through DaxFile.AsStream (seek, read, write, set length), scripted by <see cref="Seed"/>.</summary>
internal sealed record StreamOp(string Path, int Seed) : Op
{
    public override string ToString() => $"stream {Fmt.Path(Path)} seed={Seed}";
}

/// <summary>Opens (or with <see cref="Create"/> creates-or-opens) a DaxFile into handle slot <see cref="Slot"/>,
/// closing what the slot held.</summary>
internal sealed record OpenOp(int Slot, string Path, bool Create) : Op
{
    public override string ToString() => $"{(Create ? "create-open" : "open")} #h{Slot} {Fmt.Path(Path)}";
}

/// <summary>Disposes the DaxFile in a slot.</summary>
internal sealed record CloseOp(int Slot) : Op
{
    public override string ToString() => $"close #h{Slot}";
}

/// <summary>Unmount (fsck) and mount again; optionally on a device of the other granularity (pmem / Page), and
/// optionally with the handles left open (their unlinked files become orphans the mount frees).</summary>
internal sealed record RemountOp(bool SwitchMode, bool LeaveOpen, bool SyncMount = false) : Op
{
    public override string ToString() =>
        $"remount{(SwitchMode ? " switch-granularity" : "")}{(LeaveOpen ? " leave-handles-open" : "")}{(SyncMount ? " mount-option-sync" : "")}";
}

/// <summary>A crash now: a copy of the device must pass fsck and (when everything is durable: pmem, the sync mount
/// option, or <see cref="SyncFirst"/> on Page devices) mount to exactly the model's tree.</summary>
internal sealed record CrashImageOp(bool SyncFirst) : Op
{
    public override string ToString() => $"crash-image{(SyncFirst ? " after-sync" : "")}";
}

/// <summary>Appends <see cref="Chunk"/>-byte chunks to a file (created if missing) until ENOSPC, then smaller ones down
/// to one byte; each ENOSPC must leave the volume as it was.</summary>
internal sealed record FillOp(string Path, int Chunk, int DataSeed) : Op
{
    public override string ToString() => $"fill {Fmt.Path(Path)} chunk={Chunk} seed-bytes={DataSeed}";
}

/// <summary>Creates empty files in a directory until the inodes run out (ENOSPC) or <see cref="Max"/>.</summary>
internal sealed record FillInodesOp(string Dir, string Prefix, int Max) : Op
{
    public override string ToString() => $"fill-inodes {Fmt.Path(Dir)} prefix={Prefix} max={Max}";
}

/// <summary>Many small writes in one file: <see cref="Count"/> writes of <see cref="Length"/> bytes every
/// <see cref="Stride"/> bytes from <see cref="Start"/> (a file of many extents), then every other one punched.</summary>
internal sealed record ScatterOp(Target T, long Start, int Stride, int Count, int Length, int Seed) : Op
{
    public override string ToString() => $"scatter {T} start={Start} stride={Stride} count={Count} len={Length} seed-bytes={Seed}";
}

/// <summary>rm -r: unlinks and rmdirs a whole subtree, deepest first.</summary>
internal sealed record RemoveTreeOp(string Parent, byte[] Name) : Op
{
    public override string ToString() => $"rm-r {Fmt.Path(Parent)} {Fmt.Name(Name)}";
}

/// <summary>A call on an inode number that is not live (freed, 0, huge): ENOENT. Skipped if the number is live.</summary>
internal sealed record StaleInoOp(ulong Ino, int Kind) : Op
{
    public override string ToString() => $"stale-ino {Ino} kind={Kind}";
}

/// <summary>Settings of a generator.</summary>
internal sealed record GenConfig(bool SmallInodes, int TotalOps, long DeviceBytes, bool SwitchGranularity = true, bool TrailingSlashes = true);

/// <summary>Generator -- the next op from the seed's random stream and the model's current state: existing names most
/// of the time, wrong names and types sometimes, sizes and offsets around block and 2 MiB boundaries, far past the
/// end of file and beyond 4 GiB.</summary>
internal sealed class Generator(int seed, FsModel model, GenConfig config)
{
    private const long GiB = 1L << 30;
    private readonly Random _r = new(seed);
    private readonly FsModel _m = model;
    private int _step;
    private int _pressure;
    private bool _hugeDone;
    private bool _fillDone;
    private bool _fillInodesDone;
    private bool _remountDone;
    private bool _crashDone;
    private int _prefix;
    private long _fullness;

    private static readonly string[] Pool = ["a", "b", "c", "d", "e", "f", "g1", "g2", "h", "dir", "file", "x"];
    private static readonly string[] XattrPool = ["user.a", "user.b", "user.c", "user.long-name-for-a-value", "trusted.t", "security.s"];

    /// <summary>Whether a write beyond 4 GiB has succeeded yet (the runner tells).</summary>
    public Func<bool> HugeDone { get; set; } = () => true;

    /// <summary>Open handle slots (the runner tells which hold a file).</summary>
    public Func<int, bool> SlotOpen { get; set; } = _ => false;

    private bool P(int percent) => _r.Next(100) < percent;

    private T Pick<T>(IReadOnlyList<T> list) => list[_r.Next(list.Count)];

    public Op Next()
    {
        _step++;
        // Forced once per run: a sparse write beyond 4 GiB, a fill to ENOSPC, an inode fill, a remount.
        if ((!_hugeDone || (_step % 97 == 0 && !HugeDone())) && _step >= config.TotalOps / 3 && _m.Files.Count > 0)
        {
            _hugeDone = true;
            return new WriteOp(new Target(FilePath(exact: true), -1, Api.Inode), 4 * GiB + _r.Next(1 << 20) * 4096L + _r.Next(2) * 4095, 4097 + _r.Next(10000), _r.Next() | 1);
        }
        if (!_fillDone && _step >= config.TotalOps / 2)
        {
            _fillDone = true;
            return Fill();
        }
        if (!_fillInodesDone && config.SmallInodes && _step >= config.TotalOps * 2 / 3)
        {
            _fillInodesDone = true;
            return FillInodes();
        }
        if (!_crashDone && _step >= config.TotalOps * 5 / 6)
        {
            _crashDone = true;
            return new CrashImageOp(P(50));
        }
        if (!_remountDone && _step >= config.TotalOps * 3 / 4)
        {
            _remountDone = true;
            return new RemountOp(config.SwitchGranularity && P(30), P(50), P(20));
        }
        if (_pressure > 0)
        {
            _pressure--;
            if (P(40))
                return Relief();
        }
        if ((_step & 7) == 0)
            _fullness = _m.ApproxDataBytes() * 100 / config.DeviceBytes;
        if (_fullness > 55 && P((int)Math.Min(60, _fullness - 40)))
            return Relief();
        int x = _r.Next(1000);
        return x switch
        {
            < 80 => Create(NodeType.File),
            < 130 => Create(NodeType.Dir),
            < 160 => Create(NodeType.Symlink),
            < 170 => Create(Pick([NodeType.Fifo, NodeType.Socket, NodeType.CharDev, NodeType.BlockDev, NodeType.File])),
            < 215 => Remove(false),
            < 240 => Remove(true),
            < 310 => Rename(),
            < 340 => Link(),
            < 390 => Stat(),
            < 405 => ReadLink(),
            < 445 => ListDir(),
            < 490 => SetAttr(),
            < 550 => Xattr(),
            < 555 => new StatFsOp(),
            < 700 => Write(),
            < 780 => Read(),
            < 800 => new AppendOp(DataTarget(), Length(), DataSeed()),
            < 850 => Fallocate(),
            < 865 => new SeekOp(DataTarget(), SeekOffset(), P(50)),
            < 875 => new FsyncOp(DataTarget(), P(30), P(5)),
            < 885 => new StreamOp(FilePath(), _r.Next()),
            < 905 => new OpenOp(_r.Next(4), P(80) ? FilePath() : NewPath(), P(30)),
            < 920 => new CloseOp(_r.Next(4)),
            < 935 => Link(),
            < 950 => RemoveTree(),
            < 960 => StaleIno(),
            < 961 => new RemountOp(config.SwitchGranularity && P(25), P(30), P(20)),
            < 963 => P(15) ? Fill() : Write(),
            < 964 => config.SmallInodes ? FillInodes() : Write(),
            < 965 => P(25) ? new CrashImageOp(P(50)) : Write(),
            < 970 => Map(),
            < 972 => new ScatterOp(DataTarget(), Pick([0L, 4095, _r.NextInt64(1L << 32)]), Pick([8192, 4096 * 3, 12345, 65536]), 20 + _r.Next(200), 1 + _r.Next(4096), _r.Next() | 1),
            < 974 => new FillInodesOp(_m.PathOf(Pick(_m.Dirs)), "m" + _prefix++ + "-", 30 + _r.Next(150)),
            _ => Write(),
        };
    }

    // ------------------------------------------------------------ pickers

    private string DirPath()
    {
        int x = _r.Next(100);
        if (x < 85 || _m.Files.Count == 0)
            return Mangle(_m.PathOf(Pick(_m.Dirs)));
        if (x < 92 && _m.Others.Count > 0)
        {
            MNode o = Pick(_m.Others);
            if (o.Names.Count > 0)
                return _m.PathOf(Pick(o.Names)); // a symbolic link (to a directory, sometimes)
        }
        if (x < 97)
            return _m.PathOf(Pick(Pick(_m.Files).Names)); // ENOTDIR
        return "/nope/" + Pick(Pool);
    }

    /// <summary>Sometimes spells a directory path differently: "//", "/./", "d/../d".</summary>
    private string Mangle(string path)
    {
        if (!P(6) || path == "/")
            return path;
        int slash = path.LastIndexOf('/');
        return _r.Next(3) switch
        {
            0 => "/" + path,
            1 => path[..slash] + "/." + path[slash..],
            _ => path + "/../" + path[(slash + 1)..],
        };
    }

    private byte[] NewName(MNode? dir, bool inodeApi)
    {
        int x = _r.Next(100);
        if (x < 70)
            return Encoding.UTF8.GetBytes(Pick(Pool));
        if (x < 82 && dir is { Order.Count: > 0 })
            return Pick(dir.Order!).Name;
        return (_r.Next(inodeApi ? 10 : 7)) switch
        {
            0 => Enumerable.Repeat((byte)'L', 255).ToArray(),
            1 => Enumerable.Repeat((byte)'L', 256).ToArray(),
            2 => Encoding.UTF8.GetBytes("ü-名前-" + _r.Next(3)),
            3 => "."u8.ToArray(),
            4 => ".."u8.ToArray(),
            5 => Encoding.UTF8.GetBytes("sp ace" + _r.Next(2)),
            6 => Encoding.UTF8.GetBytes(new string('n', 200 + _r.Next(56))),
            7 => [],
            8 => "a/b"u8.ToArray(),
            _ => "a\0b"u8.ToArray(),
        };
    }

    /// <summary>An existing name (parent path, name) most of the time; a random one otherwise.</summary>
    private (string Parent, byte[] Name) Existing(Func<MNode, bool>? filter = null, int randomPercent = 10)
    {
        if (!P(randomPercent))
        {
            for (int tries = 0; tries < 8; tries++)
            {
                MNode d = Pick(_m.Dirs);
                if (d.Order!.Count == 0)
                    continue;
                MEntry e = Pick(d.Order);
                if (filter is null || filter(e.Node) || tries >= 6)
                    return (Mangle(_m.PathOf(d)), e.Name);
            }
        }
        MNode dir = Pick(_m.Dirs);
        return (DirPathOr(dir), NewName(dir, inodeApi: false));
    }

    private string DirPathOr(MNode dir) => P(90) ? _m.PathOf(dir) : DirPath();

    private string NewPath()
    {
        MNode dir = Pick(_m.Dirs);
        return FsModel.Join(_m.PathOf(dir), Encoding.UTF8.GetBytes(Pick(Pool)));
    }

    private string FilePath(bool exact = false)
    {
        int x = exact ? 0 : _r.Next(100);
        if (x < 88 && _m.Files.Count > 0)
            return _m.PathOf(Pick(Pick(_m.Files).Names));
        if (x < 92 && _m.Others.Count > 0 && Pick(_m.Others) is { Names.Count: > 0 } o)
            return _m.PathOf(Pick(o.Names));
        if (x < 96)
            return _m.PathOf(Pick(_m.Dirs));
        return NewPath();
    }

    private string AnyPath()
    {
        int x = _r.Next(100);
        if (x < 45 && _m.Files.Count > 0)
            return _m.PathOf(Pick(Pick(_m.Files).Names));
        if (x < 70)
            return Mangle(_m.PathOf(Pick(_m.Dirs)));
        if (x < 88 && _m.Others.Count > 0 && Pick(_m.Others) is { Names.Count: > 0 } o)
            return _m.PathOf(Pick(o.Names));
        return NewPath();
    }

    /// <summary>Sometimes a trailing "/" or "/." (Linux: the path must then name a directory).</summary>
    private string Slashy(string path) => config.TrailingSlashes && P(3) && path != "/" ? path + (P(50) ? "/" : "/.") : path;

    private Target DataTarget()
    {
        if (P(20))
        {
            for (int k = 0; k < 4; k++)
            {
                int slot = _r.Next(4);
                if (SlotOpen(slot))
                    return Target.OfHandle(slot);
            }
        }
        return new Target(Slashy(FilePath()), -1, P(50) ? Api.Inode : Api.Path);
    }

    private Target AttrTarget() =>
        P(15) && Enumerable.Range(0, 4).FirstOrDefault(SlotOpen, -1) is var s and >= 0
            ? Target.OfHandle(s)
            : new Target(Slashy(AnyPath()), -1, P(50) ? Api.Inode : Api.Path, P(75));

    private uint Perm() => P(60) ? Pick<uint>([0x1A4, 0x1ED, 0x1FF, 0x180, 0x124]) : (uint)_r.Next(0x10000);

    private uint Id() => Pick<uint>([0, 0, 1000, 1001, 65534, uint.MaxValue, (uint)_r.Next()]);

    private int DataSeed() => P(5) ? 0 : _r.Next() | 1;

    private long FileSize(string path) => _m.Resolve(path, true) is { Ok: true, Node: { IsFile: true } n } ? n.Size : 0;

    private long Offset(long size)
    {
        int x = _r.Next(1000);
        long block = 4096, group = 2 << 20;
        return x switch
        {
            < 150 => 0,
            < 300 => size,
            < 450 => size == 0 ? 0 : _r.NextInt64(size + 1),
            < 600 => (_r.NextInt64(size / block + 3) * block) + _r.Next(-1, 2),
            < 680 => (_r.NextInt64(size / group + 2) * group) + _r.Next(-1, 2),
            < 800 => size + 1 + _r.Next(64 << 10),
            < 850 => size + _r.Next(8 << 20),
            < 858 => 4 * GiB + _r.NextInt64(GiB) / block * block + _r.Next(-1, 2),
            < 860 => (1L << 40) + _r.Next(1 << 20),
            < 863 => -1 - _r.Next(4096),
            < 866 => FsModel.MaxFileBytes - _r.Next(8192),
            _ => _r.NextInt64(size + 8193),
        } is var o && o < -10000 ? 0 : o;
    }

    private int Length()
    {
        int x = _r.Next(_fullness > 40 ? 880 : 1000);
        return x switch
        {
            < 30 => 0,
            < 300 => 1 + _r.Next(100),
            < 500 => Pick([4095, 4096, 4097, 8191, 8192, 8193, 12288]),
            < 750 => 1 + _r.Next(65536),
            < 880 => 1 + _r.Next(512 << 10),
            < 900 => (2 << 20) + _r.Next(-1, 2),
            < 910 => (3 << 20) + _r.Next(3 << 20),
            _ => 1 + _r.Next(16384),
        };
    }

    private long SeekOffset() => P(5) ? -1 : _r.Next(4) switch { 0 => 0, 1 => _r.Next(1 << 22), 2 => _r.NextInt64(8 * GiB), _ => 4096L * _r.Next(1024) };

    // ------------------------------------------------------------ ops

    private Op Create(NodeType type)
    {
        MNode dir = Pick(_m.Dirs);
        bool pathApiPossible = type is NodeType.File or NodeType.Dir or NodeType.Symlink;
        Api via = pathApiPossible && P(50) ? Api.Path : Api.Inode;
        string parent = DirPathOr(dir);
        byte[] name = NewName(dir, via == Api.Inode);
        byte[]? target = type == NodeType.Symlink ? SymlinkTarget(parent, name) : null;
        int variant = 0;
        if (type == NodeType.File && via == Api.Path && P(30))
        {
            variant = 1;
            name = Encoding.UTF8.GetBytes(Pick(Pool));
        }
        if (type is NodeType.Fifo or NodeType.Socket or NodeType.CharDev or NodeType.BlockDev && P(5))
            variant = 2;
        if (type == NodeType.File && via == Api.Inode && P(10))
            variant = 3;
        ulong rdev = type is NodeType.CharDev or NodeType.BlockDev ? (ulong)_r.Next(1, 1 << 20) : 0;
        return new CreateOp(parent, name, type, Perm(), Id(), Id(), rdev, target, via, variant);
    }

    private byte[] SymlinkTarget(string parent, byte[] name)
    {
        int x = _r.Next(100);
        string t = x switch
        {
            < 40 => AnyPath(),
            < 55 => Pick(Pool),
            < 62 => "../" + Pick(Pool),
            < 70 => "/nope/" + Pick(Pool),
            < 78 => FsModel.Join(parent, name), // itself: ELOOP when followed
            < 86 => string.Concat(Enumerable.Repeat("./", _r.Next(60, 2000))) + Pick(Pool),
            < 89 => new string('t', 4095),
            < 91 => new string('t', 4096),
            < 93 => "",
            < 96 => "/",
            _ => Encoding.UTF8.GetString("a\0"u8),
        };
        return Encoding.UTF8.GetBytes(t);
    }

    private Op Remove(bool directory)
    {
        var (parent, name) = Existing(n => n.IsDir == directory, 12);
        return new RemoveOp(parent, name, directory, P(50) ? Api.Path : Api.Inode);
    }

    private Op Rename()
    {
        var (fp, fn) = Existing(null, 8);
        string tp;
        byte[] tn;
        int x = _r.Next(100);
        if (x < 40)
            (tp, tn) = Existing(null, 0);
        else if (x < 75)
        {
            MNode d = Pick(_m.Dirs);
            (tp, tn) = (DirPathOr(d), NewName(d, false));
        }
        else if (x < 87)
            (tp, tn) = (fp, NewName(null, false));
        else
        {
            // Into the moved directory itself or below it (EINVAL), or onto an ancestor of the source.
            MNode d = Pick(_m.Dirs);
            string dp = _m.PathOf(d);
            if (d != _m.Root && P(50))
                (fp, fn) = (_m.PathOf(d.Parent!), d.OwnEntry!.Name);
            (tp, tn) = P(50) || d == _m.Root ? (dp, NewName(d, false)) : (_m.PathOf(d.Parent!), d.OwnEntry!.Name);
        }
        RenameFlags flags = _r.Next(100) switch
        {
            < 68 => RenameFlags.None,
            < 83 => RenameFlags.NoReplace,
            < 98 => RenameFlags.Exchange,
            _ => P(50) ? RenameFlags.NoReplace | RenameFlags.Exchange : (RenameFlags)4,
        };
        return new RenameOp(fp, fn, tp, tn, flags, P(50) ? Api.Path : Api.Inode);
    }

    private Op Link()
    {
        int handle = -1;
        string? existing = null;
        int x = _r.Next(100);
        if (x < 8 && Enumerable.Range(0, 4).FirstOrDefault(SlotOpen, -1) is var s and >= 0)
            handle = s;
        else if (x < 80)
            existing = _m.Files.Count > 0 ? _m.PathOf(Pick(Pick(_m.Files).Names)) : AnyPath();
        else
            existing = AnyPath();
        MNode d = Pick(_m.Dirs);
        var (np, nn) = P(85) ? (DirPathOr(d), NewName(d, false)) : Existing(null, 0);
        return new LinkOp(existing, handle, np, nn, handle >= 0 || P(50) ? Api.Inode : Api.Path);
    }

    private Op Stat()
    {
        int variant = _r.Next(3);
        string path = P(90) ? AnyPath() : DirPath() + "/" + Pick(Pool);
        return new StatOp(variant == 1 ? path : Slashy(path), P(70), variant);
    }

    private Op ReadLink()
    {
        string p = P(70) && _m.Others.Count > 0 && Pick(_m.Others) is { IsSymlink: true, Names.Count: > 0 } o ? _m.PathOf(Pick(o.Names)) : AnyPath();
        return new ReadLinkOp(p, P(50) ? Api.Path : Api.Inode);
    }

    private Op ListDir()
    {
        MNode d = Pick(_m.Dirs);
        string p = P(92) ? _m.PathOf(d) : AnyPath();
        Op? nested = null;
        if (P(30))
        {
            string dp = _m.PathOf(d);
            nested = P(50) || d.Order!.Count == 0
                ? new CreateOp(dp, Encoding.UTF8.GetBytes("n" + _r.Next(20)), NodeType.File, 0x1A4, 0, 0, 0, null, Api.Inode, 0)
                : new RemoveOp(dp, Pick(d.Order).Name, Pick(d.Order).Node.IsDir, Api.Inode);
        }
        return new ListDirOp(p, _r.Next(), nested, _r.Next(4));
    }

    private Op SetAttr()
    {
        Target t = AttrTarget();
        int x = _r.Next(100);
        uint? mode = null, uid = null, gid = null;
        long? size = null, at = null, mt = null;
        if (x < 25)
            mode = Perm() | (P(10) ? 0x8000u : 0);
        else if (x < 40)
            (uid, gid) = (P(70) ? Id() : null, P(70) ? Id() : null);
        else if (x < 80)
        {
            t = t.Handle >= 0 ? t : new Target(FilePath(), -1, t.Via);
            long sz = t.Path is { } p ? FileSize(p) : 0;
            size = _r.Next(12) switch
            {
                0 => 0,
                1 => sz,
                2 => Math.Max(0, sz - 1),
                3 => sz + 1,
                4 => sz / 2,
                5 => (sz / 4096 * 4096) + _r.Next(-1, 2),
                6 => sz + _r.Next(1 << 20),
                7 => 5 * GiB + _r.Next(1 << 20),
                8 => -1,
                9 => FsModel.MaxFileBytes + _r.Next(2),
                _ => _r.NextInt64(sz + 1),
            };
            if (size < -1)
                size = 0;
            if (P(10))
                mt = _r.NextInt64();
        }
        else
        {
            at = P(70) ? _r.NextInt64(-1L << 60, 1L << 62) : null;
            mt = P(70) ? _r.NextInt64(-1L << 60, 1L << 62) : null;
            if (at is null && mt is null)
                mt = 0;
            if (P(20))
                mode = Perm();
        }
        return new SetAttrOp(t, mode, uid, gid, size, at, mt);
    }

    private Op Xattr()
    {
        Target t = AttrTarget();
        byte[] name = _r.Next(100) switch
        {
            < 88 => Encoding.UTF8.GetBytes(Pick(XattrPool)),
            < 91 => Encoding.UTF8.GetBytes("user." + new string('u', 250)),
            < 93 => Encoding.UTF8.GetBytes("user." + new string('u', 251)),
            < 95 => Encoding.UTF8.GetBytes(Pick(["system.posix_acl_access", "foo.bar", "user", "trusted"])),
            < 97 => [],
            _ => "user.\0x"u8.ToArray(),
        };
        int x = _r.Next(100);
        XattrAction action = x < 30 ? XattrAction.Get : x < 70 ? XattrAction.Set : x < 85 ? XattrAction.List : XattrAction.Remove;
        int len = _r.Next(100) switch
        {
            < 10 => 0,
            < 55 => 1 + _r.Next(32),
            < 80 => 100 + _r.Next(900),
            < 97 => 1500 + _r.Next(2600),
            _ => 65536,
        };
        XattrFlags flags = _r.Next(100) switch { < 60 => XattrFlags.None, < 79 => XattrFlags.Create, < 98 => XattrFlags.Replace, _ => XattrFlags.Create | XattrFlags.Replace };
        return new XattrOp(t, action, name, len, _r.Next(), flags);
    }

    private Op Write()
    {
        Target t = DataTarget();
        long size = t.Path is { } p ? FileSize(p) : 0;
        return new WriteOp(t, Offset(size), Length(), DataSeed());
    }

    private Op Read()
    {
        Target t = DataTarget();
        long size = t.Path is { } p ? FileSize(p) : 0;
        long off = P(10) ? size + _r.Next(-10, 10000) : Offset(size);
        int len = P(5) ? 0 : Math.Min(Length() + 1, 4 << 20);
        return new ReadOp(t, Math.Max(off, P(2) ? -5 : 0), len, P(20));
    }

    private Op Fallocate()
    {
        Target t = DataTarget();
        long size = t.Path is { } p ? FileSize(p) : 0;
        FallocateMode mode = _r.Next(100) switch
        {
            < 20 => FallocateMode.Allocate,
            < 35 => FallocateMode.KeepSize,
            < 65 => FallocateMode.PunchHole | FallocateMode.KeepSize,
            < 80 => FallocateMode.ZeroRange,
            < 95 => FallocateMode.ZeroRange | FallocateMode.KeepSize,
            < 97 => FallocateMode.PunchHole,
            < 99 => FallocateMode.PunchHole | FallocateMode.ZeroRange | FallocateMode.KeepSize,
            _ => (FallocateMode)0x40,
        };
        long off = Offset(size);
        long len = _r.Next(20) switch { 0 => 0, 1 => -1, 2 => 3L << 20, 3 => FsModel.MaxFileBytes, _ => Length() + 1 };
        if (mode == FallocateMode.Allocate || mode == FallocateMode.KeepSize)
            len = Math.Min(len, 1 << 20); // preallocation costs real blocks
        return new FallocateOp(t, mode, off, len);
    }

    private Op Map()
    {
        Target t = DataTarget();
        long size = t.Path is { } p ? FileSize(p) : 0;
        bool write = P(75);
        long off = write ? Offset(size) : (size == 0 || P(10) ? _r.Next(8192) : _r.NextInt64(size));
        if (off > size + (8 << 20))
            off = size + _r.Next(1 << 20);
        int len = _r.Next(10) switch
        {
            0 => 0,
            1 => (2 << 20) + _r.Next(-1, 2),
            2 => Pick([4095, 4096, 4097]),
            _ => 1 + _r.Next(256 << 10),
        };
        if (!write && P(80) && size > off)
            len = (int)Math.Min(len, size - off);
        return new MapOp(t, off, len, write ? MapAccess.ReadWrite : MapAccess.Read, P(50) ? MapMode.Sync : MapMode.Async, write ? _r.Next(5) : 0, _r.Next());
    }

    private Op Fill()
    {
        _pressure = 60;
        string path = P(50) && _m.Files.Count > 0 ? _m.PathOf(Pick(Pick(_m.Files).Names)) : FsModel.Join(_m.PathOf(Pick(_m.Dirs)), Encoding.UTF8.GetBytes("fill" + _r.Next(3)));
        return new FillOp(path, Pick([64 << 10, 1 << 20, 4 << 20]), _r.Next() | 1);
    }

    private Op FillInodes()
    {
        _pressure = 60;
        return new FillInodesOp(_m.PathOf(Pick(_m.Dirs)), "i" + _prefix++ + "-", 3000);
    }

    private Op RemoveTree()
    {
        var (p, n) = Existing(null, 5);
        return new RemoveTreeOp(p, n);
    }

    /// <summary>While the volume is full: unlink, truncate, punch, remove trees.</summary>
    private Op Relief()
    {
        int x = _r.Next(100);
        if (x < 40)
            return RemoveTree();
        if (x < 65)
            return Remove(false);
        if (x < 85)
            return new SetAttrOp(new Target(FilePath(), -1, Api.Inode), null, null, null, _r.Next(3) == 0 ? 0 : _r.Next(1 << 20), null, null);
        return new FallocateOp(new Target(FilePath(), -1, Api.Inode), FallocateMode.PunchHole | FallocateMode.KeepSize, _r.Next(1 << 20), 1 + _r.Next(8 << 20));
    }

    private Op StaleIno()
    {
        ulong ino = _r.Next(4) switch
        {
            0 => 0,
            1 => 1UL << 40,
            _ => _m.FreedInos.Count > 0 ? Pick(_m.FreedInos) : 999_999,
        };
        return new StaleInoOp(ino, _r.Next(8));
    }
}
