using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;

namespace DaxFs.Fuse.Raw;

/// <summary>FuseRequestReader -- a bounds-checked cursor over a request body: every read checks the remaining
/// length first and throws <see cref="FuseMalformedRequestException"/> (never reads past the span).</summary>
internal ref struct FuseRequestReader
{
    private readonly ReadOnlySpan<byte> _body;
    private int _position;

    /// <summary>A reader at the start of <paramref name="body"/> (the bytes after fuse_in_header).</summary>
    public FuseRequestReader(ReadOnlySpan<byte> body)
    {
        _body = body;
        _position = 0;
    }

    /// <summary>Bytes not yet consumed.</summary>
    public readonly int Remaining => _body.Length - _position;

    /// <summary>The next sizeof(T) bytes as a T.</summary>
    public T Read<T>() where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        var value = MemoryMarshal.Read<T>(Take(size, typeof(T).Name));
        return value;
    }

    /// <summary>A T of which the kernel may send a shorter, older form of at least <paramref name="minSize"/>
    /// bytes (fuse_init_in before 7.36): the missing tail reads as zeros.</summary>
    public T ReadPrefix<T>(int minSize) where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        int available = Math.Min(size, Remaining);
        if (available < minSize)
            throw Malformed(Errno.EINVAL, $"{typeof(T).Name} needs {minSize} bytes, {Remaining} left");
        T value = default;
        Take(available, typeof(T).Name).CopyTo(MemoryMarshal.AsBytes(new Span<T>(ref value)));
        return value;
    }

    /// <summary>The next <paramref name="count"/> bytes, in place (no copy).</summary>
    public ReadOnlySpan<byte> ReadBytes(long count)
    {
        if (count < 0 || count > Remaining)
            throw Malformed(Errno.EINVAL, $"a length of {count} bytes points past the request ({Remaining} left)");
        return Take((int)count, "payload");
    }

    /// <summary>A file name: NUL-terminated, 1..NAME_MAX bytes, no '/', valid UTF-8. "." and ".." pass (with
    /// export support the kernel looks them up).</summary>
    public string ReadName()
    {
        var raw = ReadTerminated("name");
        if (raw.Length == 0)
            throw Malformed(Errno.EINVAL, "empty name");
        if (raw.Length > FuseKernel.NameMax)
            throw Malformed(Errno.ENAMETOOLONG, $"name of {raw.Length} bytes");
        if (raw.IndexOf((byte)'/') >= 0)
            throw Malformed(Errno.EINVAL, "name contains '/'");
        return Decode(raw, "name");
    }

    /// <summary>An extended attribute name: NUL-terminated, 1..XATTR_NAME_MAX bytes, valid UTF-8.</summary>
    public string ReadXattrName()
    {
        var raw = ReadTerminated("xattr name");
        if (raw.Length == 0)
            throw Malformed(Errno.EINVAL, "empty xattr name");
        if (raw.Length > FuseKernel.XattrNameMax)
            throw Malformed(Errno.ERANGE, $"xattr name of {raw.Length} bytes");
        return Decode(raw, "xattr name");
    }

    /// <summary>A symlink target: NUL-terminated, 1..PATH_MAX-1 bytes, valid UTF-8.</summary>
    public string ReadPath()
    {
        var raw = ReadTerminated("symlink target");
        if (raw.Length == 0)
            throw Malformed(Errno.EINVAL, "empty symlink target");
        if (raw.Length >= FuseKernel.PathMax)
            throw Malformed(Errno.ENAMETOOLONG, $"symlink target of {raw.Length} bytes");
        return Decode(raw, "symlink target");
    }

    private ReadOnlySpan<byte> ReadTerminated(string what)
    {
        var rest = _body[_position..];
        int nul = rest.IndexOf((byte)0);
        if (nul < 0)
            throw Malformed(Errno.EINVAL, $"{what} is not NUL-terminated");
        _position += nul + 1;
        return rest[..nul];
    }

    private static string Decode(ReadOnlySpan<byte> raw, string what)
    {
        // Why strict: a lossy decode would map two different byte names to one string.
        if (!Utf8.IsValid(raw))
            throw Malformed(Errno.EINVAL, $"{what} is not valid UTF-8");
        return Encoding.UTF8.GetString(raw);
    }

    private ReadOnlySpan<byte> Take(int count, string what)
    {
        if (count > Remaining)
            throw Malformed(Errno.EINVAL, $"{what} needs {count} bytes, {Remaining} left");
        var span = _body.Slice(_position, count);
        _position += count;
        return span;
    }

    private static FuseMalformedRequestException Malformed(Errno errno, string message) => new(errno, message);
}
