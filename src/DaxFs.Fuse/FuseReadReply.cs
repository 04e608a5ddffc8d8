using System.Runtime.InteropServices;

namespace DaxFs.Fuse;

/// <summary>FuseReadReply -- the data of a READ answer, built by <see cref="IFuseFileSystem.Read"/>. The data is
/// a sequence of pieces in file order: memory segments sent as they are (the file's bytes on the mapped media:
/// zero copies in user space, the kernel copies once into the reader's pages), bytes copied into a session
/// buffer, and zeros (holes). The session sends header and pieces with one writev(2) right after Read returns,
/// on the same thread; leases given to <see cref="Hold"/> are disposed after that send.</summary>
public sealed unsafe class FuseReadReply
{
    /// <summary>The most pieces one reply can have (the iovec array of one writev is at most IOV_MAX = 1024).</summary>
    public const int MaxSegments = 512;

    private const int ZeroBlockSize = 64 * 1024;
    private static readonly nint ZeroBlock = (nint)NativeMemory.AllocZeroed(ZeroBlockSize);

    private readonly byte* _scratch;
    private readonly int _scratchCapacity;
    private readonly FuseIoVec* _iov; // [0] is the reply header, [1..] the pieces
    private readonly List<IDisposable> _leases = [];
    private int _segments;
    private int _scratchUsed;

    internal FuseReadReply(byte* scratch, int scratchCapacity, FuseIoVec* iov)
    {
        _scratch = scratch;
        _scratchCapacity = scratchCapacity;
        _iov = iov;
    }

    /// <summary>The most bytes this reply may carry: the size the kernel asked for (a short reply means end of
    /// file).</summary>
    public int MaxLength { get; private set; }

    /// <summary>Bytes added so far.</summary>
    public int Length { get; private set; }

    /// <summary>Bytes that may still be added.</summary>
    public int Remaining => MaxLength - Length;

    /// <summary>Adds <paramref name="length"/> bytes at <paramref name="address"/>, sent without a copy. The
    /// memory must stay readable and unchanged until the reply is sent (see <see cref="Hold"/>).</summary>
    public void AddSegment(nint address, int length)
    {
        if (length == 0)
            return;
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (address == 0)
            throw new ArgumentException("a read segment at address 0", nameof(address));
        Reserve(length);
        Append(address, length);
    }

    /// <summary>Adds a copy of <paramref name="data"/> (for data that is not in stable memory).</summary>
    public void AddBytes(ReadOnlySpan<byte> data) => data.CopyTo(AddBuffer(data.Length));

    /// <summary>Adds <paramref name="length"/> bytes and returns the session buffer that holds them, to be filled
    /// before Read returns (one copy: straight from the media into the buffer).</summary>
    public Span<byte> AddBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length == 0)
            return [];
        Reserve(length);
        if (_scratchUsed + length > _scratchCapacity)
            throw new InvalidOperationException($"read reply buffer of {_scratchCapacity} bytes is full");
        byte* start = _scratch + _scratchUsed;
        _scratchUsed += length;
        Append((nint)start, length);
        return new Span<byte>(start, length);
    }

    /// <summary>Adds <paramref name="length"/> zero bytes (a hole) without touching memory.</summary>
    public void AddZeros(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Reserve(length);
        while (length > 0)
        {
            int piece = Math.Min(length, ZeroBlockSize);
            Append(ZeroBlock, piece);
            length -= piece;
        }
    }

    /// <summary>Keeps <paramref name="lease"/> (a lock on the extents behind the segments, say) until the reply
    /// has been sent, then disposes it; also disposed if the reply fails.</summary>
    public void Hold(IDisposable lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        _leases.Add(lease);
    }

    internal int SegmentCount => _segments;

    internal void Reset(int maxLength)
    {
        MaxLength = Math.Min(maxLength, _scratchCapacity);
        Length = 0;
        _segments = 0;
        _scratchUsed = 0;
    }

    /// <summary>The iovec array: [0] reserved for the header, then <see cref="SegmentCount"/> pieces.</summary>
    internal FuseIoVec* IoVecs => _iov;

    internal void ReleaseLeases(Action<Exception> onError)
    {
        foreach (var lease in _leases)
        {
            try
            {
                lease.Dispose();
            }
            catch (Exception e)
            {
                onError(e);
            }
        }
        _leases.Clear();
    }

    private void Reserve(int length)
    {
        if (length > Remaining)
            throw new InvalidOperationException(
                $"read reply of {Length + (long)length} bytes exceeds the {MaxLength} bytes asked for");
    }

    private void Append(nint address, int length)
    {
        if (_segments > 0)
        {
            ref var last = ref _iov[_segments];
            if (last.Base + (nint)last.Length == address && address != ZeroBlock)
            {
                last.Length += (nuint)length;
                Length += length;
                return;
            }
        }
        if (_segments == MaxSegments)
            throw new InvalidOperationException($"read reply has more than {MaxSegments} pieces");
        _segments++;
        _iov[_segments] = new FuseIoVec(address, (nuint)length);
        Length += length;
    }
}

/// <summary>FuseIoVec -- struct iovec (16 bytes), one piece of a writev.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FuseIoVec(nint address, nuint length)
{
    public nint Base = address;
    public nuint Length = length;
}
