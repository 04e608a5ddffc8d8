using DaxFs.Format;

namespace DaxFs.Iomap;

/// <summary>What a caller of <see cref="Iomap.Begin"/> is about to do with the range.</summary>
internal enum IomapIntent
{
    /// <summary>Read: holes and unwritten extents read as zeros.</summary>
    Read,
    /// <summary>Write: the caller stores into the returned extent.</summary>
    Write,
    /// <summary>Make a range read as zeros.</summary>
    Zero,
    /// <summary>Map it into a program's address space.</summary>
    Map,
}

/// <summary>One extent of a file as iomap reports it: what backs [FileOffset, FileOffset+Length), and where on
/// the device (for Mapped and Unwritten).</summary>
/// <param name="Kind">Hole, unwritten or mapped.</param>
/// <param name="FileOffset">Start in the file, in bytes.</param>
/// <param name="Length">Bytes, never 0, never past the requested range.</param>
/// <param name="DevOffset">Device byte offset of <paramref name="FileOffset"/> (0 for holes).</param>
internal readonly record struct IomapExtent(MapKind Kind, long FileOffset, long Length, long DevOffset);

/// <summary>Iomap -- the one mapping step every data path loops over, as fs/iomap does: Begin(offset, length,
/// intent) returns one extent (its actual length, never more than asked); the caller acts on it; End is told how
/// much was done; repeat until the range is covered. Read, write, zeroing, SEEK_DATA/HOLE and (later) mapping are
/// all bodies of this loop. Writes add a planning step (copy on write, or in place beyond EOF and in unwritten
/// extents) in <see cref="DaxVolume"/>'s write path, which then reports through the same extents.</summary>
internal static class Iomap
{
    /// <summary>The extent at <paramref name="offset"/> of a file whose block map is <paramref name="map"/>, clipped
    /// to <paramref name="length"/> bytes.</summary>
    public static IomapExtent Begin(ExtentMap map, long offset, long length, IomapIntent intent)
    {
        _ = intent;
        long block = offset >> Layout.BlockShift;
        long within = offset & (Layout.BlockSize - 1);
        long maxBlocks = (within + length + Layout.BlockSize - 1) >> Layout.BlockShift;
        var (kind, dev, count) = map.Lookup(block, maxBlocks);
        long bytes = Math.Min(length, count * Layout.BlockSize - within);
        return new IomapExtent(kind, offset, bytes, kind == MapKind.Hole ? 0 : dev * Layout.BlockSize + within);
    }

    /// <summary>Runs <paramref name="body"/> over every extent of [offset, offset+length); the body returns how many
    /// bytes it handled (End), which must be the extent's length for the loop to go on.</summary>
    public static void Iterate(ExtentMap map, long offset, long length, IomapIntent intent, Func<IomapExtent, long> body)
    {
        while (length > 0)
        {
            IomapExtent e = Begin(map, offset, length, intent);
            long done = body(e);
            if (done <= 0)
                return;
            offset += done;
            length -= done;
        }
    }
}
