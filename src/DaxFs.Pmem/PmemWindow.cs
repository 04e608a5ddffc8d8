using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using DaxFs.Pmem.Interop;

namespace DaxFs.Pmem;

/// <summary>PmemWindow -- a reserved range of the process's address space into which parts of a device are mapped at
/// chosen places: the user-space counterpart of the DAX fault handler installing PTEs and PMDs. The device's own
/// mapping, every window and the read/write path share the same physical pages, so all of them see every store at
/// once. Windows are placed so that an address is 2 MiB-aligned exactly where the file offset it shows is.</summary>
public sealed unsafe class PmemWindow : IDisposable
{
    private const long Huge = 2 << 20;
    private readonly PmemDevice _device;
    private nint _reserve;
    private readonly nuint _reserveLength;
    private readonly bool _writable;
    private readonly bool _hugePages;

    /// <summary>Address of byte 0 of the window.</summary>
    public nint Address { get; }

    /// <summary>Bytes of the window.</summary>
    public long Length { get; }

    /// <summary>Mapping calls made into this window (what counts against vm.max_map_count, before the kernel merges
    /// neighbours).</summary>
    public int MapCalls { get; private set; }

    private PmemWindow(PmemDevice device, long length, long phase, bool writable, bool hugePages)
    {
        _device = device;
        _writable = writable;
        _hugePages = hugePages;
        Length = length;
        _reserveLength = (nuint)(length + Huge);
        _reserve = Libc.MMap(0, _reserveLength, Libc.PROT_NONE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
        if (_reserve == Libc.MAP_FAILED)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"cannot reserve {length} bytes of address space for a mapping: {text}", errno);
        }
        long p = phase & (Huge - 1);
        long a = ((long)_reserve - p + Huge - 1) / Huge * Huge + p;
        Address = (nint)a;
    }

    /// <summary>Reserves a window of <paramref name="length"/> bytes whose address is congruent to
    /// <paramref name="phase"/> modulo 2 MiB (the file offset of the window's first byte). With
    /// <paramref name="hugePages"/> false every run is mapped with 4 KiB pages (MADV_NOHUGEPAGE), even where the
    /// backing has 2 MiB pages and the run is aligned.</summary>
    public static PmemWindow Reserve(PmemDevice device, long length, long phase, bool writable, bool hugePages = true)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (length <= 0 || (length & 4095) != 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"a window is a positive number of 4 KiB pages, not {length} bytes");
        if (writable && device.IsReadOnly)
            throw new InvalidOperationException("a writable window of a read-only device");
        return new PmemWindow(device, length, phase, writable, hugePages);
    }

    /// <summary>Maps device bytes [devOffset, +length) at window offset <paramref name="windowOffset"/> (all 4 KiB
    /// aligned), pre-faulted, with huge pages advised so that 2 MiB-aligned runs get PMD mappings where the backing
    /// has huge pages (or refused, for a window reserved without huge pages).</summary>
    public void MapDevice(long windowOffset, long devOffset, long length)
    {
        Check(windowOffset, length);
        if (devOffset < 0 || devOffset > _device.Length - length || (devOffset & 4095) != 0)
            throw new ArgumentOutOfRangeException(nameof(devOffset), $"device range [{devOffset}, +{length}) is not 4 KiB pages of the device");
        int prot = _writable ? Libc.PROT_READ | Libc.PROT_WRITE : Libc.PROT_READ;
        int flags = (_device.Info.MapSync ? Libc.MAP_SHARED_VALIDATE | Libc.MAP_SYNC : Libc.MAP_SHARED) | Libc.MAP_FIXED | Libc.MAP_POPULATE;
        nint at = Address + (nint)windowOffset;
        // Why MADV_HUGEPAGE before the populate: shmem backing (tmpfs, memfd) installs PMDs at fault time only for
        // VMAs that asked, and MAP_POPULATE faults the whole range in at once. MADV_NOHUGEPAGE makes the fault map a
        // 2 MiB page of the backing with 4 KiB entries.
        nint p = Libc.MMap(at, (nuint)length, prot, flags & ~Libc.MAP_POPULATE, _device.FileDescriptor, devOffset);
        if (p == Libc.MAP_FAILED)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"cannot map device bytes [{devOffset}, +{length}) into a window: {text}" +
                (errno == Libc.ENOMEM ? " (too many mappings for vm.max_map_count?)" : ""), errno);
        }
        MapCalls++;
        Libc.MAdvise(at, (nuint)length, _hugePages ? Libc.MADV_HUGEPAGE : Libc.MADV_NOHUGEPAGE);
        Populate(at, length);
    }

    /// <summary>Maps read-only zero pages at [windowOffset, +length): holes and unwritten extents of a read mapping.</summary>
    public void MapZeros(long windowOffset, long length)
    {
        Check(windowOffset, length);
        nint at = Address + (nint)windowOffset;
        nint p = Libc.MMap(at, (nuint)length, Libc.PROT_READ, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_FIXED, -1, 0);
        if (p == Libc.MAP_FAILED)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"cannot map zero pages into a window: {text}", errno);
        }
        MapCalls++;
    }

    /// <summary>Faults a mapped range in (MADV_POPULATE_WRITE/READ: page tables filled now, so that loads and stores
    /// never take a fault later, as on a DAX mapping with MAP_POPULATE).</summary>
    private void Populate(nint at, long length)
    {
        const int MADV_POPULATE_READ = 22, MADV_POPULATE_WRITE = 23;
        // Write-populate pmem (no write fault ever after); read-populate msync-backed files, whose pages a write fault
        // must still mark dirty for the kernel's writeback.
        bool write = _writable && _device.Granularity != Granularity.Page;
        if (Libc.MAdvise(at, (nuint)length, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) != 0)
        {
            var (errno, text) = Libc.LastError();
            if (errno != Libc.EINVAL)
                throw new PmemException($"cannot fault a mapping in: {text}", errno);
        }
    }

    /// <summary>Writes back window bytes [windowOffset, windowOffset+length), which show device bytes [devOffset,
    /// devOffset+length), through the window's own addresses (no fence; the device's observer hears the device range).</summary>
    public void Flush(long windowOffset, long devOffset, long length)
    {
        if (windowOffset < 0 || length < 0 || windowOffset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(windowOffset), $"range [{windowOffset}, +{length}) is outside the {Length}-byte window");
        ObjectDisposedException.ThrowIf(_reserve == 0, this);
        _device.FlushThrough((byte*)(Address + (nint)windowOffset), devOffset, length);
    }

    /// <summary>Makes window bytes [windowOffset, +length) durable -- write-back through the window's addresses and a
    /// fence -- when the whole range is backed by the device (the caller knows) and the device allows it without
    /// device offsets; false, having done nothing, otherwise (an observer watches the device, a long range, a Page
    /// device): then the caller flushes piece by piece.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPersist(long windowOffset, long length)
    {
        if (windowOffset < 0 || length < 0 || windowOffset > Length - length || _reserve == 0)
            return false;
        return _device.TryPersistMapped((byte*)(Address + (nint)windowOffset), length);
    }

    /// <summary>Bytes [offset, offset+length) of the window.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> GetSpan(long offset, int length)
    {
        // One branch on the store path (a program's GetSpan + copy + Persist); the reasons are sorted out off it.
        if (offset < 0 || length < 0 || offset > Length - length || _reserve == 0 || !_writable)
            ThrowBadSpan(offset, length);
        return new Span<byte>((void*)(Address + (nint)offset), length);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadSpan(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, +{length}) is outside the {Length}-byte window");
        ObjectDisposedException.ThrowIf(_reserve == 0, this);
        throw new InvalidOperationException("the mapping is read-only: use GetReadOnlySpan");
    }

    /// <summary>Bytes [offset, offset+length) of the window, for reading.</summary>
    public ReadOnlySpan<byte> GetReadOnlySpan(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, +{length}) is outside the {Length}-byte window");
        ObjectDisposedException.ThrowIf(_reserve == 0, this);
        return new ReadOnlySpan<byte>((void*)(Address + (nint)offset), length);
    }

    /// <summary>A <see cref="MemoryManager{T}"/> over [offset, offset+length) (at most 2 GiB).</summary>
    public MemoryManager<byte> CreateMemoryManager(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, +{length}) is outside the {Length}-byte window");
        return new WindowMemory(this, (byte*)(Address + (nint)offset), length);
    }

    /// <summary>Bytes of the window the kernel maps with 2 MiB pages now (FilePmdMapped + ShmemPmdMapped of the
    /// window's VMAs in /proc/self/smaps; DAX devices report FilePmdMapped).</summary>
    public long HugeMappedBytes()
    {
        long lo = Address, hi = Address + (nint)Length, total = 0;
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            if (line.Length > 0 && char.IsAsciiHexDigit(line[0]) && line.Contains('-', StringComparison.Ordinal))
            {
                int dash = line.IndexOf('-', StringComparison.Ordinal), sp = line.IndexOf(' ', StringComparison.Ordinal);
                long start = long.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                long end = long.Parse(line.AsSpan(dash + 1, sp - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                inside = start >= lo && end <= hi;
                continue;
            }
            if (inside && (line.StartsWith("FilePmdMapped:", StringComparison.Ordinal) || line.StartsWith("ShmemPmdMapped:", StringComparison.Ordinal)))
            {
                string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                total += long.Parse(f[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        return total;
    }

    /// <summary>Unmaps the window (and its reservation's unused ends).</summary>
    public void Dispose()
    {
        nint r = Interlocked.Exchange(ref _reserve, 0);
        if (r != 0)
            Libc.MUnmap(r, _reserveLength);
    }

    private void Check(long windowOffset, long length)
    {
        ObjectDisposedException.ThrowIf(_reserve == 0, this);
        if (windowOffset < 0 || length <= 0 || windowOffset > Length - length || ((windowOffset | length) & 4095) != 0)
            throw new ArgumentOutOfRangeException(nameof(windowOffset), $"window range [{windowOffset}, +{length}) is not 4 KiB pages of the {Length}-byte window");
    }

    /// <summary>The kernel's limit on mappings per process and how many this process has now.</summary>
    public static (long Limit, long InUse) MapCountLimit()
    {
        long limit = 65530;
        try
        {
            limit = long.Parse(File.ReadAllText("/proc/sys/vm/max_map_count").Trim(), CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
        }
        long used = File.ReadLines("/proc/self/maps").LongCount();
        return (limit, used);
    }

    /// <summary>Memory&lt;byte&gt; over part of a window.</summary>
    private sealed class WindowMemory(PmemWindow window, byte* pointer, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan()
        {
            ObjectDisposedException.ThrowIf(window._reserve == 0, window);
            return new Span<byte>(pointer, length);
        }

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            if ((uint)elementIndex > (uint)length)
                throw new ArgumentOutOfRangeException(nameof(elementIndex));
            return new MemoryHandle(pointer + elementIndex);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
