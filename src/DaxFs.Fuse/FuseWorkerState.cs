using System.Runtime.InteropServices;

namespace DaxFs.Fuse;

/// <summary>IFuseReplyChannel -- where replies go: writev to /dev/fuse in a session, a recorder in tests.</summary>
internal unsafe interface IFuseReplyChannel
{
    /// <summary>Sends one reply made of <paramref name="count"/> pieces; returns 0 or the errno of the failure
    /// (ENOENT: the kernel no longer waits for this request).</summary>
    int Send(FuseIoVec* iov, int count);
}

/// <summary>FuseWorkerState -- the buffers one worker thread answers with: the reply buffer (header + payload;
/// also the scratch space of read replies and directory listings), the iovec array of writev, and the reusable
/// read-reply and directory-buffer objects. Native memory, so that its addresses can go to writev.</summary>
internal sealed unsafe class FuseWorkerState : IDisposable
{
    private byte* _reply;
    private FuseIoVec* _iov;

    /// <summary>Buffers for replies of up to <paramref name="maxPayload"/> bytes after the header.</summary>
    public FuseWorkerState(int maxPayload, IFuseReplyChannel channel)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayload, 8192);
        ReplyCapacity = Raw.FuseReplyEncoder.HeaderSize + maxPayload;
        _reply = (byte*)NativeMemory.AlignedAlloc((nuint)ReplyCapacity, 4096);
        _iov = (FuseIoVec*)NativeMemory.AllocZeroed((nuint)(FuseReadReply.MaxSegments + 1), (nuint)sizeof(FuseIoVec));
        Channel = channel;
        ReadReply = new FuseReadReply(_reply + Raw.FuseReplyEncoder.HeaderSize, maxPayload, _iov);
        Directory = new FuseDirectoryBuffer();
    }

    public IFuseReplyChannel Channel { get; }

    public int ReplyCapacity { get; }

    public byte* Reply => _reply;

    public Span<byte> ReplySpan => new(_reply, ReplyCapacity);

    /// <summary>The payload area after the reply header.</summary>
    public byte* Payload => _reply + Raw.FuseReplyEncoder.HeaderSize;

    public int PayloadCapacity => ReplyCapacity - Raw.FuseReplyEncoder.HeaderSize;

    public Span<byte> PayloadSpan => new(Payload, PayloadCapacity);

    public FuseIoVec* IoVecs => _iov;

    public FuseReadReply ReadReply { get; }

    public FuseDirectoryBuffer Directory { get; }

    /// <summary>Set once the current request has been answered, so that a late failure cannot answer twice.</summary>
    public bool Replied { get; set; }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_reply);
        NativeMemory.Free(_iov);
        _reply = null;
        _iov = null;
    }
}
