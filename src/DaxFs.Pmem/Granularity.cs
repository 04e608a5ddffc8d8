namespace DaxFs.Pmem;

/// <summary>Granularity -- the smallest unit in which stores reach the persistence domain, and so what must be
/// done to make them durable. Ordered from finest to coarsest.</summary>
public enum Granularity
{
    /// <summary>CPU caches are inside the persistence domain (eADR): a store is durable once it is globally
    /// visible; only a fence is needed to order stores.</summary>
    Byte = 0,

    /// <summary>Stores are durable once their cache lines are written back (CLWB/CLFLUSHOPT/CLFLUSH or
    /// non-temporal stores) and a fence has drained them: device-dax, an fsdax file mapped with MAP_SYNC,
    /// or emulated pmem.</summary>
    CacheLine = 1,

    /// <summary>Only msync makes stores durable: an ordinary file, or memory without a persistence promise.</summary>
    Page = 2,
}

/// <summary>FlushInstruction -- how a device writes cache lines back to the persistence domain.</summary>
public enum FlushInstruction
{
    /// <summary>No cache flush: Byte-granular devices (eADR), or forced with DAXFS_FLUSH=none for benchmarks.</summary>
    None = 0,

    /// <summary>CLFLUSH: write back and evict, serialized with other CLFLUSHes (oldest, slowest).</summary>
    Clflush = 1,

    /// <summary>CLFLUSHOPT: write back and evict, weakly ordered (needs SFENCE to drain).</summary>
    ClflushOpt = 2,

    /// <summary>CLWB: write back and keep the line cached, weakly ordered (needs SFENCE to drain).</summary>
    Clwb = 3,

    /// <summary>msync(MS_SYNC) of the covering pages: Page-granular devices.</summary>
    Msync = 4,
}

/// <summary>DeviceKind -- what backs a <see cref="PmemDevice"/>.</summary>
public enum DeviceKind
{
    /// <summary>A device-dax character device (/dev/daxX.Y).</summary>
    DeviceDax,

    /// <summary>A regular file (on an fsdax, tmpfs or ordinary file system).</summary>
    File,

    /// <summary>An anonymous memfd: volatile, for tests.</summary>
    Memory,
}

/// <summary>PersistFlags -- how a copy or fill reaches the media (the pmem2_memcpy flags).</summary>
[Flags]
public enum PersistFlags
{
    /// <summary>Copy, write back and drain: durable on return.</summary>
    None = 0,

    /// <summary>Skip the final fence; the caller drains once after several operations.</summary>
    NoDrain = 1,

    /// <summary>Plain cached stores, no write-back and no fence: the caller flushes later (or never).</summary>
    NoFlush = 2,

    /// <summary>Use non-temporal stores whatever the length.</summary>
    NonTemporal = 4,

    /// <summary>Use cached stores (then write back) whatever the length.</summary>
    Temporal = 8,
}
