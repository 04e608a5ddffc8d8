using System.Diagnostics;

namespace DaxFs.Bench;

/// <summary>Timing -- the clock, the offset generator and the statistics every suite shares with its C anchors
/// (same generator, same clock source, same median), so that two sides differ only in what they measure.</summary>
public static class Timing
{
    /// <summary>CLOCK_MONOTONIC in nanoseconds (Stopwatch is backed by it on Linux).</summary>
    public static long NowNs() => (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));

    /// <summary>Runs <paramref name="pass"/> until the .NET side runs optimized code: for at least
    /// <paramref name="least"/>, then until two passes in a row (each followed by a pause in which background
    /// compiles land) compiled no method, at most 60 s. Tiered compilation recompiles a hot method only some time
    /// after its first thousands of calls, and on a busy two-core machine a fixed two-second warm-up was sometimes
    /// measured in part on unoptimized code. Returns the passes run.</summary>
    public static int WarmUp(Action pass, TimeSpan least)
    {
        var sw = Stopwatch.StartNew();
        long before = -1;
        int quiet = 0, passes = 0;
        while (sw.Elapsed < least || (quiet < 2 && sw.Elapsed < TimeSpan.FromSeconds(60)))
        {
            pass();
            passes++;
            Thread.Sleep(200);
            long now = System.Runtime.JitInfo.GetCompiledMethodCount();
            quiet = now == before ? quiet + 1 : 0;
            before = now;
        }
        return passes;
    }

    /// <summary>Median of the samples (sorts them).</summary>
    public static double Median(long[] samples, int count)
    {
        Array.Sort(samples, 0, count);
        return count % 2 == 1 ? samples[count / 2] : (samples[count / 2 - 1] + samples[count / 2]) / 2.0;
    }

    /// <summary>Median of a list of doubles.</summary>
    public static double Median(IEnumerable<double> values)
    {
        double[] v = values.OrderBy(x => x).ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>XorShift64 -- the offset generator of the anchors, step for step.</summary>
    public struct XorShift64(ulong seed)
    {
        private ulong _s = seed == 0 ? 1 : seed;

        /// <summary>The next value.</summary>
        public ulong Next()
        {
            _s ^= _s << 13;
            _s ^= _s >> 7;
            _s ^= _s << 17;
            return _s;
        }
    }

    /// <summary>Iterations per size, as the anchors count them.</summary>
    public static int Iterations(long size, int scalePercent)
    {
        int n = size <= 4096 ? 20000 : size <= 65536 ? 4000 : 300;
        n = n * scalePercent / 100;
        return Math.Max(n, 11);
    }

    /// <summary>A pinned buffer of <paramref name="length"/> bytes whose first byte is cache-line aligned, as the
    /// anchors' aligned_alloc gives (a misaligned source splits loads across lines and skews the comparison).</summary>
    public static ArraySegment<byte> AlignedBuffer(int length)
    {
        byte[] raw = GC.AllocateArray<byte>(length + 64, pinned: true);
        long address = System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(raw, 0);
        return new ArraySegment<byte>(raw, (int)((64 - (address & 63)) & 63), length);
    }

    /// <summary>"64B", "4KiB", "2MiB".</summary>
    public static string SizeName(long size) =>
        size >= 1 << 30 && size % (1 << 30) == 0 ? $"{size >> 30}GiB"
        : size >= 1 << 20 && size % (1 << 20) == 0 ? $"{size >> 20}MiB"
        : size >= 1 << 10 && size % (1 << 10) == 0 ? $"{size >> 10}KiB" : $"{size}B";
}
