using System.Text;
using DaxFs.Check;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Support;

namespace DaxFs.Tests.Model;

/// <summary>A divergence between the volume and the model (or a broken invariant); <see cref="Kind"/> classifies it
/// so that shrinking keeps the same failure.</summary>
internal sealed class ModelMismatchException(string kind, string message) : Exception(message)
{
    public string Kind { get; } = kind;
}

/// <summary>Counters of a run.</summary>
internal sealed class RunStats
{
    public long Ops, Skipped, Enospc, Remounts, FullChecks, BytesWritten, HugeWrites, Orphans, Listings;
    public long ExpectedErrors, Tolerated, InodeEnospc;
    public readonly Dictionary<Errno, long> Errnos = [];

    public void Saw(Errno e) => Errnos[e] = Errnos.GetValueOrDefault(e) + 1;
    public readonly Dictionary<string, long> ByKind = [];
    public readonly Dictionary<string, double> MsByKind = [];
    public readonly Dictionary<string, long> EnospcByKind = [];

    public override string ToString() =>
        $"ops={Ops} skipped={Skipped} expected-errors={ExpectedErrors} enospc={Enospc} remounts={Remounts} full-checks={FullChecks} " +
        $"tolerated={Tolerated} inode-enospc={InodeEnospc} written={BytesWritten >> 20}MiB huge-writes={HugeWrites} orphans-freed-at-mount={Orphans} listings={Listings}\n" +
        $"errnos seen: {string.Join(", ", Errnos.OrderBy(e => e.Key).Select(e => $"{e.Key}={e.Value}"))}";
}

/// <summary>Session -- one volume and its model: executes ops on both, compares results and errnos, checks the
/// objects each op touched, and on request the whole tree, a remount and fsck.</summary>
internal sealed class Session : IDisposable
{
    private const int Slots = 4;
    private readonly RunConfig _cfg;
    private readonly (DaxFile File, MNode Node)?[] _h = new (DaxFile, MNode)?[Slots];
    private readonly List<(MNode Node, long From, long Len)> _touched = [];
    private PmemDevice _dev;
    private DaxVolume? _vol;
    private bool _pmem;
    private bool _lastOk;

    public FsModel M { get; }
    public RunStats Stats { get; } = new();

    /// <summary>Replays that only need the end state: no per-op checks of touched objects.</summary>
    public bool Fast { get; set; }

    public Session(RunConfig cfg)
    {
        _cfg = cfg;
        _pmem = cfg.Pmem;
        _dev = PmemDevice.CreateInMemory(cfg.DeviceBytes, TestVolumes.Options(_pmem));
        _vol = DaxVolume.Format(_dev, new FormatOptions { InodeCount = cfg.InodeCount }, new MountOptions { Data = cfg.Data });
        M = new FsModel { Bug = cfg.Bug, StrictTrailingSlash = !TolerateKinds.Contains("trailing-slash") };
    }

    private DaxVolume V => _vol ?? throw new InvalidOperationException("no volume mounted");

    public bool SlotOpen(int slot) => slot >= 0 && slot < Slots && _h[slot] is not null;

    public void Dispose()
    {
        _vol?.Dispose();
        _vol = null;
        _dev.Dispose();
    }

    // ================================================================ plumbing

    private static ModelMismatchException Mismatch(string kind, string message) => new(kind, message);

    private DaxFsException? Try(Action a)
    {
        _retry = null;
        return TryRaw(a);
    }

    private static DaxFsException? TryRaw(Action a)
    {
        try
        {
            a();
            return null;
        }
        catch (DaxFsException e) when (e is not DaxFsCorruptedException)
        {
            return e;
        }
    }

    private Action? _retry;

    /// <summary>A mutating call: remembered so that an ENOSPC can be retried after a Sync (see <see cref="Judge"/>).</summary>
    private DaxFsException? TryCall(Action a)
    {
        _retry = a;
        return TryRaw(a);
    }

    /// <summary>Free blocks above which an ENOSPC of a call needing <paramref name="need"/> data blocks is spurious: the
    /// data, an eighth on top for its log records, and 64 blocks for log, symlink and attribute blocks.</summary>
    internal static long SpuriousEnospcLimit(long need) => need + need / 8 + 64;

    /// <summary>The 4 KiB blocks that bytes [offset, offset + length) touch.</summary>
    internal static long BlocksSpanned(long offset, long length) =>
        length <= 0 ? 0 : ((offset + length - 1) >> 12) - (offset >> 12) + 1;

    private static string Err(DaxFsException? e) => e is null ? "success" : $"{e.Errno} ({e.Message})";

    /// <summary>Compares a call's outcome with the plan; applies the plan on success. True when the call succeeded.
    /// <paramref name="need"/> (when known, &gt;= 0) bounds the blocks the call can need (data blocks it may allocate; log
    /// blocks come on top): an ENOSPC with far more free blocks than that -- and, for a call that takes an inode
    /// (<paramref name="takesInode"/>), free inodes left -- is spurious.</summary>
    private bool Judge(Plan plan, DaxFsException? err, bool mayEnospc, VolumeStats before, string what, bool deleting = false, long need = -1, bool takesInode = false)
    {
        if (err is null)
        {
            if (!plan.Ok)
                throw Mismatch("errno", $"{what}: the model expects {plan.Describe()}, the volume succeeded");
            plan.Apply?.Invoke();
            return true;
        }
        if (plan.Ok)
        {
            if (err.Errno == Errno.ENOSPC && mayEnospc)
            {
                Stats.Enospc++;
                Stats.Saw(Errno.ENOSPC);
                if (before.FreeInodes == 0)
                    Stats.InodeEnospc++;
                string k = what.Split(' ')[0];
                Stats.EnospcByKind[k] = Stats.EnospcByKind.GetValueOrDefault(k) + 1;
                if (need >= 0 && !(takesInode && before.FreeInodes == 0) && before.FreeBlocks > SpuriousEnospcLimit(need))
                    throw Mismatch("spurious-enospc", $"{what}: failed with {Err(err)} although {before.FreeBlocks} blocks{(takesInode ? $" and {before.FreeInodes} inodes" : "")} were free; the call can need at most {need} data blocks and a few log blocks");
                CheckUnchanged(before, what);
                if (!RetryAfterSync(what))
                    return false;
                plan.Apply?.Invoke();
                return true;
            }
            if (deleting && err.Errno == Errno.ENOSPC && Tolerated("enospc-on-delete"))
            {
                Stats.Enospc++;
                CheckUnchanged(before, what);
                return false;
            }
            if (deleting && err.Errno == Errno.ENOSPC)
                throw Mismatch("enospc-on-delete", $"{what}: removing something failed with ENOSPC ({Err(err)}): a full volume must still let files be deleted, truncated and attributes removed (unlink(2), rmdir(2), truncate(2) and removexattr(2) never fail with ENOSPC)");
            throw Mismatch("errno", $"{what}: the model expects success, the volume failed with {Err(err)}");
        }
        if (!plan.Errors.Contains(err.Errno))
            throw Mismatch("errno", $"{what}: the model expects {plan.Describe()}, the volume failed with {Err(err)}");
        Stats.ExpectedErrors++;
        Stats.Saw(err.Errno);
        if (err.Errno == Errno.ENOSPC)
            CheckUnchanged(before, what);
        return false;
    }

    /// <summary>An ENOSPC must be real: blocks freed by earlier calls but held back until the next commit (Page
    /// devices) must not make a call fail that a Sync would let through -- ext4 commits and retries
    /// (ext4_should_retry_alloc). So: Sync, retry once; success means the ENOSPC was spurious.</summary>
    private bool RetryAfterSync(string what)
    {
        Action? retry = _retry;
        _retry = null;
        if (_pmem || retry is null)
            return false;
        VolumeStats before = V.StatFs();
        V.Sync();
        VolumeStats synced = V.StatFs();
        if (synced.FreeBlocks == before.FreeBlocks)
            return false;
        DaxFsException? again = TryRaw(retry);
        if (again is null && Tolerated("enospc-pending-frees"))
            return true;
        if (again is null)
            throw Mismatch("enospc-pending-frees", $"{what}: failed with ENOSPC with {before.FreeBlocks} free blocks, then succeeded after a Sync released {synced.FreeBlocks - before.FreeBlocks} blocks freed earlier");
        if (again.Errno != Errno.ENOSPC)
            throw Mismatch("errno", $"{what}: retried after Sync, failed with {Err(again)}");
        CheckUnchanged(synced, what + " (retried after Sync)");
        return false;
    }

