using System.Text;

namespace DaxFs.Crash;

/// <summary>One name in a <see cref="VolumeState"/>: what a program can observe about it (times excepted: a recovered
/// volume keeps the times the media holds, and no contract is checked on them here).</summary>
public sealed record NodeState(ulong Ino, uint Mode, uint Nlink, uint Uid, uint Gid, long Size, long Blocks, string? Target,
    byte[]? Content, ulong ContentHash, string Xattrs)
{
    /// <summary>Whether two nodes are the same.</summary>
    public bool SameAs(NodeState o) =>
        Ino == o.Ino && Mode == o.Mode && Nlink == o.Nlink && Uid == o.Uid && Gid == o.Gid && Size == o.Size
        && Blocks == o.Blocks && Target == o.Target && ContentHash == o.ContentHash && Xattrs == o.Xattrs;

    /// <inheritdoc/>
    public override string ToString() =>
        $"ino {Ino} mode {Convert.ToString(Mode, 8)} nlink {Nlink} uid {Uid} gid {Gid} size {Size} blocks {Blocks}"
        + (Target is null ? "" : $" -> {Target}") + $" data {ContentHash:x16}" + (Xattrs.Length > 0 ? $" xattrs {Xattrs}" : "");
}

/// <summary>VolumeState -- the observable state of a whole volume: every path with its node. Two volumes in the same
/// state answer every read-only call the same way (times excepted).</summary>
public sealed class VolumeState
{
    private VolumeState(SortedDictionary<string, NodeState> nodes, ulong hash)
    {
        Nodes = nodes;
        Hash = hash;
    }

    /// <summary>Path (from the root, "/" for the root) to node.</summary>
    public SortedDictionary<string, NodeState> Nodes { get; }

    /// <summary>A digest of the whole state, for quick inequality.</summary>
    public ulong Hash { get; }

    /// <summary>Reads the state of <paramref name="volume"/> by walking it from the root; file contents are digested,
    /// and kept whole for the paths in <paramref name="keepContentOf"/> (files a mapped store may leave mixed).</summary>
    public static VolumeState Capture(DaxVolume volume, params string?[] keepContentOf)
    {
        var nodes = new SortedDictionary<string, NodeState>(StringComparer.Ordinal);
        Walk(volume, DaxVolume.RootIno, "/", nodes, keepContentOf);
        ulong h = 1469598103934665603UL;
        foreach (var (path, n) in nodes)
        {
            h = Mix(h, Digest.Of(Encoding.UTF8.GetBytes(path)));
            h = Mix(h, Digest.Of(Encoding.UTF8.GetBytes(n.ToString())));
        }
        return new VolumeState(nodes, h);
    }

    [ThreadStatic]
    private static byte[]? t_buffer;

    private static void Walk(DaxVolume v, ulong ino, string path, SortedDictionary<string, NodeState> nodes, string?[] keep)
    {
        var a = v.GetAttributes(ino);
        string? target = a.IsSymlink ? Encoding.UTF8.GetString(v.ReadLink(ino)) : null;
        byte[]? content = null;
        ulong hash = 0;
        if (a.IsRegularFile)
        {
            if (a.Size > int.MaxValue)
                throw new InvalidOperationException($"{path}: {a.Size} bytes is more than a crash workload writes");
            if (t_buffer is null || t_buffer.Length < a.Size)
                t_buffer = new byte[Math.Max(a.Size, 1 << 20)];
            var data = t_buffer.AsSpan(0, (int)a.Size);
            int got = 0;
            while (got < data.Length)
            {
                int n = v.Read(ino, got, data[got..]);
                if (n <= 0)
                    throw new InvalidOperationException($"{path}: read returned {n} at {got} of {data.Length}");
                got += n;
            }
            hash = Digest.Of(data);
            if (data.Length <= 1 << 20 || Array.IndexOf(keep, path) >= 0)
                content = data.ToArray();
        }
        var xattrs = new StringBuilder();
        foreach (var name in v.ListXattrs(ino).Select(Encoding.UTF8.GetString).Order(StringComparer.Ordinal))
            xattrs.Append(name).Append('=').Append(Digest.Of(v.GetXattr(ino, name)).ToString("x")).Append(';');
        nodes[path] = new NodeState(a.Ino, a.Mode, a.Nlink, a.Uid, a.Gid, a.Size, a.Blocks, target, content, hash, xattrs.ToString());
        if (a.IsDirectory)
            foreach (var e in v.ReadDirectory(ino).Where(e => e.Cookie > 2))
                Walk(v, e.Ino, path == "/" ? "/" + e.NameString : path + "/" + e.NameString, nodes, keep);
    }

    /// <summary>Whether this state equals <paramref name="other"/>.</summary>
    public bool SameAs(VolumeState other)
    {
        if (Hash != other.Hash || Nodes.Count != other.Nodes.Count)
            return false;
        foreach (var (p, n) in Nodes)
            if (!other.Nodes.TryGetValue(p, out var o) || !n.SameAs(o))
                return false;
        return true;
    }

