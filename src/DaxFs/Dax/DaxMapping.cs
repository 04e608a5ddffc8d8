using System.Buffers;
using DaxFs.Namespace;
using DaxFs.Pmem;

namespace DaxFs;

/// <summary>Read or read-write access of a mapping.</summary>
public enum MapAccess
{
    /// <summary>Loads only; holes and unwritten extents show zero pages (no space is allocated).</summary>
    Read,

    /// <summary>Loads and stores; every block under the range is allocated and zeroed before Map returns.</summary>
    ReadWrite,
}

/// <summary>Which page sizes a mapping may use.</summary>
public enum MapPages
{
    /// <summary>2 MiB pages wherever file offset, device offset and extent allow and the backing has them; 4 KiB pages
    /// elsewhere.</summary>
    Largest,

    /// <summary>4 KiB pages only, even where a 2 MiB page could be used (counted under
    /// <see cref="MapStatistics.SmallPagesRequested"/>).</summary>
    Small,
}

/// <summary>How stores through a mapping become durable.</summary>
public enum MapMode
{
    /// <summary>MAP_SYNC's meaning: the block map under the range is committed when Map returns and cannot move while
    /// the mapping lives; the program makes its stores durable with cache flushes alone (<see cref="DaxMapping.Persist"/>:
    /// no syscall, no journal). Needs a pmem (Byte/CacheLine) device.</summary>
    Sync,

    /// <summary>Stores become durable at fsync (<see cref="DaxFile.Flush"/>) or unmap; the volume tracks what may be
    /// dirty (<see cref="DirtyTracking"/>).</summary>
    Async,
}

/// <summary>How the volume finds what async mappings dirtied (seed 000's question, settled by measurement).</summary>
public enum DirtyTracking
{
    /// <summary>Coarse: a writable mapping marks the 2 MiB device extents under it dirty; fsync writes back the marked
    /// extents of the file; unmapping writes them back and marks them clean. No faults, no page-table walks.</summary>
    Extent,

    /// <summary>Page-precise: pages are write-protected (userfaultfd, asynchronous mode); fsync asks the kernel which
    /// were written (PAGEMAP_SCAN) and writes back only those. Costs a fault on the first store to each clean page and
    /// 4 KiB mappings (protection splits 2 MiB ones); needs Linux 6.7+; not offered for DAX mappings (device-dax,
    /// MAP_SYNC files), where the volume keeps the extent policy and says why.</summary>
    Page,

    /// <summary>Page-precise, logged at the fault: the first store to a clean page traps to a handler thread
    /// (userfaultfd, synchronous write-protect mode) that logs the page and lets the store go on; fsync writes back
    /// the logged pages and protects them again without walking the page tables, so it costs what was written, not
    /// the mapping's size. The first store to each clean page after an fsync costs a round trip to the handler thread
    /// (more than <see cref="Page"/>'s in-kernel fault). Same availability as <see cref="Page"/>.</summary>
    PageFault,
}

/// <summary>How a mapping is backed by the MMU.</summary>
/// <param name="PmdBytes">Bytes the kernel maps with 2 MiB pages (from /proc/self/smaps).</param>
/// <param name="PteBytes">Bytes mapped with 4 KiB pages.</param>
/// <param name="PlannedPmdBytes">Bytes whose file offset, device offset and extent allowed a 2 MiB mapping.</param>
public readonly record struct MappingGranularity(long PmdBytes, long PteBytes, long PlannedPmdBytes);

/// <summary>Volume-wide counters of the mapping path: 2 MiB units and 4 KiB pages mapped, and why units fell back.</summary>
/// <param name="PmdMapped">2 MiB units planned as PMD mappings.</param>
/// <param name="PteMapped">4 KiB pages mapped as PTEs.</param>
/// <param name="FallbackMisalignedFileOffset">2 MiB units the mapping range covers only in part.</param>
/// <param name="FallbackMisalignedExtent">Units whose device offset is not congruent to the file offset modulo 2 MiB.</param>
/// <param name="FallbackShortExtent">Units not covered by one extent.</param>
/// <param name="FallbackNoHugePages">Units that qualified but whose backing has no 2 MiB pages.</param>
/// <param name="SmallPagesRequested">Units that qualified but whose mapping asked for 4 KiB pages (<see cref="MapPages.Small"/>).</param>
public readonly record struct MapStatistics(long PmdMapped, long PteMapped, long FallbackMisalignedFileOffset, long FallbackMisalignedExtent,
    long FallbackShortExtent, long FallbackNoHugePages, long SmallPagesRequested);

