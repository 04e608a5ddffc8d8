using System.Runtime.CompilerServices;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

/// <summary>FuseDispatchResult -- what became of one request.</summary>
internal enum FuseDispatchResult
{
    /// <summary>Answered (successfully or with an error).</summary>
    Replied,
    /// <summary>Served without an answer (FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY).</summary>
    NoReply,
    /// <summary>Too broken to answer at all (under 16 bytes): logged and dropped.</summary>
    Dropped,
    /// <summary>DESTROY was served: the connection is over.</summary>
    Destroyed,
}

/// <summary>FuseDispatcher -- turns one request buffer into one call of <see cref="IFuseFileSystem"/> and its
/// reply. Framing and body checks refuse malformed requests with an error reply; DaxFsException becomes
/// -errno; any other exception becomes EIO (logged once). Nothing thrown inside escapes
/// <see cref="Dispatch"/>. Thread-safe: each worker thread brings its own <see cref="FuseWorkerState"/>.</summary>
internal sealed unsafe partial class FuseDispatcher
{
    private readonly IFuseFileSystem _fs;
    private readonly FuseMountOptions _options;
    private readonly ulong _root;
    private int _destroyed;
    private volatile bool _initialized;

    public FuseDispatcher(IFuseFileSystem fileSystem, FuseMountOptions options, FuseLog log)
    {
        ArgumentNullException.ThrowIfNull(fileSystem);
        options.Validate();
        _fs = fileSystem;
        _options = options;
        _root = options.RootInode;
        Log = log;
    }

    public FuseLog Log { get; }

    public FuseInterruptTracker Interrupts { get; } = new();

    /// <summary>What INIT negotiated; null before INIT.</summary>
    public FuseConnectionInfo? Connection { get; private set; }

    /// <summary>Set when INIT has been answered, successfully or not.</summary>
    public ManualResetEventSlim InitCompleted { get; } = new();

    /// <summary>Why INIT failed, if it did.</summary>
    public string? InitFailure { get; private set; }

    /// <summary>Payload bytes a worker's reply buffer must hold: a full read, or the largest xattr value.</summary>
    public int MaxReplyPayload => Math.Max(_options.MaxWrite, FuseKernel.XattrSizeMax + 4096);

    /// <summary>Bytes a worker's request buffer must hold: the largest request plus 4 KiB for headers -- a full
    /// WRITE, or a SETXATTR with a 64 KiB value (a request that does not fit is failed E2BIG by the kernel; one
    /// smaller than max_write + 80 bytes makes every read of /dev/fuse fail EINVAL).</summary>
    public int RequestBufferSize => Math.Max(_options.MaxWrite, FuseKernel.XattrSizeMax + FuseKernel.PathMax) + 4096;

    /// <summary>Serves one request read from /dev/fuse.</summary>
    public FuseDispatchResult Dispatch(ReadOnlySpan<byte> request, FuseWorkerState state)
    {
        state.Replied = false;
        var frame = FuseRequestFrame.Parse(request, out var header, out var body, out var frameError,
            out var problem);
        string name = FuseOpcodeTable.NameOf(header.Opcode);
        if (frame == FuseFrameStatus.Drop)
        {
            Log.Malformed("unframed", problem!);
            return FuseDispatchResult.Dropped;
        }
        bool known = FuseOpcodeTable.TryGet(header.Opcode, out var info);
        if (frame == FuseFrameStatus.Reply)
        {
            Log.Malformed(name, problem!);
            if (known && !info.HasReply)
                return FuseDispatchResult.NoReply;
            ReplyError(state, header.Unique, (Errno)frameError);
            return FuseDispatchResult.Replied;
        }
        if (!known)
        {
            ReplyError(state, header.Unique, Errno.ENOSYS);
            return FuseDispatchResult.Replied;
        }
        if (!info.HasReply)
            return DispatchNoReply(info, header, body);
        if (!info.Supported)
        {
            ReplyError(state, header.Unique, Errno.ENOSYS);
            return FuseDispatchResult.Replied;
        }
        if (body.Length < info.MinBodySize)
        {
            Log.Malformed(name, $"body of {body.Length} bytes, at least {info.MinBodySize} expected");
            ReplyError(state, header.Unique, Errno.EINVAL);
            return FuseDispatchResult.Replied;
        }
        if (!_initialized && info.Opcode != FuseOpcode.Init)
        {
            Log.Malformed(name, "request before INIT");
            ReplyError(state, header.Unique, Errno.EIO);
            return FuseDispatchResult.Replied;
        }
        return DispatchCall(info, header, body, state);
    }

    /// <summary>Calls <see cref="IFuseFileSystem.Destroy"/> unless it already ran; true if this call ran it.</summary>
    public bool DestroyOnce()
    {
        if (Interlocked.Exchange(ref _destroyed, 1) != 0)
            return false;
        try
        {
            _fs.Destroy();
        }
        catch (Exception e)
        {
            Log.Unexpected("DESTROY", e);
        }
        return true;
    }

