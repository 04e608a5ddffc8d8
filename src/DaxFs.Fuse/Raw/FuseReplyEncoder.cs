using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DaxFs.Fuse.Raw;

/// <summary>FuseReplyEncoder -- writes replies into a buffer: fuse_out_header, then a fixed struct, raw bytes,
/// or dirent records (8-byte aligned, zero padded).</summary>
internal static class FuseReplyEncoder
{
    /// <summary>sizeof(struct fuse_out_header).</summary>
    public const int HeaderSize = 16;

    /// <summary>offsetof(struct fuse_dirent, name).</summary>
    public const int DirentNameOffset = 24;

    /// <summary>offsetof(struct fuse_direntplus, dirent.name).</summary>
    public const int DirentPlusNameOffset = 152;

    /// <summary>Writes the header; returns its size.</summary>
    public static int WriteHeader(Span<byte> destination, int totalLength, int error, ulong unique)
    {
        var header = new FuseOutHeader { Len = (uint)totalLength, Error = error, Unique = unique };
        MemoryMarshal.Write(destination, in header);
        return HeaderSize;
    }

    /// <summary>An error reply (header only, error = -errno); returns its length.</summary>
    public static int WriteError(Span<byte> destination, ulong unique, Errno errno) =>
        WriteHeader(destination, HeaderSize, -(int)errno, unique);

    /// <summary>A success reply with <paramref name="body"/>; returns its length.</summary>
    public static int WriteStruct<T>(Span<byte> destination, ulong unique, in T body) where T : unmanaged
    {
        int length = HeaderSize + Unsafe.SizeOf<T>();
        WriteHeader(destination, length, 0, unique);
        MemoryMarshal.Write(destination[HeaderSize..], in body);
        return length;
    }

    /// <summary>A success reply carrying <paramref name="data"/> as is; returns its length.</summary>
    public static int WriteBytes(Span<byte> destination, ulong unique, ReadOnlySpan<byte> data)
    {
        int length = HeaderSize + data.Length;
        WriteHeader(destination, length, 0, unique);
        data.CopyTo(destination[HeaderSize..]);
        return length;
    }

    /// <summary>FUSE_REC_ALIGN: rounds a record length up to 8 bytes.</summary>
    public static int Align8(int length) => (length + 7) & ~7;

    /// <summary>FUSE_DIRENT_SIZE of a name of <paramref name="nameLength"/> bytes.</summary>
    public static int DirentSize(int nameLength) => Align8(DirentNameOffset + nameLength);

    /// <summary>FUSE_DIRENTPLUS_SIZE of a name of <paramref name="nameLength"/> bytes.</summary>
    public static int DirentPlusSize(int nameLength) => Align8(DirentPlusNameOffset + nameLength);

    /// <summary>One fuse_dirent record (header, name, zero padding); returns its size.</summary>
    public static int WriteDirent(Span<byte> destination, ulong ino, ulong nextOffset, uint type,
        ReadOnlySpan<byte> name)
    {
        int size = DirentSize(name.Length);
        var dirent = new FuseDirent { Ino = ino, Off = nextOffset, NameLen = (uint)name.Length, Type = type };
        MemoryMarshal.Write(destination, in dirent);
        name.CopyTo(destination[DirentNameOffset..]);
        destination[(DirentNameOffset + name.Length)..size].Clear();
        return size;
    }

    /// <summary>One fuse_direntplus record; returns its size.</summary>
    public static int WriteDirentPlus(Span<byte> destination, in FuseEntryOut entry, ulong ino, ulong nextOffset,
        uint type, ReadOnlySpan<byte> name)
    {
        int size = DirentPlusSize(name.Length);
        var record = new FuseDirentPlus
        {
            EntryOut = entry,
            Dirent = new FuseDirent { Ino = ino, Off = nextOffset, NameLen = (uint)name.Length, Type = type },
        };
        MemoryMarshal.Write(destination, in record);
        name.CopyTo(destination[DirentPlusNameOffset..]);
        destination[(DirentPlusNameOffset + name.Length)..size].Clear();
        return size;
    }
}
