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
}
