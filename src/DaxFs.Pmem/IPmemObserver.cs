namespace DaxFs.Pmem;

/// <summary>IPmemObserver -- sees every store, write-back and fence a <see cref="PmemDevice"/> makes, in order.
/// The crash simulator keeps its persisted image from these events, the persistence lint checks them and a
/// flaky-device wrapper throws from them to inject errors (an exception propagates to the caller of the
/// device operation). Offsets are device offsets; ranges are never empty.</summary>
/// <remarks>Stores made through a file mapping (loads and stores by a program) are not seen as stores; their
/// write-backs and fences are, because they go through <see cref="PmemDevice.Flush"/> and friends.</remarks>
public interface IPmemObserver
{
    /// <summary>After bytes [offset, offset+length) were stored. <paramref name="nonTemporal"/> stores bypass
    /// the cache: they are durable at the next fence without a write-back.</summary>
    void OnStore(long offset, long length, bool nonTemporal);

    /// <summary>After the lines covering [offset, offset+length) were written back (or, on Page devices, the
    /// covering pages were msync'ed). <paramref name="invalidate"/> when the lines were also evicted.</summary>
    void OnFlush(long offset, long length, bool invalidate);

    /// <summary>At a fence: every write-back and non-temporal store before it is now durable. Called before
    /// the fence executes, so the observer sees the state a power cut just before it would leave.</summary>
    void OnDrain();
}
