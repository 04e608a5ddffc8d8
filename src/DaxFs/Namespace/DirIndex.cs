using System.Runtime.InteropServices;

namespace DaxFs.Namespace;

/// <summary>A directory entry in DRAM.</summary>
internal readonly record struct DirSlot(ulong Ino, ulong Id, byte Type);

/// <summary>DirIndex -- a directory's entries in DRAM: by name (hash) for lookup, and by entry id (ids only grow) for
/// listing with cookies that stay valid while other entries come and go. Removal leaves a tombstone in the id order,
/// swept when tombstones outnumber entries, so unlink is O(1) amortized even in large directories.</summary>
internal sealed class DirIndex
{
    private readonly Dictionary<byte[], DirSlot> _byName = new(NameComparer.Instance);
    private readonly Dictionary<byte[], DirSlot>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    // Id order, as parallel lists (the binary search reads only the ids): a null name is a tombstone.
    private readonly List<ulong> _ids = [];
    private readonly List<(byte[]? Name, DirSlot Slot)> _order = [];

    public DirIndex() => _lookup = _byName.GetAlternateLookup<ReadOnlySpan<byte>>();

    /// <summary>Entries.</summary>
    public int Count => _byName.Count;

    /// <summary>The entry named <paramref name="name"/>.</summary>
    public bool TryGet(ReadOnlySpan<byte> name, out DirSlot slot) => _lookup.TryGetValue(name, out slot);

    /// <summary>The entry with id <paramref name="id"/>, if any.</summary>
    public bool TryGetById(ulong id, out byte[] name, out DirSlot slot)
    {
        int i = IndexOf(id);
        if (i >= 0 && _order[i].Name is { } n)
        {
            name = n;
            slot = _order[i].Slot;
            return true;
        }
        name = [];
        slot = default;
        return false;
    }

    /// <summary>Adds an entry; its id must be larger than every id so far.</summary>
    public void Add(byte[] name, DirSlot slot)
    {
        if (_ids.Count > 0 && _ids[^1] >= slot.Id)
            throw new InvalidOperationException($"directory entry id {slot.Id} is not increasing");
        _byName.Add(name, slot);
        _ids.Add(slot.Id);
        _order.Add((name, slot));
    }

    /// <summary>Removes the entry named <paramref name="name"/>.</summary>
    public DirSlot Remove(ReadOnlySpan<byte> name)
    {
        if (!_lookup.Remove(name, out byte[]? key, out DirSlot slot))
            throw new KeyNotFoundException("no such directory entry");
        int i = IndexOf(slot.Id);
        _order[i] = (null, default);
        if (_order.Count > 64 && _byName.Count < _order.Count / 2)
            SweepTombstones();
        _ = key;
        return slot;
    }

    private void SweepTombstones()
    {
        int w = 0;
        for (int r = 0; r < _order.Count; r++)
        {
            if (_order[r].Name is null)
                continue;
            _ids[w] = _ids[r];
            _order[w++] = _order[r];
        }
        _ids.RemoveRange(w, _ids.Count - w);
        _order.RemoveRange(w, _order.Count - w);
    }

    /// <summary>Entries with an id above <paramref name="afterId"/>, in id order.</summary>
    public IEnumerable<(byte[] Name, DirSlot Slot)> After(ulong afterId)
    {
        int lo = Sorted.FirstAbove<ulong>(CollectionsMarshal.AsSpan(_ids), afterId);
        for (int i = lo; i < _order.Count; i++)
            if (_order[i].Name is { } n)
                yield return (n, _order[i].Slot);
    }

    /// <summary>Every entry in id order.</summary>
    public IEnumerable<(byte[] Name, DirSlot Slot)> All => After(0);

    private int IndexOf(ulong id)
    {
        int i = CollectionsMarshal.AsSpan(_ids).BinarySearch(id);
        return i >= 0 ? i : -1;
    }

    /// <summary>Byte-wise name equality, with span lookups that allocate nothing.</summary>
    private sealed class NameComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly NameComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => Hash(obj);

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate) => Hash(alternate);

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();

        private static int Hash(ReadOnlySpan<byte> s)
        {
            var h = new HashCode();
            h.AddBytes(s);
            return h.ToHashCode();
        }
    }
}
