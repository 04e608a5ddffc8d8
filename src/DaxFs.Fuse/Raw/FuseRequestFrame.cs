using System.Runtime.InteropServices;

namespace DaxFs.Fuse.Raw;

/// <summary>FuseFrameStatus -- what the framing check made of a buffer read from /dev/fuse.</summary>
internal enum FuseFrameStatus
{
    /// <summary>A well-formed header; the body is the rest of the request.</summary>
    Ok,
    /// <summary>Malformed, but the unique is readable: answer the error.</summary>
    Reply,
    /// <summary>Too short to even name the request (under 16 bytes): nothing can be answered.</summary>
    Drop,
}

/// <summary>FuseRequestFrame -- splits a request into fuse_in_header and body, checking the header's length
/// field against the bytes actually read and cutting off trailing extension records.</summary>
internal static class FuseRequestFrame
{
    /// <summary>sizeof(struct fuse_in_header).</summary>
    public const int HeaderSize = 40;

    // Offset of fuse_in_header.unique: with at least this much plus 8 the request can still be answered.
    private const int UniqueEnd = 16;

    /// <summary>Checks <paramref name="request"/>: header present, len equal to the bytes read, extensions
    /// inside the request. On <see cref="FuseFrameStatus.Reply"/>, <paramref name="header"/>.Unique and
    /// <paramref name="error"/> say what to answer.</summary>
    public static FuseFrameStatus Parse(ReadOnlySpan<byte> request, out FuseInHeader header,
        out ReadOnlySpan<byte> body, out Errno error, out string? problem)
    {
        header = default;
        body = default;
        error = 0;
        problem = null;
        if (request.Length < UniqueEnd)
        {
            problem = $"request of {request.Length} bytes has no header";
            return FuseFrameStatus.Drop;
        }
        if (request.Length < HeaderSize)
        {
            header.Unique = MemoryMarshal.Read<ulong>(request[8..]);
            header.Opcode = MemoryMarshal.Read<uint>(request[4..]);
            return Fail(Errno.EIO, $"request of {request.Length} bytes is shorter than fuse_in_header", out error,
                out problem);
        }
        header = MemoryMarshal.Read<FuseInHeader>(request);
        if (header.Len != (uint)request.Length)
            return Fail(Errno.EIO, $"header says {header.Len} bytes, {request.Length} were read", out error,
                out problem);
        int extensions = header.TotalExtLen * 8;
        int bodyLength = request.Length - HeaderSize - extensions;
        if (bodyLength < 0)
            return Fail(Errno.EIO, $"extensions of {extensions} bytes pass the end of the request", out error,
                out problem);
        body = request.Slice(HeaderSize, bodyLength);
        return FuseFrameStatus.Ok;
    }

    private static FuseFrameStatus Fail(Errno errno, string message, out Errno error, out string problem)
    {
        error = errno;
        problem = message;
        return FuseFrameStatus.Reply;
    }
}
