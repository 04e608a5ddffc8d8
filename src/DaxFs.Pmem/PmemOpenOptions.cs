namespace DaxFs.Pmem;

/// <summary>PmemOpenOptions -- how a <see cref="PmemDevice"/> is opened. Every option has an environment
/// counterpart read when the option is left unset, so that tests and benchmarks can steer a program
/// they do not control.</summary>
public sealed record PmemOpenOptions
{
    /// <summary>Treat a file whose mapping refused MAP_SYNC (tmpfs, memfd) as CacheLine-granular pmem, as PMDK's
    /// PMEM_IS_PMEM_FORCE does. For emulation only: nothing makes such memory survive a power cut.
    /// Unset: DAXFS_EMULATE_PMEM=1 turns it on.</summary>
    public bool? EmulatePmem { get; init; }

    /// <summary>The coarsest granularity the caller accepts; a device that only offers a coarser one is refused
    /// with a <see cref="GranularityMismatchException"/> saying why. Null accepts any.</summary>
    public Granularity? RequiredGranularity { get; init; }

    /// <summary>Force the write-back instruction (for tests and benchmarks). Unset: DAXFS_FLUSH=clwb|clflushopt|clflush|none,
    /// else the best the CPU offers. Ignored on Page devices, which msync.</summary>
    public FlushInstruction? Flush { get; init; }

    /// <summary>Copies at least this long use non-temporal stores. Unset: DAXFS_MOVNT_THRESHOLD, else
    /// <see cref="PmemDevice.DefaultNonTemporalThreshold"/>. DAXFS_NO_MOVNT=1 disables them.</summary>
    public int? NonTemporalThreshold { get; init; }

    /// <summary>Take an exclusive advisory lock (flock) so that one opener at a time owns the device. Default true.</summary>
    public bool Exclusive { get; init; } = true;

    /// <summary>Map read-only: stores throw. The lock, if taken, is shared.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Pre-fault the whole mapping at open (MAP_POPULATE), as a benchmark wants.</summary>
    public bool Prefault { get; init; }

    /// <summary>Hears the fraction of a new device's space reserved so far (<see cref="PmemDevice.Create"/> reserves a
    /// large file in 256 MiB steps when this is set).</summary>
    public IProgress<double>? CreateProgress { get; init; }

    /// <summary>Where environment switches are read from; null reads the process environment. Tests use it to
    /// exercise DAXFS_* variables without touching the process.</summary>
    public Func<string, string?>? Environment { get; init; }

    internal Func<string, string?> Env => Environment ?? System.Environment.GetEnvironmentVariable;
}
