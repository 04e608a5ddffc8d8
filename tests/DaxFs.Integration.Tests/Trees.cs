using System.Text;
using Xunit;

namespace DaxFs.Integration.Tests;

/// <summary>Trees -- a random directory tree for round trips (files of awkward sizes, sparse files, modes with
/// set-id and sticky bits, owners, relative/absolute/dangling symbolic links, hard links, UTF-8 and long names,
/// nanosecond mtimes), and a comparison of two trees by bytes, modes, owners, link targets, hard-link groups and
/// times.</summary>
internal static class Trees
{
    private static readonly uint[] FileModes = [0x1A4, 0x180, 0x1ED, 0x124, 0x1C0, 0x9ED, 0x1A0, 0x5ED];
    private static readonly uint[] DirModes = [0x1ED, 0x1C0, 0x1E8, 0x3FF, 0x1FD];
    private static readonly string[] Names = ["alpha", "beta gamma", "été", "日本語", "x.tar.gz", ".hidden", "UPPER", "a-b_c", "n"];

    /// <summary>Builds a tree at <paramref name="root"/> (created) from <paramref name="seed"/>; returns its bytes.</summary>
    public static long Build(string root, int seed, int dirs = 6, int maxFileBytes = 3 << 20)
    {
        var rng = new Random(seed);
        Directory.CreateDirectory(root);
        var allDirs = new List<string> { root };
        var allFiles = new List<string>();
        long bytes = 0;
        for (int d = 0; d < dirs; d++)
        {
            string parent = allDirs[rng.Next(allDirs.Count)];
            string dir = Path.Combine(parent, $"d{d}-{Names[rng.Next(Names.Length)]}");
            Directory.CreateDirectory(dir);
            allDirs.Add(dir);
        }
        int[] sizes = [0, 1, 100, 4095, 4096, 4097, 65536 + 7, 1 << 20];
        int n = 0;
        foreach (string dir in allDirs)
        {
            int files = rng.Next(3, 8);
            for (int f = 0; f < files; f++)
            {
                string path = Path.Combine(dir, $"f{n++}-{Names[rng.Next(Names.Length)]}");
                int size = rng.Next(4) == 0 ? rng.Next(maxFileBytes) : sizes[rng.Next(sizes.Length)];
                byte[] data = new byte[size];
                rng.NextBytes(data);
                File.WriteAllBytes(path, data);
                bytes += size;
                allFiles.Add(path);
            }
        }
        // A sparse file: 8 MiB with data at 0, in the middle and at the end.
        string sparse = Path.Combine(root, "sparse.img");
        using (var fs = new FileStream(sparse, FileMode.Create))
        {
            fs.SetLength(8 << 20);
            foreach (long at in new long[] { 0, 3 << 20, (8 << 20) - 100 })
            {
                fs.Position = at;
                fs.Write(Encoding.ASCII.GetBytes($"data at {at}"));
            }
        }
        allFiles.Add(sparse);
        // A 255-byte name and an empty directory.
        string longName = Path.Combine(root, new string('L', 250) + ".long");
        File.WriteAllText(longName, "long name");
        allFiles.Add(longName);
        Directory.CreateDirectory(Path.Combine(root, "empty"));
        // Symbolic links: relative to a file, to a directory, absolute dangling, a long target, a link to a link.
        string first = allFiles[0];
        File.CreateSymbolicLink(Path.Combine(root, "link-rel"), Path.GetRelativePath(root, first));
        File.CreateSymbolicLink(Path.Combine(root, "link-dir"), Path.GetRelativePath(root, allDirs[^1]));
        File.CreateSymbolicLink(Path.Combine(allDirs[1], "dangling"), "/nonexistent/daxfs-it/target");
        File.CreateSymbolicLink(Path.Combine(root, "link-long"), string.Join('/', Enumerable.Repeat("../x", 60)));
        File.CreateSymbolicLink(Path.Combine(root, "link-link"), "link-rel");
        // Hard links: two names in different directories for one file, three for another.
        Assert.Equal(0, Libc.Link(allFiles[1], Path.Combine(allDirs[^1], "hard-1")));
        Assert.Equal(0, Libc.Link(allFiles[2], Path.Combine(root, "hard-2a")));
        Assert.Equal(0, Libc.Link(allFiles[2], Path.Combine(allDirs[1], "hard-2b")));
        // Modes, owners and nanosecond times; directories last and bottom-up (their children change their mtime).
        foreach (string f in allFiles)
        {
            Assert.Equal(0, Libc.Chown(f, (uint)rng.Next(3) * 1000, (uint)rng.Next(3) * 1000));
            Assert.Equal(0, Libc.Chmod(f, FileModes[rng.Next(FileModes.Length)]));
        }
        foreach (string f in allFiles.Concat(Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
            .Where(p => Libc.LStat(p).IsSymlink)))
            Assert.Equal(0, Libc.Utimens(f, RandomTime(rng), RandomTime(rng), Libc.AtSymlinkNoFollow));
        foreach (string d in allDirs.Skip(1).Append(Path.Combine(root, "empty")).OrderByDescending(d => d.Length))
        {
            Assert.Equal(0, Libc.Chmod(d, DirModes[rng.Next(DirModes.Length)]));
            Assert.Equal(0, Libc.Utimens(d, RandomTime(rng), RandomTime(rng)));
        }
        return bytes;
    }