/// <summary>One run of a mapping's window: device bytes, or zero pages (DevOffset -1).</summary>
internal struct MapPiece(long windowOffset, long devOffset, long length)
{
    public long WindowOffset = windowOffset;
    public long DevOffset = devOffset;
    public long Length = length;
}

/// <summary>DaxMapping -- a file's bytes on the media as memory: loads and stores reach the device with no page cache
/// and no copy. Dispose unmaps (async mappings are written back first).</summary>
public sealed class DaxMapping : IDisposable
{
    private readonly DaxVolume _volume;
    internal readonly Inode Inode;
    internal readonly PmemWindow Window;
    internal readonly long WindowFileOffset;   // file offset of window byte 0 (4 KiB aligned)
    internal readonly List<MapPiece> Pieces;
    internal readonly long PlannedPmdBytes;
    internal readonly HashSet<int> DirtyExtents = [];   // Extent tracking: device extents this mapping marked
    internal bool PageTracked;
    private int _disposed;
    private readonly bool _persistThroughWindow; // sync, and backed by the device throughout: Persist's fast path
    private readonly long _windowBase;           // window offset of the mapping's byte 0

    internal DaxMapping(DaxVolume volume, Inode inode, long fileOffset, long length, MapAccess access, MapMode mode, PmemWindow window,
        long windowFileOffset, List<MapPiece> pieces, long plannedPmdBytes)
    {
        _volume = volume;
        Inode = inode;
        FileOffset = fileOffset;
        Length = length;
        Access = access;
        Mode = mode;
        Window = window;
        WindowFileOffset = windowFileOffset;
        Pieces = pieces;
        PlannedPmdBytes = plannedPmdBytes;
        _persistThroughWindow = mode == MapMode.Sync && pieces.TrueForAll(p => p.DevOffset >= 0);
        _windowBase = fileOffset - windowFileOffset;
    }

    /// <summary>File offset of the first mapped byte.</summary>
    public long FileOffset { get; }

    /// <summary>Bytes mapped.</summary>
    public long Length { get; }

    /// <summary>Read or read-write.</summary>
    public MapAccess Access { get; }

    /// <summary>Sync or async.</summary>
    public MapMode Mode { get; }

    /// <summary>The inode mapped.</summary>
    public ulong Ino => Inode.Ino;

    /// <summary>Address of the byte at <see cref="FileOffset"/>.</summary>
    public nint Pointer => Window.Address + (nint)(FileOffset - WindowFileOffset);

    /// <summary>Bytes [offset, offset+length) of the mapping (relative to <see cref="FileOffset"/>), for loads and
    /// stores; read-only mappings throw (use <see cref="GetReadOnlySpan"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public Span<byte> GetSpan(long offset, int length)
    {
        CheckRange(offset, length);
        return Window.GetSpan(_windowBase + offset, length);
    }

    /// <summary>Bytes [offset, offset+length) of the mapping, for loads.</summary>
    public ReadOnlySpan<byte> GetReadOnlySpan(long offset, int length)
    {
        CheckRange(offset, length);
        return Window.GetReadOnlySpan(FileOffset - WindowFileOffset + offset, length);
    }

