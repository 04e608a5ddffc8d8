using System.Buffers.Binary;
using System.Text;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse.Tests;

/// <summary>RequestBuilder -- builds a request as the kernel lays it out: fuse_in_header (len filled in last)
/// then body fields, little-endian.</summary>
internal sealed class RequestBuilder
{
    private readonly List<byte> _bytes = [];

    public RequestBuilder(FuseOpcode opcode, ulong unique, ulong nodeId = 1, uint uid = 1000, uint gid = 1000,
        uint pid = 4242)
        : this((uint)opcode, unique, nodeId, uid, gid, pid)
    {
    }

    public RequestBuilder(uint opcode, ulong unique, ulong nodeId, uint uid = 1000, uint gid = 1000, uint pid = 4242)
    {
        U32(0).U32(opcode).U64(unique).U64(nodeId).U32(uid).U32(gid).U32(pid).U32(0);
    }

    public RequestBuilder U16(ushort v) => Add(BitConverter.GetBytes(v));
    public RequestBuilder U32(uint v) => Add(BitConverter.GetBytes(v));
    public RequestBuilder U64(ulong v) => Add(BitConverter.GetBytes(v));
    public RequestBuilder Zeros(int count) => Add(new byte[count]);
    public RequestBuilder Name(string name) => Add(Encoding.UTF8.GetBytes(name)).Add([0]);
    public RequestBuilder Bytes(ReadOnlySpan<byte> data) => Add(data.ToArray());

    public RequestBuilder Add(byte[] data)
    {
        _bytes.AddRange(data);
        return this;
    }

    /// <summary>The request with len = its real length.</summary>
    public byte[] Build() => BuildWithLength(null);

    /// <summary>The request with a chosen len field (for malformed fixtures).</summary>
    public byte[] BuildWithLength(uint? length)
    {
        byte[] result = [.. _bytes];
        BinaryPrimitives.WriteUInt32LittleEndian(result, length ?? (uint)result.Length);
        return result;
    }
}

/// <summary>RecordingChannel -- an IFuseReplyChannel that keeps every reply (the pieces joined) and can pretend
/// the kernel refused it (ENOENT: the request was interrupted).</summary>
internal sealed unsafe class RecordingChannel : IFuseReplyChannel
{
    public List<byte[]> Replies { get; } = [];
    public List<int> PieceCounts { get; } = [];
    public int NextResult { get; set; }

    public int Send(FuseIoVec* iov, int count)
    {
        var joined = new List<byte>();
        for (int i = 0; i < count; i++)
            joined.AddRange(new ReadOnlySpan<byte>((void*)iov[i].Base, (int)iov[i].Length).ToArray());
        Replies.Add([.. joined]);
        PieceCounts.Add(count);
        int result = NextResult;
        NextResult = 0;
        return result;
    }
}

/// <summary>DispatcherHarness -- a dispatcher over a MemoryFileSystem with a recording channel: send request
/// bytes, get reply bytes; no mount.</summary>
internal sealed class DispatcherHarness : IDisposable
{
    public DispatcherHarness(bool init = true, FuseMountOptions? options = null, IFuseFileSystem? fileSystem = null)
    {
        Log = new StringWriter();
        Fs = new MemoryFileSystem(options?.RootInode ?? 1);
        FileSystem = fileSystem ?? Fs;
        Options = options ?? new FuseMountOptions();
        Dispatcher = new FuseDispatcher(FileSystem, Options, new FuseLog(TextWriter.Synchronized(Log)));
        Channel = new RecordingChannel();
        State = new FuseWorkerState(Dispatcher.MaxReplyPayload, Channel);
        if (init)
        {
            var reply = Send(Fixtures.InitRequest(unique: 1));
            Assert.NotNull(reply);
            Assert.Equal(0, Error(reply));
        }
    }

    public StringWriter Log { get; }
    public MemoryFileSystem Fs { get; }
    public IFuseFileSystem FileSystem { get; }
    public FuseMountOptions Options { get; }
    public FuseDispatcher Dispatcher { get; }
    public RecordingChannel Channel { get; }
    public FuseWorkerState State { get; }
    public FuseDispatchResult LastResult { get; private set; }

    /// <summary>The reply to <paramref name="request"/>, or null if none was sent.</summary>
    public byte[]? Send(byte[] request)
    {
        int before = Channel.Replies.Count;
        LastResult = Dispatcher.Dispatch(request, State);
        return Channel.Replies.Count > before ? Channel.Replies[^1] : null;
    }

    /// <summary>Sends and asserts success; returns the reply payload (after the 16-byte header).</summary>
    public byte[] Ok(byte[] request)
    {
        var reply = Send(request) ?? throw new Xunit.Sdk.XunitException("no reply");
        Assert.True(Error(reply) == 0, $"errno {-Error(reply)}; log: {Log}");
        Assert.Equal((uint)reply.Length, BitConverter.ToUInt32(reply, 0));
        return reply[16..];
    }

    /// <summary>Sends and returns the errno of the reply (0 = success).</summary>
    public int Errno(byte[] request)
    {
        var reply = Send(request) ?? throw new Xunit.Sdk.XunitException("no reply");
        return -Error(reply);
    }

    public static int Error(byte[] reply) => BitConverter.ToInt32(reply, 4);
    public static ulong Unique(byte[] reply) => BitConverter.ToUInt64(reply, 8);

    public void Dispose()
    {
        State.Dispose();
        Fs.Dispose();
    }
}
