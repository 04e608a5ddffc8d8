using System.Numerics;

namespace DaxFs.Allocation;

/// <summary>GroupSet -- a set of group numbers as a two-level bitmap: add, remove and "smallest member" cost a few
/// word operations whatever the device size (a summary bit per 64-bit word says which words are non-empty).</summary>
internal sealed class GroupSet
{
    private readonly ulong[] _bits;
    private readonly ulong[] _summary;
    private int _count;

    public GroupSet(long capacity)
    {
        _bits = new ulong[(capacity + 63) / 64];
        _summary = new ulong[(_bits.Length + 63) / 64];
    }

    public int Count => _count;

    public void Clear()
    {
        Array.Clear(_bits);
        Array.Clear(_summary);
        _count = 0;
    }

    public bool Contains(long g) => (_bits[g >> 6] & (1UL << (int)(g & 63))) != 0;

    public void Add(long g)
    {
        long w = g >> 6;
        ulong bit = 1UL << (int)(g & 63);
        if ((_bits[w] & bit) != 0)
            return;
        _bits[w] |= bit;
        _summary[w >> 6] |= 1UL << (int)(w & 63);
        _count++;
    }

    public void Remove(long g)
    {
        long w = g >> 6;
        ulong bit = 1UL << (int)(g & 63);
        if ((_bits[w] & bit) == 0)
            return;
        _bits[w] &= ~bit;
        if (_bits[w] == 0)
            _summary[w >> 6] &= ~(1UL << (int)(w & 63));
        _count--;
    }

    /// <summary>The smallest member, or -1 when empty.</summary>
    public long Min
    {
        get
        {
            for (int s = 0; s < _summary.Length; s++)
            {
                ulong sw = _summary[s];
                if (sw == 0)
                    continue;
                long w = ((long)s << 6) + BitOperations.TrailingZeroCount(sw);
                return (w << 6) + BitOperations.TrailingZeroCount(_bits[w]);
            }
            return -1;
        }
    }
}