    private static (long, long) RandomTime(Random rng) => (rng.NextInt64(0, 2_000_000_000), rng.Next(1_000_000_000));

    [Flags]
    public enum Check
    {
        None = 0,
        Times = 1,
        SymlinkTimes = 2,
        Owners = 4,
        HardLinks = 8,
        DirTimes = 16,
        All = Times | SymlinkTimes | Owners | HardLinks | DirTimes,
    }

    /// <summary>Every difference between tree <paramref name="a"/> and tree <paramref name="b"/> (empty: equal).</summary>
    public static List<string> Diff(string a, string b, Check check)
    {
        var diffs = new List<string>();
        var groupsA = new Dictionary<ulong, List<string>>();
        var groupsB = new Dictionary<ulong, List<string>>();
        Walk(a, b, "", check, diffs, groupsA, groupsB);
        if ((check & Check.HardLinks) != 0)
        {
            var setA = groupsA.Values.Where(g => g.Count > 1).Select(g => string.Join(" = ", g.Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal).ToList();
            var setB = groupsB.Values.Where(g => g.Count > 1).Select(g => string.Join(" = ", g.Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal).ToList();
            foreach (string g in setA.Except(setB))
                diffs.Add($"hard-link group {g} is not linked in {b}");
            foreach (string g in setB.Except(setA))
                diffs.Add($"hard-link group {g} appears in {b} only");
        }
        return diffs;
    }

    /// <summary>Asserts two trees are equal; the message lists every difference.</summary>
    public static void AssertEqual(string expected, string actual, Check check, string context)
    {
        var d = Diff(expected, actual, check);
        Assert.True(d.Count == 0, $"{context}: {d.Count} differences between {expected} and {actual}:\n  " + string.Join("\n  ", d.Take(60)));
    }

    private static void Walk(string a, string b, string rel, Check check, List<string> diffs, Dictionary<ulong, List<string>> ga, Dictionary<ulong, List<string>> gb)
    {
        string pa = rel.Length == 0 ? a : Path.Combine(a, rel), pb = rel.Length == 0 ? b : Path.Combine(b, rel);
        string show = rel.Length == 0 ? "/" : rel;
        if (Libc.Stat(pb, out StatX sb, follow: false) != 0)
        {
            diffs.Add($"{show}: missing");
            return;
        }
        StatX sa = Libc.LStat(pa);
        if (sa.Type != sb.Type)
        {
            diffs.Add($"{show}: type {sa.Type:x} vs {sb.Type:x}");
            return;
        }
        if (!sa.IsSymlink && sa.Perm != sb.Perm)
            diffs.Add($"{show}: mode {Convert.ToString(sa.Perm, 8)} vs {Convert.ToString(sb.Perm, 8)}");
        if ((check & Check.Owners) != 0 && (sa.Uid != sb.Uid || sa.Gid != sb.Gid))
            diffs.Add($"{show}: owner {sa.Uid}:{sa.Gid} vs {sb.Uid}:{sb.Gid}");
        bool times = sa.IsDirectory ? (check & Check.DirTimes) != 0 : sa.IsSymlink ? (check & Check.SymlinkTimes) != 0 : (check & Check.Times) != 0;
        if (times && sa.MtimeNs != sb.MtimeNs)
            diffs.Add($"{show}: mtime {sa.MtimeNs} vs {sb.MtimeNs}");
        if (sa.IsSymlink)
        {
            string ta = Libc.ReadLink(pa, out _), tb = Libc.ReadLink(pb, out _);
            if (ta != tb)
                diffs.Add($"{show}: link target '{ta}' vs '{tb}'");
        }
        else if (sa.IsRegular)
        {
            if (sa.Size != sb.Size)
                diffs.Add($"{show}: size {sa.Size} vs {sb.Size}");
            else if (!SameBytes(pa, pb))
                diffs.Add($"{show}: contents differ");
            (ga.TryGetValue(sa.Ino, out var l1) ? l1 : ga[sa.Ino] = []).Add(show);
            (gb.TryGetValue(sb.Ino, out var l2) ? l2 : gb[sb.Ino] = []).Add(show);
        }
        else if (sa.IsDirectory)
        {
            var na = Directory.EnumerateFileSystemEntries(pa).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            var nb = Directory.EnumerateFileSystemEntries(pb).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            foreach (string? extra in nb.Except(na))
                diffs.Add($"{Path.Combine(show, extra!)}: extra");
            foreach (string? name in na)
                Walk(a, b, Path.Combine(rel, name!), check, diffs, ga, gb);
        }
    }

    private static bool SameBytes(string a, string b)
    {
        using var fa = new FileStream(a, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        using var fb = new FileStream(b, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        byte[] ba = new byte[1 << 20], bb = new byte[1 << 20];
        while (true)
        {
            int na = fa.ReadAtLeast(ba, ba.Length, throwOnEndOfStream: false);
            int nb = fb.ReadAtLeast(bb, bb.Length, throwOnEndOfStream: false);
            if (na != nb || !ba.AsSpan(0, na).SequenceEqual(bb.AsSpan(0, nb)))
                return false;
            if (na == 0)
                return true;
        }
    }
}
