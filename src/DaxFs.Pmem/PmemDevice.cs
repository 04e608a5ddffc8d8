using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using DaxFs.Pmem.Cpu;
using DaxFs.Pmem.Interop;

namespace DaxFs.Pmem;

/// <summary>PmemDevice -- a mapped range of (possibly emulated) persistent memory and the only way DaxFS stores
/// to it. Loads go through spans; stores through <see cref="Write(long, ReadOnlySpan{byte})"/>, <see cref="Copy"/>
/// and <see cref="Fill"/>; durability through <see cref="Flush"/>, <see cref="Drain"/> and <see cref="Persist"/>.
/// The granularity and the flush, copy and fill routines are chosen once at open and kept in function pointers,
/// so no call branches on the CPU or the granularity. Every call is bounds-checked.</summary>
/// <remarks>Safe for concurrent use by many threads on disjoint ranges. Spans handed out are valid until
/// <see cref="Dispose"/>; the caller must not use them after that.</remarks>
public sealed unsafe partial class PmemDevice : IDisposable
{
    /// <summary>Copies at least this long use non-temporal stores unless told otherwise. PMDK's default is 256 B
    /// (tuned on Optane); on this machine kind `daxfs bench pmem` measures streaming stores faster than cached
    /// stores + CLWB from one cache line up, for cold and for warm destinations (see the README).</summary>
    public const int DefaultNonTemporalThreshold = 64;

    /// <summary>The size of a cache line, the unit of write-back.</summary>
    public const int CacheLineSize = 64;

    // Why AggressiveOptimization on the primitives: they are the hot path of everything above, and a program's first
    // thousand fsyncs should not run unoptimized tier-0 code (measured: 130 ns instead of 40 ns for a 64 B persist).

    // Flushes longer than this are cut into pieces so that a GC is never held off for long by one call
    // into the flush routine, which runs without a GC transition.
    private const nuint FlushChunk = 1 << 20;

    private byte* _base;
    private long _length;          // 0 once disposed, so every later call fails its bounds check
    private long _writableLength;  // 0 for a read-only device, so every store fails its bounds check
    private readonly long _mappedLength;
    private readonly int _fd;
    private readonly int _pageSize;
    private readonly delegate*<PmemDevice, byte*, nuint, void> _flush;
    private readonly delegate*<PmemDevice, byte*, nuint, void> _invalidate;
    private readonly delegate* unmanaged[SuppressGCTransition]<byte*, nuint, void> _flushLines;
    private readonly delegate* unmanaged[SuppressGCTransition]<byte*, nuint, void> _evictLines;
    private readonly delegate*<byte*, byte*, nuint, void> _ntCopy;
    private readonly delegate*<byte*, byte, nuint, void> _ntFill;
    private readonly nuint _ntThreshold;
    private readonly bool _ntAllowed;
    private readonly bool _page;
    private IPmemObserver? _observer;
    private readonly DeviceInfo _info;

    /// <summary>Usable length in bytes.</summary>
    public long Length => _length;

    /// <summary>The persistence granularity, decided at open.</summary>
    public Granularity Granularity => _info.Granularity;

    /// <summary>The write-back instruction in force (Msync on Page devices).</summary>
    public FlushInstruction FlushInstruction => _info.Flush;

    /// <summary>What backs the device.</summary>
    public DeviceKind Kind => _info.Kind;

    /// <summary>Everything decided at open, and why.</summary>
    public DeviceInfo Info => _info;

    /// <summary>Whether stores are refused.</summary>
    public bool IsReadOnly => _writableLength == 0 && _length != 0;

    /// <summary>Address of byte 0 of the mapping, for code that must hand the kernel a pointer (FUSE replies,
    /// file mappings). Stores through it bypass the observer: use the store calls instead.</summary>
    public nint BaseAddress => (nint)_base;

    /// <summary>The descriptor of the backing file or memfd, from which file mappings map extents.</summary>
    public int FileDescriptor => _fd;

    /// <summary>The observer of every store, write-back and fence (crash simulator, lint, fault injection); null
    /// when unused, which costs one predictable branch per call.</summary>
    public IPmemObserver? Observer { get => _observer; set => _observer = value; }

    /// <summary>Bytes [offset, offset+length) of the media, for reading.</summary>
    public ReadOnlySpan<byte> GetSpan(long offset, int length) => new(At(offset, length), length);