    /// <summary>Whether this state is <paramref name="basis"/> except that the file <paramref name="path"/> names in
    /// <paramref name="mixed"/> (under each of its names) may hold, word by word, either state's bytes, and either
    /// state's size: what stores through a mapping, which are not atomic and reach the media whenever a line is evicted
    /// (or, on Page devices, a page written back), may leave when power fails before they are persisted.</summary>
    public bool IsWordMixOf(VolumeState basis, VolumeState mixed, string path)
    {
        if (Nodes.Count != basis.Nodes.Count || !mixed.Nodes.TryGetValue(path, out var mapped) || mapped.Content is null)
            return false;
        foreach (var (p, n) in Nodes)
        {
            if (!basis.Nodes.TryGetValue(p, out var b))
                return false;
            if (b.Ino != mapped.Ino)
            {
                if (!n.SameAs(b))
                    return false;
                continue;
            }
            if (n.Content is null || b.Content is null || (n.Size != b.Size && n.Size != mapped.Size))
                return false;
            if (n.Ino != b.Ino || n.Mode != b.Mode || n.Nlink != b.Nlink || n.Uid != b.Uid || n.Gid != b.Gid || n.Xattrs != b.Xattrs)
                return false;
            for (int i = 0; i < n.Content.Length; i += 8)
            {
                int len = Math.Min(8, n.Content.Length - i);
                var x = n.Content.AsSpan(i, len);
                if (!WordIs(x, b.Content, i) && !WordIs(x, mapped.Content, i))
                    return false;
            }
        }
        return true;
    }

    private static bool WordIs(ReadOnlySpan<byte> x, byte[] content, int at)
    {
        for (int k = 0; k < x.Length; k++)
            if (x[k] != (at + k < content.Length ? content[at + k] : 0))
                return false;
        return true;
    }

    /// <summary>The first differences from <paramref name="other"/>, for a report.</summary>
    public string DescribeDifferences(VolumeState other, int max = 6)
    {
        var lines = new List<string>();
        foreach (var p in Nodes.Keys.Union(other.Nodes.Keys).Order(StringComparer.Ordinal))
        {
            Nodes.TryGetValue(p, out var a);
            other.Nodes.TryGetValue(p, out var b);
            if (a is null)
                lines.Add($"{p}: missing (expected {b})");
            else if (b is null)
                lines.Add($"{p}: present but not expected ({a})");
            else if (!a.SameAs(b))
                lines.Add($"{p}: {a}; expected {b}" + FirstByteDifference(a, b));
            if (lines.Count >= max)
                break;
        }
        return string.Join("\n", lines);
    }

    private static string FirstByteDifference(NodeState a, NodeState b)
    {
        if (a.Content is null || b.Content is null)
            return "";
        int n = Math.Min(a.Content.Length, b.Content.Length);
        for (int i = 0; i < n; i++)
            if (a.Content[i] != b.Content[i])
                return $" (first differing byte at {i}: {a.Content[i]:x2}, expected {b.Content[i]:x2})";
        return "";
    }

    /// <inheritdoc/>
    public override string ToString() => string.Join("\n", Nodes.Select(kv => $"{kv.Key}: {kv.Value}"));

    private static ulong Mix(ulong h, ulong x) => (h ^ x) * 1099511628211UL + (x >> 29);
}

/// <summary>Digest -- a fast 64-bit content digest (not cryptographic; equality checks within one run).</summary>
public static class Digest
{
    /// <summary>The digest of <paramref name="data"/>: four independent lanes over 32-byte blocks (so the multiplies
    /// overlap), then the tail.</summary>
    public static ulong Of(ReadOnlySpan<byte> data)
    {
        const ulong P1 = 0x9E3779B185EBCA87UL, P2 = 0xC2B2AE3D27D4EB4FUL;
        ulong a = P1 ^ (ulong)data.Length, b = P2, c = 0x165667B19E3779F9UL, d = 0x27D4EB2F165667C5UL;
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(data);
        int i = 0;
        for (; i + 4 <= words.Length; i += 4)
        {
            a = Round(a, words[i]);
            b = Round(b, words[i + 1]);
            c = Round(c, words[i + 2]);
            d = Round(d, words[i + 3]);
        }
        ulong h = System.Numerics.BitOperations.RotateLeft(a, 1) + System.Numerics.BitOperations.RotateLeft(b, 7)
            + System.Numerics.BitOperations.RotateLeft(c, 12) + System.Numerics.BitOperations.RotateLeft(d, 18);
        for (; i < words.Length; i++)
            h = Round(h, words[i]);
        for (int k = words.Length * 8; k < data.Length; k++)
            h = (h ^ data[k]) * P1;
        h ^= h >> 33;
        h *= P2;
        return h ^ (h >> 29);
    }

    private static ulong Round(ulong acc, ulong w) => System.Numerics.BitOperations.RotateLeft(acc + w * 0xC2B2AE3D27D4EB4FUL, 31) * 0x9E3779B185EBCA87UL;
}
