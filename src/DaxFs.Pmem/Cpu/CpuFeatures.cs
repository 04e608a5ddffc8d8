using System.Runtime.Intrinsics.X86;

namespace DaxFs.Pmem.Cpu;

/// <summary>CpuFeatures -- the cache-control and vector features of this CPU, read once from CPUID, each of
/// which an environment switch can turn off (PMDK's PMEM_NO_* switches, spelled DAXFS_NO_*).</summary>
internal sealed class CpuFeatures
{
    /// <summary>CLFLUSH (CPUID.1:EDX bit 19).</summary>
    public bool Clflush { get; init; }

    /// <summary>CLFLUSHOPT (CPUID.(7,0):EBX bit 23), unless DAXFS_NO_CLFLUSHOPT=1.</summary>
    public bool ClflushOpt { get; init; }

    /// <summary>CLWB (CPUID.(7,0):EBX bit 24), unless DAXFS_NO_CLWB=1.</summary>
    public bool Clwb { get; init; }

    /// <summary>AVX-512F usable (CPU and OS), unless DAXFS_NO_AVX512F=1.</summary>
    public bool Avx512 { get; init; }

    /// <summary>AVX usable (CPU and OS), unless DAXFS_NO_AVX=1.</summary>
    public bool Avx { get; init; }

    /// <summary>SSE2 (always on x86-64).</summary>
    public bool Sse2 { get; init; }

    /// <summary>Features of the running CPU, with the switches read from <paramref name="env"/>.</summary>
    public static CpuFeatures Detect(Func<string, string?> env)
    {
        if (!X86Base.IsSupported)
            throw new PlatformNotSupportedException("DaxFS's device layer needs an x86-64 CPU (CLFLUSH and SFENCE)");
        (_, _, _, int edx1) = X86Base.CpuId(1, 0);
        (int maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
        int ebx7 = 0;
        if (maxLeaf >= 7)
            (_, ebx7, _, _) = X86Base.CpuId(7, 0);
        return new CpuFeatures
        {
            Clflush = (edx1 & (1 << 19)) != 0,
            ClflushOpt = (ebx7 & (1 << 23)) != 0 && !Switch(env, "DAXFS_NO_CLFLUSHOPT"),
            Clwb = (ebx7 & (1 << 24)) != 0 && !Switch(env, "DAXFS_NO_CLWB"),
            Avx512 = Avx512F.IsSupported && !Switch(env, "DAXFS_NO_AVX512F"),
            Avx = System.Runtime.Intrinsics.X86.Avx.IsSupported && !Switch(env, "DAXFS_NO_AVX"),
            Sse2 = System.Runtime.Intrinsics.X86.Sse2.IsSupported,
        };
    }

    /// <summary>True when an environment switch is set to 1/true/yes.</summary>
    public static bool Switch(Func<string, string?> env, string name)
    {
        string? v = env(name);
        return v is not null && (v == "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase)
            || v.Equals("yes", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Whether the CPU can execute <paramref name="instruction"/>.</summary>
    public bool Supports(FlushInstruction instruction) => instruction switch
    {
        FlushInstruction.Clwb => Clwb,
        FlushInstruction.ClflushOpt => ClflushOpt,
        FlushInstruction.Clflush => Clflush,
        _ => true,
    };

    /// <summary>The best write-back instruction: CLWB, then CLFLUSHOPT, then CLFLUSH.</summary>
    public FlushInstruction BestFlush =>
        Clwb ? FlushInstruction.Clwb : ClflushOpt ? FlushInstruction.ClflushOpt : FlushInstruction.Clflush;

    /// <summary>The best write-back-and-evict instruction: CLFLUSHOPT, then CLFLUSH.</summary>
    public FlushInstruction BestInvalidate => ClflushOpt ? FlushInstruction.ClflushOpt : FlushInstruction.Clflush;
}