    private FuseDispatchResult DispatchCall(in FuseOpcodeInfo info, in FuseInHeader header, ReadOnlySpan<byte> body,
        FuseWorkerState state)
    {
        var context = new FuseRequestContext(header.Uid, header.Gid, header.Pid, header.Unique, Interrupts);
        var reader = new FuseRequestReader(body);
        try
        {
            var call = new FuseCall(context, InNode(header.NodeId), header.Unique, state);
            Serve(info.Opcode, call, ref reader);
        }
        catch (FuseMalformedRequestException e)
        {
            Log.Malformed(info.Name, e.Message);
            ReplyErrorOnce(state, header.Unique, e.Errno);
        }
        catch (DaxFsException e)
        {
            ReplyErrorOnce(state, header.Unique, ValidErrno(e.Errno));
        }
        catch (Exception e)
        {
            Log.Unexpected(info.Name, e);
            ReplyErrorOnce(state, header.Unique, Errno.EIO);
        }
        finally
        {
            Interrupts.Completed(header.Unique);
        }
        return info.Opcode == FuseOpcode.Destroy ? FuseDispatchResult.Destroyed : FuseDispatchResult.Replied;
    }

    private void Serve(FuseOpcode opcode, in FuseCall c, ref FuseRequestReader r)
    {
        switch (opcode)
        {
            case FuseOpcode.Init: Init(c, ref r); break;
            case FuseOpcode.Destroy: Destroy(c); break;
            case FuseOpcode.Lookup: Lookup(c, ref r); break;
            case FuseOpcode.GetAttr: GetAttr(c, ref r); break;
            case FuseOpcode.SetAttr: SetAttr(c, ref r); break;
            case FuseOpcode.ReadLink: ReadLink(c); break;
            case FuseOpcode.Symlink: Symlink(c, ref r); break;
            case FuseOpcode.MkNod: MkNod(c, ref r); break;
            case FuseOpcode.MkDir: MkDir(c, ref r); break;
            case FuseOpcode.Unlink: Unlink(c, ref r); break;
            case FuseOpcode.RmDir: RmDir(c, ref r); break;
            case FuseOpcode.Rename: Rename(c, ref r); break;
            case FuseOpcode.Rename2: Rename2(c, ref r); break;
            case FuseOpcode.Link: Link(c, ref r); break;
            case FuseOpcode.Open: Open(c, ref r); break;
            case FuseOpcode.Create: Create(c, ref r); break;
            case FuseOpcode.Read: Read(c, ref r); break;
            case FuseOpcode.Write: Write(c, ref r); break;
            case FuseOpcode.StatFs: StatFs(c); break;
            case FuseOpcode.Release: Release(c, ref r); break;
            case FuseOpcode.Flush: Flush(c, ref r); break;
            case FuseOpcode.Fsync: Fsync(c, ref r); break;
            case FuseOpcode.OpenDir: OpenDir(c, ref r); break;
            case FuseOpcode.ReadDir: ReadDir(c, ref r, plus: false); break;
            case FuseOpcode.ReadDirPlus: ReadDir(c, ref r, plus: true); break;
            case FuseOpcode.ReleaseDir: ReleaseDir(c, ref r); break;
            case FuseOpcode.FsyncDir: FsyncDir(c, ref r); break;
            case FuseOpcode.Access: Access(c, ref r); break;
            case FuseOpcode.SetXattr: SetXattr(c, ref r); break;
            case FuseOpcode.GetXattr: GetXattr(c, ref r); break;
            case FuseOpcode.ListXattr: ListXattr(c, ref r); break;
            case FuseOpcode.RemoveXattr: RemoveXattr(c, ref r); break;
            case FuseOpcode.Fallocate: Fallocate(c, ref r); break;
            case FuseOpcode.Lseek: Lseek(c, ref r); break;
            case FuseOpcode.CopyFileRange: CopyFileRange(c, ref r); break;
            default: throw new DaxFsException(Errno.ENOSYS, $"{opcode} is not served");
        }
    }

    // ---- replies ----

    private static int Send(FuseWorkerState state, int length)
    {
        state.IoVecs[0] = new FuseIoVec((nint)state.Reply, (nuint)length);
        state.Replied = true;
        return state.Channel.Send(state.IoVecs, 1);
    }

    private static int ReplyOk<T>(in FuseCall c, in T body) where T : unmanaged =>
        Send(c.State, FuseReplyEncoder.WriteStruct(c.State.ReplySpan, c.Unique, body));

    private static int ReplyEmpty(in FuseCall c) =>
        Send(c.State, FuseReplyEncoder.WriteHeader(c.State.ReplySpan, FuseReplyEncoder.HeaderSize, 0, c.Unique));

    /// <summary>A success reply whose payload the caller already wrote at <see cref="FuseWorkerState.Payload"/>.</summary>
    private static int ReplyPayload(in FuseCall c, int payloadLength)
    {
        int length = FuseReplyEncoder.HeaderSize + payloadLength;
        FuseReplyEncoder.WriteHeader(c.State.ReplySpan, length, 0, c.Unique);
        return Send(c.State, length);
    }

    private static void ReplyError(FuseWorkerState state, ulong unique, Errno errno) =>
        Send(state, FuseReplyEncoder.WriteError(state.ReplySpan, unique, errno));