    /// <summary>Copies device bytes starting at <paramref name="offset"/> into <paramref name="destination"/>.</summary>
    public void Read(long offset, Span<byte> destination) =>
        new ReadOnlySpan<byte>(At(offset, destination.Length), destination.Length).CopyTo(destination);

    /// <summary>The little-endian 64-bit value at <paramref name="offset"/> (one load, atomic when 8-aligned).</summary>
    public ulong ReadUInt64(long offset) => Volatile.Read(ref Unsafe.AsRef<ulong>(At(offset, 8)));

    /// <summary>The little-endian 32-bit value at <paramref name="offset"/>.</summary>
    public uint ReadUInt32(long offset) => Unsafe.ReadUnaligned<uint>(At(offset, 4));

    /// <summary>Stores <paramref name="source"/> with cached stores and does not write it back: the caller flushes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        byte* d = AtWritable(offset, source.Length);
        source.CopyTo(new Span<byte>(d, source.Length));
        if (_observer is not null && source.Length > 0)
            _observer.OnStore(offset, source.Length, false);
    }

    /// <summary>Stores one little-endian 64-bit value (a single store: atomic when 8-aligned); not written back.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteUInt64(long offset, ulong value)
    {
        Volatile.Write(ref Unsafe.AsRef<ulong>(AtWritable(offset, 8)), value);
        _observer?.OnStore(offset, 8, false);
    }

    /// <summary>Copies <paramref name="source"/> to the media: non-temporal stores at or above the threshold,
    /// cached stores plus write-back below it, then a fence; <paramref name="flags"/> change each step.
    /// <paramref name="source"/> must not overlap the destination.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Copy(long offset, ReadOnlySpan<byte> source, PersistFlags flags = PersistFlags.None)
    {
        byte* d = AtWritable(offset, source.Length);
        nuint n = (nuint)source.Length;
        bool nt = false;
        if (n != 0)
        {
            fixed (byte* s = source)
            {
                if ((flags & PersistFlags.NoFlush) != 0)
                    Buffer.MemoryCopy(s, d, n, n);
                else if (UseNonTemporal(n, flags))
                {
                    CopyNonTemporal(d, s, n);
                    nt = true;
                }
                else
                {
                    Buffer.MemoryCopy(s, d, n, n);
                    _flush(this, d, n);
                }
            }
        }
        if (_observer is not null)
            ObserveStore(offset, source.Length, flags, nt);
        if ((flags & (PersistFlags.NoDrain | PersistFlags.NoFlush)) == 0)
            Sse.StoreFence();
    }

    /// <summary>Copies <paramref name="source"/> to the media and returns once it is durable (pmem_memcpy_persist).</summary>
    public void CopyPersist(long offset, ReadOnlySpan<byte> source) => Copy(offset, source, PersistFlags.None);

    /// <summary>Sets [offset, offset+length) to <paramref name="value"/>, with the same strategy as <see cref="Copy"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Fill(long offset, long length, byte value, PersistFlags flags = PersistFlags.None)
    {
        byte* d = AtWritable(offset, length);
        nuint n = (nuint)length;
        bool nt = false;
        if (n != 0)
        {
            if ((flags & PersistFlags.NoFlush) != 0)
                NativeMemory.Fill(d, n, value);
            else if (UseNonTemporal(n, flags))
            {
                FillNonTemporal(d, value, n);
                nt = true;
            }
            else
            {
                NativeMemory.Fill(d, n, value);
                _flush(this, d, n);
            }
        }
        if (_observer is not null)
            ObserveStore(offset, length, flags, nt);
        if ((flags & (PersistFlags.NoDrain | PersistFlags.NoFlush)) == 0)
            Sse.StoreFence();
    }

    /// <summary>Sets [offset, offset+length) to <paramref name="value"/> and returns once it is durable.</summary>
    public void FillPersist(long offset, long length, byte value) => Fill(offset, length, value, PersistFlags.None);

    /// <summary>Writes back the cache lines of [offset, offset+length) and keeps them cached (CLWB where the CPU has
    /// it); msync of the covering pages on Page devices. Not ordered until <see cref="Drain"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Flush(long offset, long length)
    {
        byte* p = At(offset, length);
        if (length == 0)
            return;
        _flush(this, p, (nuint)length);
        _observer?.OnFlush(offset, length, false);
    }

    /// <summary>Persist of a short range a program stored through in a mapping of this device (a sync mapping's
    /// Persist): write-back through that address, then a fence, with no translation to device offsets. Returns false,
    /// having done nothing, when the caller must take the general path: an observer watches the device (it is told
    /// device offsets), the range is long, or the device is Page-granular (msync).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryPersistMapped(byte* mapped, long length)
    {
        if (_observer is not null || (ulong)length >= WindowFlushLimit || _page)
            return false;
        if (length > 0)
            _flush(this, mapped, (nuint)length);
        Sse.StoreFence();
        return true;
    }

    /// <summary>Ranges from this size on are written back through the device's own mapping even when a window's address
    /// is at hand: a window may be mapped with 4 KiB pages (page-tracked, misaligned), the device mapping with 2 MiB ones,
    /// and a long range costs a translation per page.</summary>
    internal const long WindowFlushLimit = 256 << 10;

    /// <summary>Writes back device bytes [offset, offset+length) through <paramref name="mapped"/>, the address of the
    /// same bytes in another mapping of the device (a <see cref="PmemWindow"/>): for a short range, the address a program
    /// just stored through, whose translation the TLB holds, rather than the device mapping's, which would cost a second
    /// translation (a page walk per random line). Long ranges and Page devices (msync) use the device mapping.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void FlushThrough(byte* mapped, long offset, long length)
    {
        byte* p = At(offset, length);
        if (length == 0)
            return;
        _flush(this, length >= WindowFlushLimit || Granularity == Granularity.Page ? p : mapped, (nuint)length);
        _observer?.OnFlush(offset, length, false);
    }

    /// <summary>Writes back and evicts the cache lines of [offset, offset+length) (CLFLUSHOPT, else CLFLUSH): for
    /// memory another agent will write behind the CPU's back. Not ordered until <see cref="Drain"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Invalidate(long offset, long length)
    {
        byte* p = At(offset, length);
        if (length == 0)
            return;
        _invalidate(this, p, (nuint)length);
        _observer?.OnFlush(offset, length, true);
    }

    /// <summary>Waits until every earlier write-back and non-temporal store is durable (SFENCE).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Drain()
    {
        _observer?.OnDrain();
        Sse.StoreFence();
    }

    /// <summary>Makes [offset, offset+length) durable: <see cref="Flush"/> then <see cref="Drain"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Persist(long offset, long length)
    {
        Flush(offset, length);
        Drain();
    }

    /// <summary>Whether a copy or fill of <paramref name="n"/> bytes uses streaming stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool UseNonTemporal(nuint n, PersistFlags flags) =>
        _ntAllowed && (flags & PersistFlags.Temporal) == 0 && ((flags & PersistFlags.NonTemporal) != 0 || n >= _ntThreshold);

    /// <summary>Cached stores for the unaligned head and tail (each written back), streaming stores between.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CopyNonTemporal(byte* d, byte* s, nuint n)
    {
        nuint head = (nuint)(-(nint)d & (CacheLineSize - 1));
        if (head > n)
            head = n;
        if (head != 0)
        {
            Buffer.MemoryCopy(s, d, head, head);
            _flush(this, d, head);
        }
        nuint body = (n - head) & ~(nuint)(CacheLineSize - 1);
        if (body != 0)
            _ntCopy(d + head, s + head, body);
        nuint tail = n - head - body;
        if (tail != 0)
        {
            byte* t = d + head + body;
            Buffer.MemoryCopy(s + head + body, t, tail, tail);
            _flush(this, t, tail);
        }
    }

    /// <summary>The fill counterpart of <see cref="CopyNonTemporal"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void FillNonTemporal(byte* d, byte value, nuint n)
    {
        nuint head = (nuint)(-(nint)d & (CacheLineSize - 1));
        if (head > n)
            head = n;
        if (head != 0)
        {
            NativeMemory.Fill(d, head, value);
            _flush(this, d, head);
        }
        nuint body = (n - head) & ~(nuint)(CacheLineSize - 1);
        if (body != 0)
            _ntFill(d + head, value, body);
        nuint tail = n - head - body;
        if (tail != 0)
        {
            byte* t = d + head + body;
            NativeMemory.Fill(t, tail, value);
            _flush(this, t, tail);
        }
    }

    /// <summary>Tells the observer what a copy or fill did: streaming stores are durable at the next fence; cached
    /// stores were written back unless NoFlush.</summary>
    private void ObserveStore(long offset, long length, PersistFlags flags, bool nonTemporal)
    {
        if (length == 0)
            return;
        _observer!.OnStore(offset, length, nonTemporal);
        if (!nonTemporal && (flags & PersistFlags.NoFlush) == 0)
            _observer.OnFlush(offset, length, false);
        if ((flags & (PersistFlags.NoDrain | PersistFlags.NoFlush)) == 0)
            _observer.OnDrain();
    }

    /// <summary>FlushLines -- the CPU's write-back routine over the range, in pieces of at most <see cref="FlushChunk"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FlushLines(PmemDevice dev, byte* p, nuint n)
    {
        while (n > FlushChunk)
        {
            dev._flushLines(p, FlushChunk);
            p += FlushChunk;
            n -= FlushChunk;
        }
        dev._flushLines(p, n);
    }

    /// <summary>EvictLines -- the CPU's write-back-and-evict routine over the range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void EvictLines(PmemDevice dev, byte* p, nuint n)
    {
        while (n > FlushChunk)
        {
            dev._evictLines(p, FlushChunk);
            p += FlushChunk;
            n -= FlushChunk;
        }
        dev._evictLines(p, n);
    }

    /// <summary>FlushNothing -- Byte-granular devices (and DAXFS_FLUSH=none): stores need only a fence.</summary>
    private static void FlushNothing(PmemDevice dev, byte* p, nuint n) { }

    /// <summary>FlushMsync -- Page devices: msync(MS_SYNC) of the covering pages. A failure is thrown, never dropped.</summary>
    private static void FlushMsync(PmemDevice dev, byte* p, nuint n)
    {
        nint mask = dev._pageSize - 1;
        nint start = (nint)p & ~mask;
        nint end = ((nint)p + (nint)n + mask) & ~mask;
        if (Libc.MSync(start, (nuint)(end - start), Libc.MS_SYNC) != 0)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException(
                $"msync of device bytes [{start - (nint)dev._base}, {end - (nint)dev._base}) of {dev._info.Path} failed: {text}; " +
                "the data in that range may not be durable", errno);
        }
    }

    /// <summary>The address of [offset, offset+length) after checking it lies inside the device.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* At(long offset, long length)
    {
        if ((ulong)offset > (ulong)_length || (ulong)length > (ulong)(_length - offset))
            ThrowOutOfRange(offset, length, false);
        return _base + offset;
    }

    /// <summary>As <see cref="At"/>, for a store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* AtWritable(long offset, long length)
    {
        if ((ulong)offset > (ulong)_writableLength || (ulong)length > (ulong)(_writableLength - offset))
            ThrowOutOfRange(offset, length, true);
        return _base + offset;
    }

    /// <summary>The clear error for a bad range: disposed, read-only, negative or past the end.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutOfRange(long offset, long length, bool store)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        if (store && _writableLength == 0)
            throw new InvalidOperationException($"device {_info.Path} is open read-only: a store to [{offset}, +{length}) was refused");
        if (offset < 0 || length < 0)
            throw new ArgumentOutOfRangeException(offset < 0 ? nameof(offset) : nameof(length),
                $"device range [{offset}, +{length}) has a negative {(offset < 0 ? "offset" : "length")}");
        throw new ArgumentOutOfRangeException(nameof(offset),
            $"device range [{offset}, +{length}) ends past the end of the {_length}-byte device {_info.Path}");
    }

    /// <summary>Unmaps the device and closes its descriptor (releasing its lock). Later calls throw
    /// <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        byte* b = _base;
        if (b == null)
            return;
        _length = 0;
        _writableLength = 0;
        _base = null;
        Libc.MUnmap((nint)b, (nuint)_mappedLength);
        Libc.Close(_fd);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the mapping of a device that was never disposed.</summary>
    ~PmemDevice()
    {
        if (_base != null)
        {
            Libc.MUnmap((nint)_base, (nuint)_mappedLength);
            Libc.Close(_fd);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => _info.ToString();
}
