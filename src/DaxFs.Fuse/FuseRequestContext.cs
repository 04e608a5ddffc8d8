namespace DaxFs.Fuse;

/// <summary>FuseRequestContext -- who sent a request: the caller's uid, gid and pid as the kernel reports them,
/// and the request's unique id. New files are owned by <see cref="Uid"/>/<see cref="Gid"/>.</summary>
public readonly struct FuseRequestContext
{
    private readonly FuseInterruptTracker? _interrupts;

    /// <summary>A context (tests and adapters; the dispatcher builds one per request).</summary>
    public FuseRequestContext(uint uid, uint gid, uint pid, ulong unique)
        : this(uid, gid, pid, unique, null)
    {
    }

    internal FuseRequestContext(uint uid, uint gid, uint pid, ulong unique, FuseInterruptTracker? interrupts)
    {
        Uid = uid;
        Gid = gid;
        Pid = pid;
        Unique = unique;
        _interrupts = interrupts;
    }

    /// <summary>The caller's effective user id (fsuid).</summary>
    public uint Uid { get; }

    /// <summary>The caller's effective group id (fsgid).</summary>
    public uint Gid { get; }

    /// <summary>The caller's thread-group id; 0 for requests the kernel makes on its own (forget, release).</summary>
    public uint Pid { get; }

    /// <summary>The request's unique id.</summary>
    public ulong Unique { get; }

    /// <summary>True once the kernel has sent an INTERRUPT for this request (the caller got a signal). A long
    /// operation may stop early and throw EINTR; the reply is then ignored by the kernel anyway.</summary>
    public bool IsInterrupted => _interrupts?.IsInterrupted(Unique) ?? false;

    /// <inheritdoc/>
    public override string ToString() => $"uid={Uid} gid={Gid} pid={Pid} unique={Unique}";
}