    private static void ReplyErrorOnce(FuseWorkerState state, ulong unique, Errno errno)
    {
        if (!state.Replied)
            ReplyError(state, unique, errno);
    }

    private void ReplyEntry(in FuseCall c, in FuseEntry entry)
    {
        var wire = ToEntryOut(entry);
        if (ReplyOk(c, wire) == FuseErrno.ENOENT)
            ForgetQuietly(entry.Attributes.Ino, 1); // the caller was interrupted: the kernel never got the entry
    }

    private void ReplyAttr(in FuseCall c, in FuseAttributes attributes)
    {
        var (seconds, nanoseconds) = SplitTimeout(_options.AttributeTimeout);
        var wire = new FuseAttrOut { AttrValid = seconds, AttrValidNsec = nanoseconds, Attr = ToAttr(attributes) };
        ReplyOk(c, wire);
    }

    // ---- conversions ----

    private ulong InNode(ulong nodeId) => nodeId == FuseKernel.RootId ? _root : nodeId;

    private ulong OutNode(ulong ino)
    {
        if (ino == _root)
            return FuseKernel.RootId;
        if (ino == FuseKernel.RootId || ino == 0)
            throw new InvalidOperationException($"inode number {ino} cannot be a node id (root is {_root})");
        return ino;
    }

    internal FuseEntryOut ToEntryOut(in FuseEntry entry)
    {
        var (entrySeconds, entryNanoseconds) = SplitTimeout(entry.EntryTimeout);
        var (attrSeconds, attrNanoseconds) = SplitTimeout(entry.AttributeTimeout);
        return new FuseEntryOut
        {
            NodeId = OutNode(entry.Attributes.Ino),
            Generation = entry.Generation,
            EntryValid = entrySeconds,
            EntryValidNsec = entryNanoseconds,
            AttrValid = attrSeconds,
            AttrValidNsec = attrNanoseconds,
            Attr = ToAttr(entry.Attributes),
        };
    }

    internal static FuseAttr ToAttr(in FuseAttributes a)
    {
        var (atime, atimeNs) = SplitNanoseconds(a.AtimeNs);
        var (mtime, mtimeNs) = SplitNanoseconds(a.MtimeNs);
        var (ctime, ctimeNs) = SplitNanoseconds(a.CtimeNs);
        return new FuseAttr
        {
            Ino = a.Ino,
            Size = (ulong)a.Size,
            Blocks = (ulong)a.Blocks,
            Atime = (ulong)atime,
            Mtime = (ulong)mtime,
            Ctime = (ulong)ctime,
            AtimeNsec = atimeNs,
            MtimeNsec = mtimeNs,
            CtimeNsec = ctimeNs,
            Mode = a.Mode,
            NLink = a.NLink,
            Uid = a.Uid,
            Gid = a.Gid,
            Rdev = a.Rdev,
            BlkSize = a.BlockSize,
        };
    }

    /// <summary>Seconds (floor) and nanoseconds (0..999 999 999) of a time in ns since the epoch; the kernel reads
    /// the seconds as signed.</summary>
    internal static (long Seconds, uint Nanoseconds) SplitNanoseconds(long ns)
    {
        long seconds = Math.DivRem(ns, 1_000_000_000L, out long rest);
        if (rest < 0)
        {
            seconds--;
            rest += 1_000_000_000L;
        }
        return (seconds, (uint)rest);
    }

    internal static long JoinNanoseconds(ulong seconds, uint nanoseconds) =>
        unchecked((long)seconds * 1_000_000_000L + nanoseconds);

    private static (ulong Seconds, uint Nanoseconds) SplitTimeout(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
            return (0, 0);
        long ticks = timeout.Ticks;
        return ((ulong)(ticks / TimeSpan.TicksPerSecond), (uint)(ticks % TimeSpan.TicksPerSecond * 100));
    }

    private static Errno ValidErrno(Errno errno) => (int)errno is > 0 and < 4096 ? errno : Errno.EIO;

    private static long Offset(ulong value, string what) =>
        value <= long.MaxValue ? (long)value : throw new FuseMalformedRequestException(Errno.EINVAL,
            $"{what} {value} is past the largest file offset");

    private void ForgetQuietly(ulong ino, ulong lookups)
    {
        try
        {
            _fs.Forget(ino, lookups);
        }
        catch (Exception e)
        {
            Log.Unexpected("FORGET", e);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Check(long value, string what) =>
        value >= 0 ? (ulong)value : throw new InvalidOperationException($"{what} {value} is negative");

    /// <summary>FuseCall -- one request being served: caller, target node (root mapped), unique, worker buffers.</summary>
    private readonly struct FuseCall(FuseRequestContext context, ulong node, ulong unique, FuseWorkerState state)
    {
        public FuseRequestContext Context { get; } = context;
        public ulong Node { get; } = node;
        public ulong Unique { get; } = unique;
        public FuseWorkerState State { get; } = state;
    }
}

/// <summary>FuseErrno -- errno values the session compares against (not all are in <see cref="Errno"/>).</summary>
internal static class FuseErrno
{
    public const int ENOENT = 2, EPROTO = 71;
}
