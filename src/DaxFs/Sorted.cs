using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DaxFs;

/// <summary>Searches in strictly increasing arrays (chunk ends, extent ends, directory entry ids).</summary>
internal static class Sorted
{
    /// <summary>Index of the first element greater than <paramref name="key"/> (the length if none), in a span whose
    /// elements strictly increase.</summary>
    public static int FirstAbove<T>(ReadOnlySpan<T> sorted, T key) where T : IComparable<T>
    {
        int i = sorted.BinarySearch(key);
        return i >= 0 ? i + 1 : ~i;
    }

    /// <summary>As <see cref="FirstAbove{T}"/> for a short span (tens of elements): counts the elements not above
    /// <paramref name="key"/> with vector compares instead of bisecting. Every load is independent of the others, so
    /// in a cold array the cache misses overlap instead of following one another as a binary search's do.</summary>
    public static int FirstAboveShort(ReadOnlySpan<long> sorted, long key)
    {
        int n = 0, k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref long r = ref MemoryMarshal.GetReference(sorted);
            Vector256<long> t = Vector256.Create(key);
            for (; k + Vector256<long>.Count <= sorted.Length; k += Vector256<long>.Count)
                n += BitOperations.PopCount(Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref r, (nuint)k), t).ExtractMostSignificantBits());
        }
        for (; k < sorted.Length; k++)
            n += sorted[k] <= key ? 1 : 0;
        return n;
    }
}