    /// <summary>DAXFS_MODEL_TOLERATE: comma-separated mismatch kinds accepted as ENOSPC while a known core bug is
    /// open (enospc-on-delete, enospc-pending-frees), so that a long run can look for other bugs. Empty by default.</summary>
    private static readonly HashSet<string> TolerateKinds =
        (Environment.GetEnvironmentVariable("DAXFS_MODEL_TOLERATE") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();

    private bool Tolerated(string kind)
    {
        if (!TolerateKinds.Contains(kind))
            return false;
        Stats.Tolerated++;
        return true;
    }

    /// <summary>A failed call changes nothing: the same free space and inodes, and the whole tree as the model has it.</summary>
    private void CheckUnchanged(VolumeStats before, string what)
    {
        VolumeStats after = V.StatFs();
        // Page devices: a failing call may Sync to release blocks freed earlier (never fewer free blocks).
        bool blocksOk = _pmem ? after.FreeBlocks == before.FreeBlocks : after.FreeBlocks >= before.FreeBlocks;
        if (!blocksOk || after.FreeInodes != before.FreeInodes)
            throw Mismatch("enospc-changed", $"{what}: failed with ENOSPC but free blocks went {before.FreeBlocks} -> {after.FreeBlocks}, free inodes {before.FreeInodes} -> {after.FreeInodes}");
        // The whole tree every time; file contents in full at the first ENOSPC of a burst and then every 16 ops
        // (a volume kept full would otherwise spend its time re-reading unchanged files).
        bool contents = Stats.Ops - _lastContentCheck >= 16;
        if (contents)
            _lastContentCheck = Stats.Ops;
        FullCheck($"after ENOSPC of {what}", contents);
    }

    private long _lastContentCheck = -1000;

    private void Touch(MNode? n, long from = 0, long len = 0)
    {
        if (n is not null)
            _touched.Add((n, from, len));
    }

    /// <summary>Resolves a path on both sides: true with the node when both resolve (to the same inode); false when
    /// both fail with the same errno.</summary>
    private bool ResolveBoth(string path, bool follow, out MNode node, string what)
    {
        Resolved r = M.Resolve(path, follow);
        ulong ino = 0;
        DaxFsException? err = Try(() => ino = V.Resolve(path, follow));
        if (r.Ok)
        {
            if (err is not null)
                throw Mismatch("resolve", $"{what}: resolving {Fmt.Path(path)}: the model finds inode {r.Node!.Ino}, the volume fails with {Err(err)}");
            if (ino != r.Node!.Ino)
                throw Mismatch(TrailingKind(path), $"{what}: {Fmt.Path(path)} resolves to inode {ino}, the model says {r.Node.Ino}");
            node = r.Node;
            return true;
        }
        if (err is null)
            throw Mismatch(TrailingKind(path), $"{what}: resolving {Fmt.Path(path)}: the model expects {r.Error}, the volume finds inode {ino}");
        if (err.Errno != r.Error)
            throw Mismatch("resolve", $"{what}: resolving {Fmt.Path(path)}: the model expects {r.Error}, the volume fails with {Err(err)}");
        node = null!;
        Stats.ExpectedErrors++;
        Stats.Saw(err.Errno);
        return false;
    }

    private static string TrailingKind(string path) =>
        path.Length > 1 && (path.EndsWith('/') || path.EndsWith("/.", StringComparison.Ordinal)) ? "trailing-slash" : "resolve";

    /// <summary>The bytes of a write: a fast deterministic stream (SplitMix64) from the seed; seed 0 gives zeros.</summary>
    internal static byte[] Bytes(int seed, int length)
    {
        var b = new byte[length];
        if (seed == 0)
            return b;
        ulong x = (ulong)seed * 0x9E3779B97F4A7C15UL;
        Span<ulong> words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(b.AsSpan());
        for (int i = 0; i < words.Length; i++)
        {
            ulong z = x += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            words[i] = z ^ (z >> 31);
        }
        for (int i = words.Length * 8; i < length; i++)
            b[i] = (byte)(seed + i);
        return b;
    }

    // ================================================================ execution

    /// <summary>Runs one op and checks what it touched.</summary>
    public void Execute(Op op)
    {
        _touched.Clear();
        Stats.Ops++;
        string kind = op.GetType().Name;
        Stats.ByKind[kind] = Stats.ByKind.GetValueOrDefault(kind) + 1;
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        Run(op);
        if (Fast)
            _touched.Clear();
        else
            CheckTouched();
        Stats.MsByKind[kind] = Stats.MsByKind.GetValueOrDefault(kind) + System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    private void Run(Op op)
    {
        _lastOk = false;
        string what = op.ToString()!;
        switch (op)
        {
            case CreateOp c: DoCreate(c, what); break;
            case RemoveOp r: DoRemove(r, what); break;
            case RenameOp r: DoRename(r, what); break;
            case LinkOp l: DoLink(l, what); break;
            case ReadLinkOp r: DoReadLink(r, what); break;
            case StatOp s: DoStat(s, what); break;
            case ListDirOp l: DoListDir(l, what); break;
            case SetAttrOp s: DoSetAttr(s, what); break;
            case XattrOp x: DoXattr(x, what); break;
            case StatFsOp: CheckStatFs(what); break;
            case WriteOp w: DoWrite(w.T, w.Offset, Bytes(w.DataSeed, w.Length), false, what); break;
            case AppendOp a: DoWrite(a.T, 0, Bytes(a.DataSeed, a.Length), true, what); break;
            case ReadOp r: DoRead(r, what); break;
            case FallocateOp f: DoFallocate(f, what); break;
            case FsyncOp f: DoFsync(f, what); break;
            case SeekOp s: DoSeek(s, what); break;
            case StreamOp s: DoStream(s, what); break;
            case MapOp m: DoMap(m, what); break;
            case ScatterOp sc: DoScatter(sc, what); break;
            case OpenOp o: DoOpen(o, what); break;
            case CloseOp c: DoClose(c.Slot); break;
            case RemountOp r: Remount(r.SwitchMode, r.LeaveOpen, r.SyncMount); break;
            case CrashImageOp c: CrashImageCheck(c.ToString()!, c.SyncFirst); break;
            case FillOp f: DoFill(f, what); break;
            case FillInodesOp f: DoFillInodes(f, what); break;
            case RemoveTreeOp t: DoRemoveTree(t, what); break;
            case StaleInoOp s: DoStale(s, what); break;
            default: throw new InvalidOperationException($"unknown op {op}");
        }
    }

    private void Skip() => Stats.Skipped++;

    private void RegisterNew(MNode n, ulong ino, string what)
    {
        if (M.Live.TryGetValue(ino, out MNode? other))
            throw Mismatch("ino", $"{what}: the volume gave the new object inode {ino}, which is live ({other})");
        M.Register(n, ino);
    }

    // ---------------------------------------------------------------- namespace

    private void DoCreate(CreateOp c, string what)
    {
        MNode? parent;
        byte[] name;
        string path = FsModel.Join(c.Parent, c.Name);
        Plan plan;
        uint uid = c.Via == Api.Path ? 0 : c.Uid, gid = c.Via == Api.Path ? 0 : c.Gid;
        if (c.Via == Api.Inode)
        {
            if (!ResolveBoth(c.Parent, true, out parent, what))
                return;
            name = c.Name;
            plan = M.Create(parent, name, c.Type, c.Perm, uid, gid, c.Rdev, c.Target, mknodBadType: c.Variant == 2);
        }
        else
        {
            (Resolved r, name) = M.ResolveParent(path);
            parent = r.Node;
            plan = r.Ok ? M.Create(parent!, name, c.Type, c.Perm, uid, gid, c.Rdev, c.Target) : Plan.Fail(r.Error);
        }
        MNode? opened = null;
        if (c.Via == Api.Path && c.Variant == 1 && plan.Errors.SetEquals([Errno.EEXIST]))
        {
            // CreateFile(path, exclusive: false) opens the existing file (following a symbolic link).
            Resolved o = M.Resolve(path, true);
            plan = o.Ok ? new Plan() : Plan.Fail(o.Error);
            if (o.Ok)
                FsModel.RegularErrors(o.Node!, plan.Errors);
            opened = o.Node;
        }
        VolumeStats before = V.StatFs();
        ulong ino = 0;
        DaxFsException? err = TryCall(() =>
        {
            if (c.Via == Api.Path)
            {
                switch (c.Type)
                {
                    case NodeType.File:
                        using (DaxFile f = V.CreateFile(path, c.Perm, exclusive: c.Variant != 1))
                            ino = f.Ino;
                        break;
                    case NodeType.Dir:
                        ino = V.CreateDirectory(path, c.Perm).Ino;
                        break;
                    default:
                        ino = V.Symlink(path, Encoding.UTF8.GetString(c.Target!)).Ino;
                        break;
                }
                return;
            }
            ulong p = parent!.Ino;
            ino = c.Type switch
            {
                NodeType.File when c.Variant == 3 => V.MakeNode(p, name, c.Perm & FileModes.PermissionMask, 0, uid, gid).Ino,
                NodeType.File => V.CreateFile(p, name, c.Perm, uid, gid).Ino,
                NodeType.Dir => V.MakeDirectory(p, name, c.Perm, uid, gid).Ino,
                NodeType.Symlink => V.CreateSymlink(p, name, c.Target!, uid, gid).Ino,
                _ => V.MakeNode(p, name, (c.Variant == 2 ? FileModes.Directory : MNode.TypeBits(c.Type)) | (c.Perm & FileModes.PermissionMask), c.Rdev, uid, gid).Ino,
            };
        });
        if (!Judge(plan, err, true, before, what, need: 1, takesInode: true))
        {
            Touch(parent);
            return;
        }
        _lastOk = true;
        if (opened is not null)
        {
            if (ino != opened.Ino)
                throw Mismatch("ino", $"{what}: opened inode {ino}, the model's file is {opened.Ino}");
            Touch(opened);
            return;
        }
        RegisterNew(plan.Result!, ino, what);
        Touch(parent);
        Touch(plan.Result);
    }

    private void DoRemove(RemoveOp r, string what)
    {
        MNode? parent;
        Plan plan;
        if (r.Via == Api.Inode)
        {
            if (!ResolveBoth(r.Parent, true, out parent, what))
                return;
            plan = M.Remove(parent, r.Name, r.Directory);
        }
        else
        {
            (Resolved p, byte[] name) = M.ResolveParent(FsModel.Join(r.Parent, r.Name));
            parent = p.Node;
            plan = p.Ok ? M.Remove(parent!, name, r.Directory) : Plan.Fail(p.Error);
        }
        MNode? child = parent is { IsDir: true } ? FsModel.Entry(parent, r.Name)?.Node : null;
        VolumeStats before = V.StatFs();
        DaxFsException? err = TryCall(() =>
        {
            if (r.Via == Api.Inode)
            {
                if (r.Directory)
                    V.RemoveDirectory(parent!.Ino, r.Name);
                else
                    V.Unlink(parent!.Ino, r.Name);
            }
            else if (r.Directory)
                V.DeleteDirectory(FsModel.Join(r.Parent, r.Name));
            else
                V.Delete(FsModel.Join(r.Parent, r.Name));
        });
        _lastOk = Judge(plan, err, false, before, what, deleting: true);
        Touch(parent);
        Touch(child);
    }

    private void DoRename(RenameOp r, string what)
    {
        MNode? sp, dp;
        Plan plan;
        byte[] fn = r.FromName, tn = r.ToName;
        if (r.Via == Api.Inode)
        {
            if (!ResolveBoth(r.FromParent, true, out sp, what) || !ResolveBoth(r.ToParent, true, out dp, what))
                return;
            plan = M.Rename(sp, fn, dp, tn, r.Flags);
        }
        else
        {
            (Resolved a, fn) = M.ResolveParent(FsModel.Join(r.FromParent, r.FromName));
            (Resolved b, tn) = M.ResolveParent(FsModel.Join(r.ToParent, r.ToName));
            sp = a.Node;
            dp = b.Node;
            plan = !a.Ok ? Plan.Fail(a.Error) : !b.Ok ? Plan.Fail(b.Error) : M.Rename(sp!, fn, dp!, tn, r.Flags);
        }
        MNode? src = sp is { IsDir: true } ? FsModel.Entry(sp, fn)?.Node : null;
        MNode? dst = dp is { IsDir: true } ? FsModel.Entry(dp, tn)?.Node : null;
        VolumeStats before = V.StatFs();
        DaxFsException? err = TryCall(() =>
        {
            if (r.Via == Api.Inode)
                V.Rename(sp!.Ino, r.FromName, dp!.Ino, r.ToName, r.Flags);
            else
                V.Rename(FsModel.Join(r.FromParent, r.FromName), FsModel.Join(r.ToParent, r.ToName), r.Flags);
        });
        _lastOk = Judge(plan, err, true, before, what, need: 0);
        Touch(sp);
        Touch(dp);
        Touch(src);
        Touch(dst);
        if (src?.Parent is { } srcParent && src.IsDir)
            Touch(srcParent);
    }

    private void DoLink(LinkOp l, string what)
    {
        MNode? target = null, dir = null;
        Plan plan;
        byte[] name = l.NewName;
        ulong targetIno = 0;
        if (l.Handle >= 0)
        {
            if (_h[l.Handle] is not { } h)
            {
                Skip();
                return;
            }
            target = h.Node;
            targetIno = h.File.Ino;
        }
        if (l.Via == Api.Inode)
        {
            if (target is null)
            {
                if (!ResolveBoth(l.Existing!, false, out target, what))
                    return;
                targetIno = target.Ino;
            }
            if (!ResolveBoth(l.NewParent, true, out dir, what))
                return;
            plan = M.Link(target, dir, name);
        }
        else
        {
            Resolved a = M.Resolve(l.Existing!, false);
            (Resolved b, name) = M.ResolveParent(FsModel.Join(l.NewParent, l.NewName));
            target = a.Node;
            dir = b.Node;
            plan = !a.Ok ? Plan.Fail(a.Error) : !b.Ok ? Plan.Fail(b.Error) : M.Link(target!, dir!, name);
        }
        VolumeStats before = V.StatFs();
        ulong got = 0;
        DaxFsException? err = TryCall(() => got = l.Via == Api.Inode
            ? V.Link(targetIno, dir!.Ino, l.NewName).Ino
            : V.Link(l.Existing!, FsModel.Join(l.NewParent, l.NewName)).Ino);
        _lastOk = Judge(plan, err, true, before, what, need: 0);
        if (_lastOk && got != target!.Ino)
            throw Mismatch("ino", $"{what}: link returned inode {got}, the model's target is {target.Ino}");
        Touch(target);
        Touch(dir);
    }

    private void DoReadLink(ReadLinkOp r, string what)
    {
        MNode node;
        if (r.Via == Api.Inode)
        {
            if (!ResolveBoth(r.Path, false, out node, what))
                return;
        }
        else
        {
            Resolved res = M.Resolve(r.Path, false);
            string got = "";
            DaxFsException? e = Try(() => got = V.ReadLink(r.Path));
            Plan p = !res.Ok ? Plan.Fail(res.Error) : res.Node!.IsSymlink ? new Plan() : Plan.Fail(Errno.EINVAL);
            if (Judge(p, e, false, default, what) && got != Encoding.UTF8.GetString(res.Node!.Target!))
                throw Mismatch("readlink", $"{what}: the volume says {Fmt.Path(got)}, the model {Fmt.Name(res.Node.Target!)}");
            return;
        }
        byte[] bytes = [];
        DaxFsException? err = Try(() => bytes = V.ReadLink(node.Ino));
        Plan plan = node.IsSymlink ? new Plan() : Plan.Fail(Errno.EINVAL);
        if (Judge(plan, err, false, default, what) && !bytes.AsSpan().SequenceEqual(node.Target))
            throw Mismatch("readlink", $"{what}: the volume says {Fmt.Name(bytes)}, the model {Fmt.Name(node.Target!)}");
    }

    private void DoStat(StatOp s, string what)
    {
        switch (s.Variant)
        {
            case 0:
            {
                Resolved r = M.Resolve(s.Path, s.Follow);
                InodeAttributes a = default;
                DaxFsException? err = Try(() => a = V.Stat(s.Path, s.Follow));
                if (Judge(r.Ok ? new Plan() : Plan.Fail(r.Error), err, false, default, what))
                    CompareAttrs(r.Node!, a, what);
                break;
            }
            case 1:
            {
                (Resolved p, byte[] name) = M.ResolveParent(s.Path);
                (ulong Parent, byte[] Name) vp = default;
                DaxFsException? perr = Try(() => vp = V.ResolveParent(s.Path));
                if (!Judge(p.Ok ? new Plan() : Plan.Fail(p.Error), perr, false, default, what + " (parent)"))
                    return;
                if (vp.Parent != p.Node!.Ino || vp.Name is null || !vp.Name.AsSpan().SequenceEqual(name))
                    throw Mismatch("resolve", $"{what}: the volume's parent is inode {vp.Parent} name {Fmt.Name(vp.Name ?? [])}, the model's {p.Node.Ino} {Fmt.Name(name)}");
                var plan = new Plan();
                MNode? found = null;
                if (name.Length > FsModel.MaxName)
                    plan.Errors.Add(Errno.ENAMETOOLONG);
                if (!p.Node.IsDir)
                    plan.Errors.Add(Errno.ENOTDIR);
                else if (name.Length <= FsModel.MaxName && (found = FsModel.LookupNode(p.Node, name)) is null)
                    plan.Errors.Add(Errno.ENOENT);
                InodeAttributes a = default;
                DaxFsException? err = Try(() => a = V.Lookup(p.Node.Ino, name));
                if (Judge(plan, err, false, default, what))
                    CompareAttrs(found!, a, what);
                break;
            }
            default:
            {
                Resolved r = M.Resolve(s.Path, true);
                bool got = false;
                DaxFsException? err = Try(() => got = V.Exists(s.Path));
                bool expectThrow = !r.Ok && r.Error is not (Errno.ENOENT or Errno.ENOTDIR);
                Plan plan = expectThrow ? Plan.Fail(r.Error) : new Plan();
                if (Judge(plan, err, false, default, what) && got != r.Ok)
                    throw Mismatch("exists", $"{what}: the volume says {got}, the model {r.Ok}");
                break;
            }
        }
    }

    private void DoListDir(ListDirOp l, string what)
    {
        if (!ResolveBoth(l.Path, true, out MNode dir, what))
        {
            if (l.Nested is not null)
                Run(l.Nested);
            return;
        }
        if (!dir.IsDir)
        {
            DaxFsException? e = Try(() => V.ReadDirectory(dir.Ino, 0, 10));
            Judge(Plan.Fail(Errno.ENOTDIR), e, false, default, what);
            if (l.Nested is not null)
                Run(l.Nested);
            return;
        }
        Stats.Listings++;
        var start = dir.Order!.ToList();
        var startNodes = start.ToDictionary(e => e, e => e.Node);
        var got = new List<DirEntry>();
        var rnd = new Random(l.ChunkSeed);
        ulong cookie = 0;
        int chunk = 0;
        bool nestedDone = l.Nested is null;
        while (true)
        {
            int max = rnd.Next(4) == 0 ? 1000 : rnd.Next(1, 6);
            IReadOnlyList<DirEntry> part = V.ReadDirectory(dir.Ino, cookie, max);
            if (part.Count > max)
                throw Mismatch("listing", $"{what}: asked for {max} entries, got {part.Count}");
            if (part.Count == 0)
                break;
            got.AddRange(part);
            cookie = part[^1].Cookie;
            chunk++;
            if (!nestedDone && chunk > l.NestedAfter)
            {
                Run(l.Nested!);
                nestedDone = true;
                if (dir.Freed)
                {
                    // The nested call removed the listed directory itself and nothing holds it: like getdents on a
                    // dead directory, the next chunk fails with ENOENT (the listing so far is all there is).
                    DaxFsException? gone = Try(() => V.ReadDirectory(dir.Ino, cookie, 1));
                    Judge(Plan.Fail(Errno.ENOENT), gone, false, default, what);
                    return;
                }
            }
            if (got.Count > 1_000_000)
                throw Mismatch("listing", $"{what}: the listing does not end");
        }
        if (!nestedDone)
            Run(l.Nested!);
        if (dir.Nlink == 0)
            return; // removed during the listing (held open): it was empty, and its '..' is gone from the model
        if (got.Count < 2 || got[0].NameString != "." || got[0].Cookie != 1 || got[0].Ino != dir.Ino
            || got[1].NameString != ".." || got[1].Cookie != 2 || got[1].Ino != dir.Parent!.Ino)
            throw Mismatch("listing", $"{what}: the listing does not start with '.' (cookie 1, inode {dir.Ino}) and '..' (cookie 2, inode {dir.Parent!.Ino}): {string.Join(", ", got.Take(2).Select(e => $"{e.NameString}/{e.Cookie}/{e.Ino}"))}");
        var seen = new HashSet<string>();
        var cookies = new HashSet<ulong>();
        var startByKey = start.ToDictionary(e => e.Key);
        foreach (DirEntry e in got.Skip(2))
        {
            string key = FsModel.Key(e.Name);
            if (!seen.Add(key))
                throw Mismatch("listing", $"{what}: {Fmt.Name(e.Name)} listed twice");
            if (!cookies.Add(e.Cookie) || e.Cookie <= 2)
                throw Mismatch("listing", $"{what}: cookie {e.Cookie} of {Fmt.Name(e.Name)} is a duplicate or reserved");
            MEntry? me = startByKey.GetValueOrDefault(key);
            MNode? node = me is not null ? startNodes[me] : null;
            MEntry? now = FsModel.Entry(dir, e.Name);
            if (me is null || (now is not null && now != me && e.Ino == now.Node.Ino))
            {
                me = now;
                node = now?.Node;
            }
            if (me is null || node is null)
                throw Mismatch("listing", $"{what}: {Fmt.Name(e.Name)} (inode {e.Ino}) was never in the directory");
            if (e.Ino != node.Ino || e.Type != (byte)(node.Mode >> 12))
                throw Mismatch("listing", $"{what}: {Fmt.Name(e.Name)} is inode {e.Ino} type {e.Type}, the model has {node.Ino} type {node.Mode >> 12}");
            if (me.Cookie is { } c && c != e.Cookie)
                throw Mismatch("cookie", $"{what}: the cookie of {Fmt.Name(e.Name)} changed from {c} to {e.Cookie}");
            me.Cookie = e.Cookie;
        }
        foreach (MEntry e in start)
            if (FsModel.Entry(dir, e.Name) == e && !seen.Contains(e.Key))
                throw Mismatch("listing", $"{what}: {Fmt.Name(e.Name)} (there all along) is missing from the chunked listing");
        Touch(dir);
    }

    // ---------------------------------------------------------------- attributes and xattrs

    /// <summary>Resolves an attribute/data target: a handle, or a path through the inode API (Resolve) or the path
    /// API (Stat). False (with the errno checked) when it does not resolve.</summary>
    private bool TargetNode(Target t, out MNode node, out ulong ino, string what)
    {
        if (t.Handle >= 0)
        {
            if (_h[t.Handle] is not { } h)
            {
                Skip();
                node = null!;
                ino = 0;
                return false;
            }
            (node, ino) = (h.Node, h.File.Ino);
            return true;
        }
        if (t.Via == Api.Inode)
        {
            bool ok = ResolveBoth(t.Path!, t.Follow, out node, what);
            ino = ok ? node.Ino : 0;
            return ok;
        }
        Resolved r = M.Resolve(t.Path!, t.Follow);
        InodeAttributes a = default;
        DaxFsException? err = Try(() => a = V.Stat(t.Path!, t.Follow));
        if (!Judge(r.Ok ? new Plan() : Plan.Fail(r.Error), err, false, default, what))
        {
            node = null!;
            ino = 0;
            return false;
        }
        CompareAttrs(r.Node!, a, what);
        (node, ino) = (r.Node!, a.Ino);
        return true;
    }

    private void DoSetAttr(SetAttrOp s, string what)
    {
        bool sizeOnly = s.Size is not null && s is { Mode: null, Uid: null, Gid: null, Atime: null, Mtime: null };
        if (sizeOnly && s.T.Handle < 0 && s.T.Via == Api.Path)
        {
            // ftruncate through a DaxFile.
            DoWithFile(s.T.Path!, what, (f, node) =>
            {
                Plan plan = FsModel.SetAttr(node, null, null, null, s.Size, null, null);
                long old = node.Size;
                VolumeStats before = V.StatFs();
                DaxFsException? err = TryCall(() => f.SetLength(s.Size!.Value));
                bool shrinking = s.Size < old;
                _lastOk = Judge(plan, err, !shrinking, before, what, deleting: shrinking, need: 1);
                TouchSizeChange(node, old);
            });
            return;
        }
        if (!TargetNode(s.T, out MNode n, out ulong ino, what))
            return;
        Plan p = FsModel.SetAttr(n, s.Mode, s.Uid, s.Gid, s.Size, s.Atime, s.Mtime);
        long oldSize = n.Size;
        VolumeStats b = V.StatFs();
        InodeAttributes a = default;
        DaxFsException? e = TryCall(() =>
        {
            if (sizeOnly && s.T.Handle >= 0)
                _h[s.T.Handle]!.Value.File.SetLength(s.Size!.Value);
            else
                a = V.SetAttributes(ino, new SetAttributes { Mode = s.Mode, Uid = s.Uid, Gid = s.Gid, Size = s.Size, AtimeNs = s.Atime, MtimeNs = s.Mtime });
        });
        bool shrink = s.Size < oldSize;
        _lastOk = Judge(p, e, s.Size is not null && !shrink, b, what, deleting: shrink, need: 1);
        if (_lastOk && !(sizeOnly && s.T.Handle >= 0))
            CompareAttrs(n, a, what + " (returned attributes)");
        TouchSizeChange(n, oldSize);
    }

    private void TouchSizeChange(MNode n, long oldSize)
    {
        long lo = Math.Min(oldSize, n.Size);
        Touch(n, Math.Max(0, lo - 8192), Math.Abs(n.Size - oldSize) + 16384);
    }

    private void DoXattr(XattrOp x, string what)
    {
        if (!TargetNode(x.T, out MNode n, out ulong ino, what))
            return;
        switch (x.Action)
        {
            case XattrAction.Get:
            {
                var (plan, value) = FsModel.GetXattr(n, x.Name);
                byte[] got = [];
                DaxFsException? err = Try(() => got = V.GetXattr(ino, x.Name));
                if (Judge(plan, err, false, default, what) && !got.AsSpan().SequenceEqual(value))
                    throw Mismatch("xattr", $"{what}: value of {got.Length} bytes differs from the model's {value!.Length}");
                break;
            }
            case XattrAction.Set:
            {
                byte[] value = Bytes(x.ValueSeed, x.ValueLen);
                Plan plan = FsModel.SetXattr(n, x.Name, value, x.Flags);
                VolumeStats before = V.StatFs();
                DaxFsException? err = TryCall(() => V.SetXattr(ino, x.Name, value, x.Flags));
                _lastOk = Judge(plan, err, true, before, what, need: 1);
                break;
            }
            case XattrAction.List:
            {
                IReadOnlyList<byte[]> names = [];
                DaxFsException? err = Try(() => names = V.ListXattrs(ino));
                if (Judge(new Plan(), err, false, default, what))
                    CompareXattrNames(n, names, what);
                break;
            }
            default:
            {
                Plan plan = FsModel.RemoveXattr(n, x.Name);
                VolumeStats before = V.StatFs();
                DaxFsException? err = TryCall(() => V.RemoveXattr(ino, x.Name));
                _lastOk = Judge(plan, err, false, before, what, deleting: true);
                break;
            }
        }
        Touch(n);
    }

    // ---------------------------------------------------------------- data

    /// <summary>Opens <paramref name="path"/> as a DaxFile (checking the open's errno against the model) and runs
    /// <paramref name="body"/> on it.</summary>
    private void DoWithFile(string path, string what, Action<DaxFile, MNode> body)
    {
        Resolved r = M.Resolve(path, true);
        Plan open = r.Ok ? new Plan() : Plan.Fail(r.Error);
        if (r.Ok)
            FsModel.RegularErrors(r.Node!, open.Errors);
        DaxFile? f = null;
        DaxFsException? err = Try(() => f = V.OpenFile(path));
        if (!Judge(open, err, false, default, what + " (open)"))
            return;
        using (f)
        {
            if (f!.Ino != r.Node!.Ino)
                throw Mismatch("ino", $"{what}: opened inode {f.Ino}, the model's file is {r.Node.Ino}");
            body(f, r.Node);
        }
    }

    /// <summary>Runs a data call on a target: (handle file or null, ino, node).</summary>
    private void WithData(Target t, string what, Action<DaxFile?, ulong, MNode> body)
    {
        if (t.Handle >= 0)
        {
            if (_h[t.Handle] is not { } h)
            {
                Skip();
                return;
            }
            body(h.File, h.File.Ino, h.Node);
            return;
        }
        if (t.Via == Api.Path)
        {
            DoWithFile(t.Path!, what, (f, n) => body(f, f.Ino, n));
            return;
        }
        if (ResolveBoth(t.Path!, true, out MNode node, what))
            body(null, node.Ino, node);
    }

    /// <summary>The injected volume fault: the byte of the file at <paramref name="offset"/> changes on the media
    /// behind the volume's back (as a lost or torn store would leave it).</summary>
    private void FlipStoredByte(ulong ino, long offset)
    {
        V.ReadExtents(ino, offset, 1, (dev, len) =>
        {
            if (dev >= 0)
                _dev.Write(dev, [(byte)(_dev.GetSpan(dev, 1)[0] ^ 0x5A)]);
        });
    }

    private void DoWrite(Target t, long offset, byte[] data, bool append, string what)
    {
        WithData(t, what, (f, ino, n) =>
        {
            long off = append ? n.Size : offset;
            Plan plan = M.Write(n, off, data);
            VolumeStats before = V.StatFs();
            int got = -1;
            DaxFsException? err = TryCall(() =>
            {
                if (_cfg.Fault == VolumeFault.EnospcOnWriteAt4095 && (off & 4095) == 4095 && data.Length > 1)
                    throw new DaxFsException(Errno.ENOSPC, "injected fault");
                if (append && f is not null)
                {
                    f.Append(data);
                    got = data.Length;
                }
                else if (f is not null)
                {
                    f.Write(off, data);
                    got = data.Length;
                }
                else
                {
                    got = V.Write(ino, off, data);
                }
            });
            _lastOk = Judge(plan, err, true, before, what, need: BlocksSpanned(off, data.Length));
            if (_lastOk)
            {
                if (got != data.Length)
                    throw Mismatch("write", $"{what}: wrote {got} bytes of {data.Length}");
                Stats.BytesWritten += data.Length;
                if (off + data.Length > 4L << 30)
                    Stats.HugeWrites++;
                if (_cfg.Fault == VolumeFault.FlipStoredLastByteOfWriteAt4095 && (off & 4095) == 4095 && data.Length > 1)
                    FlipStoredByte(ino, off + data.Length - 1);
            }
            Touch(n, off, data.Length);
        });
    }

    private void DoRead(ReadOp r, string what)
    {
        if (r.Extents && r.T.Handle < 0 && r.T.Via == Api.Path)
            r = r with { T = r.T with { Via = Api.Inode } };
        WithData(r.T, what, (f, ino, n) =>
        {
            Plan plan = FsModel.Read(n, r.Offset);
            var buf = new byte[r.Length];
            int got = -1;
            DaxFsException? err = Try(() =>
            {
                if (r.Extents)
                {
                    int pos = 0;
                    got = (int)V.ReadExtents(ino, r.Offset, r.Length, (dev, len) =>
                    {
                        if (dev >= 0)
                            _dev.GetSpan(dev, (int)len).CopyTo(buf.AsSpan(pos));
                        pos += (int)len;
                    });
                    if (pos != got)
                        throw Mismatch("read", $"{what}: ReadExtents visited {pos} bytes but returned {got}");
                }
                else
                {
                    got = f is not null ? f.Read(r.Offset, buf) : V.Read(ino, r.Offset, buf);
                }
            });
            if (!Judge(plan, err, false, default, what))
                return;
            long expect = Math.Clamp(n.Size - r.Offset, 0, r.Length);
            if (got != expect)
                throw Mismatch("read", $"{what}: read {got} bytes, the model expects {expect} (size {n.Size})");
            var want = new byte[got];
            n.Data!.Read(r.Offset, want);
            CompareBytes(buf.AsSpan(0, got), want, r.Offset, what);
        });
    }

    private static void CompareBytes(ReadOnlySpan<byte> got, ReadOnlySpan<byte> want, long offset, string what)
    {
        int i = got.CommonPrefixLength(want);
        if (i < got.Length || got.Length != want.Length)
            throw Mismatch("content", $"{what}: data differs at file offset {offset + i}: volume {(i < got.Length ? got[i] : -1)}, model {(i < want.Length ? want[i] : -1)}");
    }

    private void DoFallocate(FallocateOp fa, string what)
    {
        if (fa.T.Handle < 0 && fa.T.Via == Api.Inode)
        {
            if (!ResolveBoth(fa.T.Path!, true, out MNode node, what))
                return;
            Fallocate(null, node.Ino, node);
            return;
        }
        WithData(fa.T, what, Fallocate);

        void Fallocate(DaxFile? f, ulong ino, MNode n)
        {
            Plan plan = FsModel.Fallocate(n, fa.Mode, fa.Offset, fa.Length);
            VolumeStats before = V.StatFs();
            DaxFsException? err = TryCall(() =>
            {
                if (f is not null)
                    f.Fallocate(fa.Mode, fa.Offset, fa.Length);
                else
                    V.Fallocate(ino, fa.Mode, fa.Offset, fa.Length);
            });
            _lastOk = Judge(plan, err, true, before, what, need: BlocksSpanned(fa.Offset, Math.Clamp(fa.Length, 0, 1L << 40)) + 2);
            long len = Math.Clamp(fa.Length, 0, 1L << 40);
            Touch(n, Math.Max(0, fa.Offset - 4096), Math.Min(len, 256 << 10) + 8192);
            if (len > 256 << 10)
                Touch(n, Math.Max(0, fa.Offset + len - (256 << 10)), (256 << 10) + 4096);
        }
    }

    private void DoFsync(FsyncOp fs, string what)
    {
        if (fs.Checkpoint)
        {
            V.Checkpoint();
            return;
        }
        if (fs.Whole)
        {
            V.Sync();
            return;
        }
        if (fs.T.Handle < 0 && fs.T.Via == Api.Inode)
        {
            if (ResolveBoth(fs.T.Path!, true, out MNode node, what))
                V.Fsync(node.Ino, dataOnly: node.Ino % 2 == 0);
            return;
        }
        WithData(fs.T, what, (f, ino, n) =>
        {
            if (f is not null)
                f.Flush();
            else
                V.Fsync(ino);
        });
    }

    private void DoSeek(SeekOp s, string what)
    {
        WithData(s.T, what, (f, ino, n) =>
        {
            var plan = new Plan();
            FsModel.RegularErrors(n, plan.Errors);
            if (plan.Ok && (s.Offset < 0 || s.Offset >= n.Size))
                plan.Errors.Add(Errno.ENXIO);
            long got = -1;
            DaxFsException? err = Try(() => got = V.Seek(ino, s.Offset, s.Data));
            bool noDataLeft = plan.Ok && n.Data!.FirstNonZero(s.Offset, n.Size) < 0;
            if (plan.Ok && s.Data && err?.Errno == Errno.ENXIO && noDataLeft)
                return; // no data after the offset: ENXIO is right
            if (!Judge(plan, err, false, default, what))
                return;
            long size = n.Size;
            if (got < s.Offset || got > size)
                throw Mismatch("seek", $"{what}: returned {got}, outside [{s.Offset}, {size}]");
            if (s.Data)
            {
                if (got >= size)
                    throw Mismatch("seek", $"{what}: SEEK_DATA returned the end of file {got}");
                long nz = n.Data!.FirstNonZero(s.Offset, got);
                if (nz >= 0)
                    throw Mismatch("seek", $"{what}: SEEK_DATA skipped data at {nz} (returned {got})");
            }
            else if (got < size)
            {
                long blockEnd = Math.Min(size, (got | 4095) + 1);
                long nz = n.Data!.FirstNonZero(got, blockEnd);
                if (nz >= 0)
                    throw Mismatch("seek", $"{what}: SEEK_HOLE returned {got}, but the model has data at {nz} in that block");
            }
        });
    }

    private void DoMap(MapOp mo, string what)
    {
        WithData(mo.T, what, (f, ino, n) =>
        {
            var plan = new Plan();
            long end = mo.Offset + mo.Length;
            if (mo.Offset < 0 || mo.Length <= 0)
                plan.Errors.Add(Errno.EINVAL);
            else if (end > FsModel.MaxFileBytes)
                plan.Errors.Add(Errno.EFBIG);
            if (mo.Mode == MapMode.Sync && !_pmem)
                plan.Errors.Add(Errno.EOPNOTSUPP); // MAP_SYNC needs pmem
            FsModel.RegularErrors(n, plan.Errors);
            if (plan.Ok && mo.Access == MapAccess.Read && end > n.Size)
                plan.Errors.Add(Errno.ENXIO);
            long oldSize = n.Size;
            if (plan.Ok && mo.Access == MapAccess.ReadWrite)
                plan.Apply = () =>
                {
                    n.Data!.Size = Math.Max(n.Data.Size, end);
                    n.Mtime = null;
                };
            VolumeStats before = V.StatFs();
            DaxMapping? m = null;
            DaxFsException? err = TryCall(() =>
            {
                m?.Dispose();
                m = f is not null ? f.Map(mo.Offset, mo.Length, mo.Access, mo.Mode) : V.Map(ino, mo.Offset, mo.Length, mo.Access, mo.Mode);
            });
            bool ok = Judge(plan, err, mo.Access == MapAccess.ReadWrite, before, what, need: BlocksSpanned(mo.Offset, mo.Length) + 2);
            Touch(n, Math.Max(0, Math.Min(oldSize, mo.Offset) - 4096), Math.Max(0, end - Math.Min(oldSize, mo.Offset)) + 8192);
            if (!ok)
            {
                m?.Dispose();
                return;
            }
            using (m!)
            {
                if (m!.FileOffset != mo.Offset || m.Length != mo.Length)
                    throw Mismatch("mmap", $"{what}: the mapping covers [{m.FileOffset}, +{m.Length})");
                var rnd = new Random(mo.Seed);
                for (int k = 0; k < mo.Stores; k++)
                {
                    int off = rnd.Next(mo.Length);
                    int len = Math.Min(1 + rnd.Next(5000), mo.Length - off);
                    byte[] data = Bytes(rnd.Next() | 1, len);
                    data.CopyTo(m.GetSpan(off, len));
                    if (mo.Mode == MapMode.Sync)
                        m.Persist(off, len);
                    n.Data!.Write(mo.Offset + off, data);
                }
                int check = Math.Min(mo.Length, 1 << 20);
                ReadOnlySpan<byte> window = m.GetReadOnlySpan(0, check);
                if (n.Data!.Mismatch(mo.Offset, window) is var at and >= 0)
                {
                    var want = new byte[check];
                    n.Data.Read(mo.Offset, want);
                    throw Mismatch("mmap", $"{what}: the mapping shows {window[at]} at file offset {mo.Offset + at}, the model {want[at]}");
                }
            }
        });
    }

    private void DoScatter(ScatterOp sc, string what)
    {
        WithData(sc.T, what, (f, ino, n) =>
        {
            byte[] data = Bytes(sc.Seed, sc.Length);
            for (int k = 0; k < sc.Count; k++)
            {
                long off = sc.Start + (long)k * sc.Stride;
                Plan plan = M.Write(n, off, data);
                VolumeStats before = V.StatFs();
                DaxFsException? err = TryCall(() => V.Write(ino, off, data));
                if (!Judge(plan, err, true, before, what + $" (write {k} at {off})", need: BlocksSpanned(off, data.Length)))
                    break;
            }
            for (int k = 0; k < sc.Count; k += 2)
            {
                long off = sc.Start + (long)k * sc.Stride;
                Plan plan = FsModel.Fallocate(n, FallocateMode.PunchHole | FallocateMode.KeepSize, off, sc.Length);
                VolumeStats before = V.StatFs();
                DaxFsException? err = TryCall(() => V.Fallocate(ino, FallocateMode.PunchHole | FallocateMode.KeepSize, off, sc.Length));
                if (!Judge(plan, err, true, before, what + $" (punch {k} at {off})", need: 2))
                    break;
            }
            Touch(n, sc.Start, (long)sc.Count * sc.Stride);
        });
    }

    private void DoStream(StreamOp so, string what)
    {
        DoWithFile(so.Path, what, (f, n) =>
        {
            using Stream s = f.AsStream();
            var rnd = new Random(so.Seed);
            long pos = 0;
            int steps = 1 + rnd.Next(6);
            for (int k = 0; k < steps; k++)
            {
                string sub = $"{what} step {k}";
                switch (rnd.Next(5))
                {
                    case 0:
                    {
                        SeekOrigin origin = (SeekOrigin)rnd.Next(3);
                        long delta = rnd.Next(-5000, 20000);
                        long target = origin switch { SeekOrigin.Begin => delta, SeekOrigin.Current => pos + delta, _ => n.Size + delta };
                        long got;
                        try
                        {
                            got = s.Seek(delta, origin);
                        }
                        catch (ArgumentOutOfRangeException)
                        {
                            if (target >= 0)
                                throw Mismatch("stream", $"{sub}: Seek({delta}, {origin}) threw, the model expects position {target}");
                            break;
                        }
                        if (target < 0 || got != target || s.Position != target)
                            throw Mismatch("stream", $"{sub}: Seek({delta}, {origin}) gave {got}, the model expects {target}");
                        pos = target;
                        break;
                    }
                    case 1:
                    {
                        byte[] data = Bytes(rnd.Next() | 1, 1 + rnd.Next(20000));
                        Plan plan = M.Write(n, pos, data);
                        VolumeStats before = V.StatFs();
                        DaxFsException? err = TryCall(() => s.Write(data));
                        if (!Judge(plan, err, true, before, sub + $" write {data.Length} at {pos}", need: BlocksSpanned(pos, data.Length)))
                            return;
                        Touch(n, pos, data.Length);
                        pos += data.Length;
                        break;
                    }
                    case 2:
                    {
                        var buf = new byte[1 + rnd.Next(20000)];
                        int got = s.Read(buf);
                        long expect = Math.Clamp(n.Size - pos, 0, buf.Length);
                        if (got != expect)
                            throw Mismatch("stream", $"{sub}: Read of {buf.Length} at {pos} gave {got}, the model expects {expect}");
                        var want = new byte[got];
                        n.Data!.Read(pos, want);
                        CompareBytes(buf.AsSpan(0, got), want, pos, sub);
                        pos += got;
                        break;
                    }
                    case 3:
                    {
                        long len = rnd.Next(3) == 0 ? 0 : rnd.Next(100_000);
                        long old = n.Size;
                        Plan plan = FsModel.SetAttr(n, null, null, null, len, null, null);
                        VolumeStats before = V.StatFs();
                        DaxFsException? err = TryCall(() => s.SetLength(len));
                        if (!Judge(plan, err, len >= old, before, sub + $" SetLength({len})", deleting: len < old, need: 1))
                            return;
                        TouchSizeChange(n, old);
                        break;
                    }
                    default:
                        if (s.Length != n.Size || s.Position != pos)
                            throw Mismatch("stream", $"{sub}: Length {s.Length} Position {s.Position}, the model {n.Size} {pos}");
                        break;
                }
            }
            Touch(n);
        });
    }

    // ---------------------------------------------------------------- handles

    private void DoOpen(OpenOp o, string what)
    {
        if (_h[o.Slot] is not null)
            DoClose(o.Slot);
        Resolved r = M.Resolve(o.Path, true);
        Plan plan;
        MNode? parent = null;
        byte[] name = [];
        (Resolved cp, byte[] cname) = o.Create ? M.ResolveParent(o.Path) : (Resolved.Of(M.Root), []);
        if (!cp.Ok)
        {
            // CreateFile resolves the parent first ("/" has no final name: EINVAL; Linux says EISDIR).
            plan = Plan.Fail(cp.Error);
            if (r.Ok && r.Node!.IsDir)
                plan.Errors.Add(Errno.EISDIR);
        }
        else if (o.Create && !r.Ok && r.Error == Errno.ENOENT)
        {
            // CreateFile(path, exclusive: false) creates the file when the name is free.
            parent = cp.Node;
            name = cname;
            plan = M.Create(cp.Node!, name, NodeType.File, 0x1A4, 0, 0, 0, null);
            if (plan.Errors.SetEquals([Errno.EEXIST]))
                plan = Plan.Fail(Errno.ENOENT); // a dangling symbolic link: the open of the existing name fails
        }
        else
        {
            plan = r.Ok ? new Plan() : Plan.Fail(r.Error);
            if (r.Ok)
                FsModel.RegularErrors(r.Node!, plan.Errors);
        }
        VolumeStats before = V.StatFs();
        DaxFile? f = null;
        DaxFsException? err = TryCall(() => f = o.Create ? V.CreateFile(o.Path) : V.OpenFile(o.Path));
        if (!Judge(plan, err, true, before, what, need: 1, takesInode: true))
        {
            Touch(parent);
            return;
        }
        MNode node;
        if (plan.Result is { } created)
        {
            RegisterNew(created, f!.Ino, what);
            node = created;
            Touch(parent);
        }
        else
        {
            node = r.Node!;
            if (f!.Ino != node.Ino)
                throw Mismatch("ino", $"{what}: opened inode {f.Ino}, the model's file is {node.Ino}");
        }
        FsModel.Pin(node);
        _h[o.Slot] = (f, node);
        Touch(node);
    }

    private void DoClose(int slot)
    {
        if (_h[slot] is not { } h)
        {
            Skip();
            return;
        }
        h.File.Dispose();
        _h[slot] = null;
        M.Unpin(h.Node);
        Touch(h.Node);
    }

    // ---------------------------------------------------------------- composite

    private void DoFill(FillOp fo, string what)
    {
        Resolved r = M.Resolve(fo.Path, true);
        if (!r.Ok && r.Error == Errno.ENOENT)
        {
            (Resolved p, byte[] name) = M.ResolveParent(fo.Path);
            if (p.Ok && p.Node!.IsDir)
            {
                Run(new CreateOp(M.PathOf(p.Node), name, NodeType.File, 0x1A4, 0, 0, 0, null, Api.Inode, 0));
                r = M.Resolve(fo.Path, true);
            }
        }
        if (!r.Ok || !r.Node!.IsFile)
        {
            DoWithFile(fo.Path, what, (_, _) => { });
            return;
        }
        MNode n = r.Node;
        int chunk = fo.Chunk;
        byte[] data = Bytes(fo.DataSeed, chunk);
        for (int writes = 0; chunk > 0 && writes < 100_000; writes++)
        {
            int len = chunk;
            Plan plan = M.Write(n, n.Size, data.AsSpan(0, len).ToArray());
            VolumeStats before = V.StatFs();
            long off = n.Size;
            DaxFsException? err = TryCall(() => V.Write(n.Ino, off, data.AsSpan(0, len)));
            if (Judge(plan, err, true, before, what + $" (write {len} at {off})", need: BlocksSpanned(off, len)))
            {
                Stats.BytesWritten += len;
                continue;
            }
            if (err?.Errno != Errno.ENOSPC)
                break;
            chunk /= 8;
        }
        Touch(n, Math.Max(0, n.Size - (1 << 20)), 1 << 20);
    }

    private void DoFillInodes(FillInodesOp fo, string what)
    {
        if (!ResolveBoth(fo.Dir, true, out MNode dir, what))
            return;
        for (int k = 0; k < fo.Max; k++)
        {
            byte[] name = Encoding.UTF8.GetBytes(fo.Prefix + k);
            Plan plan = M.Create(dir, name, NodeType.File, 0x1A4, 0, 0, 0, null);
            VolumeStats before = V.StatFs();
            ulong ino = 0;
            DaxFsException? err = TryCall(() => ino = V.CreateFile(dir.Ino, name, 0x1A4).Ino);
            if (!Judge(plan, err, true, before, what + $" (create {fo.Prefix + k})", need: 1, takesInode: true))
                break;
            RegisterNew(plan.Result!, ino, what);
        }
        Touch(dir);
    }

    private void DoRemoveTree(RemoveTreeOp t, string what)
    {
        if (!ResolveBoth(t.Parent, true, out MNode parent, what))
            return;
        MEntry? e = parent.IsDir ? FsModel.Entry(parent, t.Name) : null;
        if (e is null)
        {
            Run(new RemoveOp(t.Parent, t.Name, false, Api.Inode));
            return;
        }
        RemoveTree(M.PathOf(parent), e);
    }

    private bool RemoveTree(string parentPath, MEntry e)
    {
        if (e.Node.IsDir)
        {
            string path = FsModel.Join(parentPath, e.Name);
            foreach (MEntry child in e.Node.Order!.ToList())
                if (!RemoveTree(path, child))
                    return false;
        }
        Run(new RemoveOp(parentPath, e.Name, e.Node.IsDir, Api.Inode));
        return _lastOk;
    }

    private void DoStale(StaleInoOp s, string what)
    {
        if (M.Live.ContainsKey(s.Ino))
        {
            Skip();
            return;
        }
        ulong ino = s.Ino;
        DaxFsException? err = Try(() =>
        {
            switch (s.Kind)
            {
                case 0: V.GetAttributes(ino); break;
                case 1: V.Read(ino, 0, new byte[10]); break;
                case 2: V.Write(ino, 0, [1]); break;
                case 3: V.SetXattr(ino, "user.a"u8, [1], XattrFlags.None); break;
                case 4: V.ReadDirectory(ino); break;
                case 5: V.Lookup(ino, "a"u8); break;
                case 6: V.CreateFile(ino, "x"u8, 0x1A4); break;
                default: V.SetAttributes(ino, new SetAttributes { Mode = 0x1FF }); break;
            }
        });
        Judge(Plan.Fail(Errno.ENOENT), err, false, default, what);
    }

    // ================================================================ remount and fsck

    /// <summary>Scratch: what the volume knows of the op's target.</summary>
    public string Debug(Op op)
    {
        var sb = new StringBuilder($"pmem={_pmem} free={V.StatFs().FreeBlocks}\n");
        if (op is WriteOp { T.Path: { } p })
        {
            Resolved r = M.Resolve(p, true);
            if (r.Ok)
            {
                var i = (DaxFs.Namespace.Inode)typeof(DaxVolume).GetMethod("Get", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.Invoke(V, [r.Node!.Ino])!;
                sb.Append($"ino {i.Ino} size {i.Rec.Size} log blocks [{string.Join(",", i.LogBlocks)}] extents [{string.Join(",", i.Map!.Extents)}]\n");
            }
        }
        return sb.ToString();
    }

    private bool _crashView;
    private bool _syncMount;

    /// <summary>A crash between two calls: a copy of the device as it is now (the volume still mounted; on Page
    /// devices right after a Sync) must pass fsck (but for the orphans of open unlinked files) and mount to exactly
    /// the model's tree -- every call is atomic, and durable on return on pmem, after Sync on Page devices. The copy is checked in place of the volume, then dropped.</summary>
    public void CrashImageCheck(string what, bool syncFirst = true)
    {
        if (!_pmem && syncFirst)
            V.Sync(); // Page devices: calls are durable after Sync
        bool durable = _pmem || _syncMount || syncFirst;
        var orphans = M.Live.Values.Where(n => n.Nlink == 0).Select(n => n.Ino).ToHashSet();
        byte[] image = TestVolumes.Snapshot(_dev);
        using PmemDevice copy = TestVolumes.FromImage(image, _pmem);
        FsckReport rep = Fsck.Check(copy);
        var unexpected = rep.Errors.Where(e => !(durable ? orphans.Any(o => e.StartsWith($"inode {o} is an orphan", StringComparison.Ordinal)) : e.Contains("is an orphan", StringComparison.Ordinal))).ToList();
        if (unexpected.Count > 0)
            throw Mismatch("crash-fsck", $"{what}: fsck of a crash image: {string.Join("; ", unexpected.Take(20))}");
        if (!durable)
        {
            // Page device, not synced: an older state, which must be consistent (fsck above) and mount.
            using DaxVolume older = DaxVolume.Mount(copy);
            return;
        }
        DaxVolume? saved = _vol;
        PmemDevice savedDev = _dev;
        _vol = DaxVolume.Mount(copy);
        _dev = copy;
        _crashView = true;
        try
        {
            if (_vol.OrphansFreed != orphans.Count)
                throw Mismatch("crash-orphans", $"{what}: mounting a crash image freed {_vol.OrphansFreed} orphans, the model expects {orphans.Count}");
            FullCheck(what + " (crash image)");
        }
        catch (ModelMismatchException e) when (!e.Kind.StartsWith("crash-", StringComparison.Ordinal))
        {
            throw Mismatch("crash-" + e.Kind, "crash image: " + e.Message);
        }
        finally
        {
            _vol.Dispose();
            _vol = saved;
            _dev = savedDev;
            _crashView = false;
        }
    }

    private void CloseAll()
    {
        for (int k = 0; k < Slots; k++)
            if (_h[k] is not null)
                DoClose(k);
    }

    /// <summary>Unmounts (after a full check), runs fsck, mounts (optionally on a device of the other granularity)
    /// and checks the whole tree again.</summary>
    public void Remount(bool switchMode, bool leaveOpen, bool syncMount = false)
    {
        FullCheck("before unmount");
        if (!leaveOpen)
            CloseAll();
        var orphans = M.Live.Values.Where(n => n.Nlink == 0 && n.Pins > 0).Select(n => n.Ino).ToHashSet();
        V.Dispose();
        _vol = null;
        FsckReport rep = Fsck.Check(_dev);
        var unexpected = rep.Errors.Where(e => !orphans.Any(o => e.StartsWith($"inode {o} is an orphan", StringComparison.Ordinal))).ToList();
        if (unexpected.Count > 0 || rep.Errors.Count != orphans.Count)
            throw Mismatch("fsck", $"fsck after unmount ({orphans.Count} orphans expected): {string.Join("; ", rep.Errors)}");
        if (switchMode)
        {
            byte[] image = TestVolumes.Snapshot(_dev);
            _dev.Dispose();
            _pmem = !_pmem;
            _dev = TestVolumes.FromImage(image, _pmem);
        }
        _syncMount = syncMount;
        _vol = DaxVolume.Mount(_dev, new MountOptions { Sync = syncMount, Data = _cfg.Data });
        if (_vol.OrphansFreed != orphans.Count)
            throw Mismatch("orphans", $"the mount freed {_vol.OrphansFreed} orphans, the model expects {orphans.Count}");
        Stats.Orphans += orphans.Count;
        for (int k = 0; k < Slots; k++)
            _h[k] = null; // the old volume's handles are gone with it
        M.DropAllPins();
        Stats.Remounts++;
        FullCheck("after mount");
    }

    /// <summary>The end of a run: full check, handles closed, remount, then unmount and a clean fsck.</summary>
    public void Finish()
    {
        FullCheck("at the end");
        CloseAll();
        Remount(switchMode: false, leaveOpen: false);
        V.Dispose();
        _vol = null;
        FsckReport rep = Fsck.Check(_dev);
        if (!rep.Clean)
            throw Mismatch("fsck", $"fsck at the end: {string.Join("; ", rep.Errors)}");
        if (rep.Inodes != M.Live.Count)
            throw Mismatch("fsck", $"fsck counts {rep.Inodes} inodes, the model {M.Live.Count}");
    }

    // ================================================================ checks

    private void CheckTouched()
    {
        foreach (var (n, from, len) in _touched)
        {
            if (n.Freed)
            {
                if (!M.Live.ContainsKey(n.Ino))
                {
                    DaxFsException? err = Try(() => V.GetAttributes(n.Ino));
                    if (err?.Errno != Errno.ENOENT)
                        throw Mismatch("freed", $"inode {n.Ino} should be gone, GetAttributes gave {Err(err)}");
                }
                continue;
            }
            CheckNode(n, from, len, "touched");
        }
        _touched.Clear();
    }

    private void CompareAttrs(MNode n, InodeAttributes a, string what)
    {
        string Diff(string field, object vol, object model) => $"{what}: {n} {field} is {vol} on the volume, {model} in the model";
        if (a.Ino != n.Ino)
            throw Mismatch("attrs", Diff("ino", a.Ino, n.Ino));
        if (a.Mode != n.Mode)
            throw Mismatch("attrs", Diff("mode", $"0{Convert.ToString(a.Mode, 8)}", $"0{Convert.ToString(n.Mode, 8)}"));
        if (a.Uid != n.Uid || a.Gid != n.Gid)
            throw Mismatch("attrs", Diff("uid/gid", $"{a.Uid}/{a.Gid}", $"{n.Uid}/{n.Gid}"));
        if (a.Nlink != n.Nlink)
            throw Mismatch("attrs", Diff("nlink", a.Nlink, n.Nlink));
        if (!n.IsDir && a.Size != n.Size)
            throw Mismatch("attrs", Diff("size", a.Size, n.Size));
        if (n.Type is NodeType.CharDev or NodeType.BlockDev && a.Rdev != n.Rdev)
            throw Mismatch("attrs", Diff("rdev", a.Rdev, n.Rdev));
        if (n.Atime is { } at && a.AtimeNs != at)
            throw Mismatch("attrs", Diff("atime", a.AtimeNs, at));
        if (n.Mtime is { } mt && a.MtimeNs != mt)
            throw Mismatch("attrs", Diff("mtime", a.MtimeNs, mt));
        if (n.IsFile && a.Blocks * 512 < n.Data!.NonZeroBlocks() * 4096)
            throw Mismatch("attrs", Diff("blocks", a.Blocks, $">= {n.Data.NonZeroBlocks() * 8} (blocks holding data)"));
        if (a.Blocks < 0 || (n.IsFile && a.Blocks * 512 > (n.Size + (64L << 20)) * 2 && a.Blocks * 512 > 256L << 20))
            throw Mismatch("attrs", Diff("blocks", a.Blocks, "a plausible count"));
    }

    /// <summary>Attributes, entries or contents, link target and xattrs of one node.</summary>
    private void CheckNode(MNode n, long from, long len, string what, bool full = false)
    {
        InodeAttributes a = default;
        DaxFsException? err = Try(() => a = V.GetAttributes(n.Ino));
        if (err is not null)
            throw Mismatch("attrs", $"{what}: GetAttributes({n}) failed: {Err(err)}");
        CompareAttrs(n, a, what);
        switch (n.Type)
        {
            case NodeType.Dir:
                CompareDir(n, what);
                break;
            case NodeType.File:
                if (full)
                    CompareContent(n, what);
                else
                {
                    if (len > 0 && len <= 1 << 20)
                        CompareRange(n, from, len, what);
                    else if (len > 0)
                    {
                        CompareRange(n, from, 512 << 10, what);
                        CompareRange(n, from + len - (512 << 10), 512 << 10, what);
                    }
                    CompareRange(n, Math.Max(0, n.Size - 8192), 8192 + 4096, what);
                    if (n.Size <= 256 << 10)
                        CompareRange(n, 0, n.Size, what);
                }
                break;
            case NodeType.Symlink:
                byte[] t = V.ReadLink(n.Ino);
                if (!t.AsSpan().SequenceEqual(n.Target))
                    throw Mismatch("readlink", $"{what}: {n} target is {Fmt.Name(t)}, the model's {Fmt.Name(n.Target!)}");
                break;
        }
        CompareXattrs(n, what);
    }

    private void CompareXattrNames(MNode n, IReadOnlyList<byte[]> names, string what)
    {
        var got = names.Select(x => FsModel.Key(x)).Order(StringComparer.Ordinal).ToList();
        var want = n.Xattrs.Select(x => FsModel.Key(x.Name)).Order(StringComparer.Ordinal).ToList();
        if (!got.SequenceEqual(want))
            throw Mismatch("xattr", $"{what}: {n} xattrs are [{string.Join(", ", got)}], the model's [{string.Join(", ", want)}]");
    }

    private void CompareXattrs(MNode n, string what)
    {
        CompareXattrNames(n, V.ListXattrs(n.Ino), what);
        foreach (var (name, value) in n.Xattrs)
        {
            byte[] v = V.GetXattr(n.Ino, name);
            if (!v.AsSpan().SequenceEqual(value))
                throw Mismatch("xattr", $"{what}: {n} xattr {Fmt.Name(name)} has {v.Length} bytes differing from the model's {value.Length}");
        }
    }

    private void CompareDir(MNode d, string what)
    {
        IReadOnlyList<DirEntry> list = V.ReadDirectory(d.Ino);
        if (list.Count < 2 || list[0].Ino != d.Ino || list[1].Ino != d.Parent!.Ino || list[0].Cookie != 1 || list[1].Cookie != 2)
            throw Mismatch("listing", $"{what}: directory {d.Ino}: '.'/'..' are wrong (.. should be {d.Parent!.Ino})");
        if (list.Count - 2 != d.Entries!.Count)
            throw Mismatch("listing", $"{what}: directory {d.Ino} lists {list.Count - 2} entries, the model has {d.Entries.Count}: volume [{string.Join(", ", list.Skip(2).Take(20).Select(e => e.NameString))}] model [{string.Join(", ", d.Order!.Take(20).Select(e => Encoding.UTF8.GetString(e.Name)))}]");
        var cookies = new HashSet<ulong>();
        foreach (DirEntry e in list.Skip(2))
        {
            MEntry? me = FsModel.Entry(d, e.Name);
            if (me is null)
                throw Mismatch("listing", $"{what}: directory {d.Ino} lists {Fmt.Name(e.Name)}, which the model does not have");
            if (me.Node.Ino != e.Ino || e.Type != (byte)(me.Node.Mode >> 12))
                throw Mismatch("listing", $"{what}: {Fmt.Name(e.Name)} in directory {d.Ino} is inode {e.Ino} type {e.Type}, the model's {me.Node.Ino} type {me.Node.Mode >> 12}");
            if (!cookies.Add(e.Cookie))
                throw Mismatch("listing", $"{what}: cookie {e.Cookie} appears twice in directory {d.Ino}");
            if (me.Cookie is { } c && c != e.Cookie)
                throw Mismatch("cookie", $"{what}: the cookie of {Fmt.Name(e.Name)} in directory {d.Ino} changed from {c} to {e.Cookie}");
            me.Cookie = e.Cookie;
        }
    }

    private readonly byte[] _got = new byte[1 << 20], _want = new byte[1 << 20];

    private void CompareRange(MNode n, long from, long len, string what)
    {
        long size = n.Size;
        from = Math.Max(0, from);
        long end = Math.Min(size, from + len);
        for (long pos = from; pos < end; pos += _got.Length)
        {
            int l = (int)Math.Min(_got.Length, end - pos);
            int r = V.Read(n.Ino, pos, _got.AsSpan(0, l));
            if (r != l)
                throw Mismatch("read", $"{what}: {n}: read of {l} at {pos} returned {r} (size {size})");
            if (n.Data!.Mismatch(pos, _got.AsSpan(0, l)) >= 0)
            {
                n.Data.Read(pos, _want.AsSpan(0, l));
                CompareBytes(_got.AsSpan(0, l), _want.AsSpan(0, l), pos, $"{what}: {n}");
            }
        }
        if (from + len > size && V.Read(n.Ino, Math.Max(size, from), _got.AsSpan(0, 16)) != 0)
            throw Mismatch("read", $"{what}: {n}: a read at the end of file ({size}) returned data");
    }

    /// <summary>A whole file: all of it when small; for large sparse files the model's pages, the volume's data
    /// extents (SEEK_DATA/SEEK_HOLE) and a few probes elsewhere.</summary>
    private void CompareContent(MNode n, string what)
    {
        long size = n.Size;
        if (size <= 16L << 20)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            CompareRange(n, 0, size, what);
            Stats.MsByKind["(cc small)"] = Stats.MsByKind.GetValueOrDefault("(cc small)") + System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            Stats.ByKind["(cc small bytes)"] = Stats.ByKind.GetValueOrDefault("(cc small bytes)") + size;
            return;
        }
        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
        try {
            CompareSparse(n, what, size);
        } finally {
            Stats.MsByKind["(cc sparse)"] = Stats.MsByKind.GetValueOrDefault("(cc sparse)") + System.Diagnostics.Stopwatch.GetElapsedTime(t1).TotalMilliseconds;
        }
    }

    private void CompareSparse(MNode n, string what, long size)
    {
        var ranges = n.Data!.PageRanges().Where(r => r.Start < size).ToList();
        long off = 0;
        for (int k = 0; k < 100_000 && off < size; k++)
        {
            long d = -1, h = size;
            if (Try(() => d = V.Seek(n.Ino, off, data: true)) is not null)
                break;
            Try(() => h = V.Seek(n.Ino, d, data: false));
            if (h <= d)
                throw Mismatch("seek", $"{what}: {n}: SEEK_HOLE from data at {d} returned {h}");
            ranges.Add((d, Math.Min(h - d, 64L << 20)));
            off = h;
        }
        long done = 0;
        foreach (var (start, length) in ranges.OrderBy(r => r.Start))
        {
            long a = Math.Max(start, done), b = start + length;
            if (b > a)
                CompareRange(n, a, b - a, what);
            done = Math.Max(done, b);
        }
        var probe = new Random((int)(n.Ino * 31 + (ulong)size));
        for (int k = 0; k < 4; k++)
            CompareRange(n, probe.NextInt64(size) & ~4095L, 8192, what);
        CompareRange(n, size - 4096, 8192, what);
    }

    private void CheckStatFs(string what)
    {
        VolumeStats s = V.StatFs();
        if (s.BlockSize != 4096 || s.MaxNameLength != FsModel.MaxName)
            throw Mismatch("statfs", $"{what}: block size {s.BlockSize}, max name {s.MaxNameLength}");
        if (s.FreeBlocks < 0 || s.FreeBlocks > s.TotalBlocks || s.FreeInodes < 0 || s.FreeInodes > s.TotalInodes)
            throw Mismatch("statfs", $"{what}: free {s.FreeBlocks}/{s.TotalBlocks} blocks, {s.FreeInodes}/{s.TotalInodes} inodes");
        // Free blocks leave out the pool kept for calls that free space; free 2 MiB groups do not.
        if (s.FreeAlignedExtents * 512 > s.FreeBlocks + V.Allocator.Pool)
            throw Mismatch("statfs", $"{what}: {s.FreeAlignedExtents} free 2 MiB groups but only {s.FreeBlocks} free blocks (+{V.Allocator.Pool} pooled)");
        int live = _crashView ? M.Live.Values.Count(n => n.Nlink > 0) : M.Live.Count;
        if (s.TotalInodes - s.FreeInodes != live)
            throw Mismatch("statfs", $"{what}: {s.TotalInodes - s.FreeInodes} inodes in use, the model has {live} live");
        long data = M.Live.Values.Where(n => n.IsFile && (n.Nlink > 0 || !_crashView)).Sum(n => n.Data!.NonZeroBlocks());
        if (s.TotalBlocks - s.FreeBlocks < data)
            throw Mismatch("statfs", $"{what}: {s.TotalBlocks - s.FreeBlocks} blocks in use, but the files hold data in {data}");
    }

    /// <summary>The whole tree: every reachable node and every orphan, against the model; statfs.</summary>
    public void FullCheck(string what, bool contents = true)
    {
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        FullCheckBody(what, contents);
        Stats.MsByKind["(full check)"] = Stats.MsByKind.GetValueOrDefault("(full check)") + System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    private void FullCheckBody(string what, bool contents)
    {
        Stats.FullChecks++;
        foreach (MNode n in M.Reachable())
        {
            if (n.IsDir && n.Nlink != 2 + n.Order!.Count(e => e.Node.IsDir))
                throw new InvalidOperationException($"model bug: {n} nlink {n.Nlink}");
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            CheckNode(n, 0, 0, what, full: contents);
            string k = "(fc " + n.Type + ")";
            Stats.MsByKind[k] = Stats.MsByKind.GetValueOrDefault(k) + System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        foreach (MNode n in M.Live.Values.Where(n => n.Nlink == 0 && !_crashView))
            CheckNode(n, 0, 0, what + " (orphan)", full: contents);
        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
        CheckStatFs(what);
        Stats.MsByKind["(fc statfs)"] = Stats.MsByKind.GetValueOrDefault("(fc statfs)") + System.Diagnostics.Stopwatch.GetElapsedTime(t1).TotalMilliseconds;
    }
}
