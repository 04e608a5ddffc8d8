namespace DaxFs.Pmem;

/// <summary>DeviceInfo -- what was decided when a device was opened, and why: the facts a log line, `daxfs info`
/// and a benchmark report need.</summary>
/// <param name="Kind">What backs the device.</param>
/// <param name="Path">The path opened, or "memfd" for an in-memory device.</param>
/// <param name="Length">Usable bytes.</param>
/// <param name="Granularity">The persistence granularity in force.</param>
/// <param name="GranularityReason">Why that granularity (MAP_SYNC accepted or refused, eADR, emulation).</param>
/// <param name="MapSync">Whether the mapping was made with MAP_SYNC.</param>
/// <param name="Flush">The write-back instruction in force.</param>
/// <param name="Invalidate">The write-back-and-evict instruction in force.</param>
/// <param name="NonTemporal">The vector width of non-temporal stores ("AVX-512", "AVX", "SSE2").</param>
/// <param name="NonTemporalThreshold">Copies at least this long use non-temporal stores (int.MaxValue: never).</param>
public sealed record DeviceInfo(
    DeviceKind Kind, string Path, long Length, Granularity Granularity, string GranularityReason, bool MapSync,
    FlushInstruction Flush, FlushInstruction Invalidate, string NonTemporal, int NonTemporalThreshold)
{
    /// <summary>One line for logs: "file /dev/shm/v: 1073741824 bytes, CacheLine (emulated ...), flush Clwb, ...".</summary>
    public override string ToString() =>
        $"{Kind} {Path}: {Length} bytes, {Granularity} ({GranularityReason}), flush {Flush}, invalidate {Invalidate}, " +
        $"drain SFENCE, non-temporal {NonTemporal} from {(NonTemporalThreshold == int.MaxValue ? "never" : NonTemporalThreshold + " B")}";
}