    /// <summary>The whole mapping as <see cref="Memory{T}"/> (mappings of at most 2 GiB).</summary>
    public Memory<byte> Memory
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (Length > int.MaxValue)
                throw new InvalidOperationException($"a {Length}-byte mapping is too large for Memory<byte> (2 GiB at most): use GetSpan");
            return Window.CreateMemoryManager(FileOffset - WindowFileOffset, (int)Length).Memory;
        }
    }

    /// <summary>Writes back the cache lines of [offset, offset+length) (no fence): CLWB on pmem, msync on Page devices.</summary>
    public void Flush(long offset, long length)
    {
        CheckRange(offset, length);
        long w = FileOffset - WindowFileOffset + offset, end = w + length;
        // Pieces are in window order: start at the one holding w (a fragmented file has thousands), and write back
        // through the window's addresses, the ones the program stored through.
        for (int k = FirstPieceAt(w); k < Pieces.Count; k++)
        {
            MapPiece p = Pieces[k];
            if (p.WindowOffset >= end)
                break;
            long a = Math.Max(w, p.WindowOffset), b = Math.Min(end, p.WindowOffset + p.Length);
            if (a < b && p.DevOffset >= 0)
                Window.Flush(a, p.DevOffset + (a - p.WindowOffset), b - a);
        }
    }

    /// <summary>Index of the piece holding window offset <paramref name="w"/> (binary search).</summary>
    private int FirstPieceAt(long w)
    {
        int lo = 0, hi = Pieces.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (Pieces[mid].WindowOffset <= w)
                lo = mid;
            else
                hi = mid - 1;
        }
        return lo;
    }

    /// <summary>Waits until earlier write-backs are durable (SFENCE).</summary>
    public void Drain() => _volume.Device.Drain();

    /// <summary>Makes stores to [offset, offset+length) durable: <see cref="Flush"/> then <see cref="Drain"/>. On a sync
    /// mapping this is all a program needs: no syscall, no journal.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void Persist(long offset, long length)
    {
        // A sync mapping's window is the device's bytes throughout: write back through the address the program stored
        // through, and fence (the device declines when it must see device offsets, for a long range or msync).
        if (_persistThroughWindow && _disposed == 0 && (ulong)offset <= (ulong)Length && (ulong)length <= (ulong)(Length - offset)
            && Window.TryPersist(_windowBase + offset, length))
            return;
        PersistGeneral(offset, length);
    }

    /// <summary>Persist's general path (kept out of line, so that the fast path inlined into a program's store loop
    /// stays short): flush piece by piece through device offsets (msync on Page devices), then drain.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void PersistGeneral(long offset, long length)
    {
        Flush(offset, length);
        Drain();
    }

    /// <summary>Copies <paramref name="data"/> into the mapping at <paramref name="offset"/> and returns once it is
    /// durable, like PMDK's pmem_memcpy_persist: the same effect as <see cref="GetSpan"/> + copy + <see cref="Persist"/>,
    /// but from the device's non-temporal crossover on (64 B on this kind of machine) the bytes go to the media with
    /// non-temporal stores, without first reading the destination lines into the cache; one fence. On a Page device it
    /// is a copy and an msync.</summary>
    public void CopyPersist(long offset, ReadOnlySpan<byte> data)
    {
        CheckRange(offset, data.Length);
        if (Access != MapAccess.ReadWrite)
            throw new InvalidOperationException("the mapping is read-only");
        long w = FileOffset - WindowFileOffset + offset, end = w + data.Length;
        for (int k = FirstPieceAt(w); k < Pieces.Count && data.Length > 0; k++)
        {
            MapPiece p = Pieces[k];
            if (p.WindowOffset >= end)
                break;
            long a = Math.Max(w, p.WindowOffset), b = Math.Min(end, p.WindowOffset + p.Length);
            if (a >= b)
                continue;
            // A writable window is device-backed throughout (Map fills holes first).
            if (p.DevOffset < 0)
                throw new InvalidOperationException($"window bytes [{a}, {b}) are not backed by the device");
            _volume.Device.Copy(p.DevOffset + (a - p.WindowOffset), data.Slice((int)(a - w), (int)(b - a)), PersistFlags.NoDrain);
        }
        Drain();
    }

    /// <summary>How the MMU maps the window now (reads /proc/self/smaps).</summary>
    public MappingGranularity Granularity
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            long pmd = Window.HugeMappedBytes();
            long mapped = Pieces.Where(p => p.DevOffset >= 0).Sum(p => p.Length);
            return new MappingGranularity(pmd, Math.Max(0, mapped - pmd), PlannedPmdBytes);
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void CheckRange(long offset, long length)
    {
        if (_disposed != 0 || offset < 0 || length < 0 || offset > Length - length)
            ThrowBadRange(offset, length);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ThrowBadRange(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, +{length}) is outside the {Length}-byte mapping");
    }

    /// <summary>Unmaps; an async writable mapping is written back first.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            _volume.Unmap(this);
    }
}
