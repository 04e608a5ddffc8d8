using System.Text;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

/// <summary>FuseDirectoryBuffer -- the answer to READDIR/READDIRPLUS, filled by
/// <see cref="IFuseFileSystem.ReadDir"/> one entry at a time until it is full. In READDIRPLUS mode the session
/// completes each entry (except "." and "..") with <see cref="IFuseFileSystem.Lookup"/> after ReadDir returns, so
/// the file system never sees the difference and its lookup counts stay right.</summary>
public sealed unsafe class FuseDirectoryBuffer
{
    private readonly List<PendingLookup> _pending = [];
    private byte* _buffer;
    private int _capacity;

    internal FuseDirectoryBuffer()
    {
    }

    /// <summary>True when the kernel asked for READDIRPLUS (entries with attributes).</summary>
    public bool IsPlus { get; private set; }

    /// <summary>Entries added so far.</summary>
    public int Count { get; private set; }

    /// <summary>Bytes used so far.</summary>
    internal int Length { get; private set; }

    internal IReadOnlyList<PendingLookup> PendingLookups => _pending;

    /// <summary>Adds an entry; false (nothing added) when it does not fit, which ends this ReadDir call. The kernel
    /// asks again from <paramref name="nextOffset"/> of the last entry it received.</summary>
    /// <param name="name">The entry's name (1..255 UTF-8 bytes, no '/').</param>
    /// <param name="ino">Its inode number.</param>
    /// <param name="mode">Its mode; only the S_IFMT type bits are used (0 = unknown).</param>
    /// <param name="nextOffset">The offset a later ReadDir starts at to return the entry after this one.</param>
    public bool TryAdd(string name, ulong ino, uint mode, long nextOffset)
    {
        ArgumentNullException.ThrowIfNull(name);
        int nameLength = Encoding.UTF8.GetByteCount(name);
        if (nameLength is 0 or > FuseKernel.NameMax || name.Contains('/', StringComparison.Ordinal))
            throw new ArgumentException($"directory entry name '{name}' is empty, longer than 255 bytes or has '/'",
                nameof(name));
        int size = IsPlus ? FuseReplyEncoder.DirentPlusSize(nameLength) : FuseReplyEncoder.DirentSize(nameLength);
        if (Length + size > _capacity)
            return false;
        var destination = new Span<byte>(_buffer + Length, size);
        Span<byte> nameBytes = stackalloc byte[FuseKernel.NameMax * 4];
        nameBytes = nameBytes[..Encoding.UTF8.GetBytes(name, nameBytes)];
        uint type = (mode >> 12) & 0xF; // DT_* = S_IFMT >> 12
        if (IsPlus)
        {
            FuseReplyEncoder.WriteDirentPlus(destination, default, ino, (ulong)nextOffset, type, nameBytes);
            if (name is not ("." or ".."))
                _pending.Add(new PendingLookup(Length, name));
        }
        else
        {
            FuseReplyEncoder.WriteDirent(destination, ino, (ulong)nextOffset, type, nameBytes);
        }
        Length += size;
        Count++;
        return true;
    }

    internal void Reset(byte* buffer, int capacity, bool plus)
    {
        _buffer = buffer;
        _capacity = capacity;
        IsPlus = plus;
        Length = 0;
        Count = 0;
        _pending.Clear();
    }

    internal Span<byte> EntryOutAt(int position) => new(_buffer + position, FuseReplyEncoder.DirentPlusNameOffset);

    /// <summary>PendingLookup -- a READDIRPLUS record whose fuse_entry_out is still zero.</summary>
    internal readonly record struct PendingLookup(int Position, string Name);
}
