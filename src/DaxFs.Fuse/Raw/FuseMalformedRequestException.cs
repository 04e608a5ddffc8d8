namespace DaxFs.Fuse.Raw;

/// <summary>FuseMalformedRequestException -- a request did not hold what its opcode promises (too short, an
/// unterminated or invalid name, a length pointing past the end). Thrown by the request reader and caught by the
/// dispatcher, which answers with <see cref="Errno"/>; it never leaves the dispatcher.</summary>
internal sealed class FuseMalformedRequestException(Errno errno, string message) : Exception(message)
{
    /// <summary>The error the request is answered with.</summary>
    public Errno Errno { get; } = errno;
}
