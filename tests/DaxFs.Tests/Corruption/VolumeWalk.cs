using System.Security.Cryptography;
using System.Text;
using DaxFs.Format;

namespace DaxFs.Tests.Corruption;

/// <summary>VolumeWalk -- visits everything a mounted volume holds: every directory listed, every inode stat'ed,
/// every regular file read, every symlink read, every xattr fetched. <see cref="Dump"/> renders it all as sorted
/// lines (to compare two volumes); <see cref="Exercise"/> only touches it (for volumes that may be corrupted: sizes
/// are bounded, cycles are cut).</summary>
internal static class VolumeWalk
{
    /// <summary>Every path with its attributes, content digest, link target and xattrs, sorted. Compares volumes
    /// whose state should be identical (replay, remount).</summary>
    public static List<string> Dump(DaxVolume v, bool withTimes = true)
    {
        var lines = new List<string>();
        var seen = new HashSet<ulong>();
        var queue = new Queue<(ulong Ino, string Path)>();
        queue.Enqueue((DaxVolume.RootIno, ""));
        seen.Add(DaxVolume.RootIno);
        lines.Add(Describe(v, DaxVolume.RootIno, "/", withTimes));
        while (queue.Count > 0)
        {
            var (dir, path) = queue.Dequeue();
            foreach (DirEntry e in v.ReadDirectory(dir).Where(e => e.Cookie > 2))
            {
                string p = path + "/" + e.NameString;
                lines.Add(Describe(v, e.Ino, p, withTimes) + $" dtype={e.Type}");
                if (v.GetAttributes(e.Ino).IsDirectory && seen.Add(e.Ino))
                    queue.Enqueue((e.Ino, p));
            }
        }
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    private static string Describe(DaxVolume v, ulong ino, string path, bool withTimes)
    {
        InodeAttributes a = v.GetAttributes(ino);
        var sb = new StringBuilder();
        sb.Append($"{path} ino={a.Ino} mode={Convert.ToString(a.Mode, 8)} nlink={a.Nlink} uid={a.Uid} gid={a.Gid} size={a.Size} blocks={a.Blocks} rdev={a.Rdev} gen={a.Generation}");
        if (withTimes)
            sb.Append($" atime={a.AtimeNs} mtime={a.MtimeNs} ctime={a.CtimeNs} btime={a.BtimeNs}");
        if (a.IsRegularFile)
        {
            var buf = new byte[a.Size];
            int n = v.Read(ino, 0, buf);
            sb.Append($" read={n} sha={Convert.ToHexString(SHA256.HashData(buf.AsSpan(0, n)))[..16]}");
        }
        if (a.IsSymlink)
            sb.Append($" target={Convert.ToHexString(v.ReadLink(ino))}");
        foreach (byte[] name in v.ListXattrs(ino))
            sb.Append($" xattr[{Encoding.UTF8.GetString(name)}]={Convert.ToHexString(v.GetXattr(ino, name))}");
        return sb.ToString();
    }

    /// <summary>Lists every directory reachable from the root, stats every entry, reads every regular file (up to a
    /// bound, plus its extent list, its last bytes and SEEK_DATA/HOLE), every symlink and every xattr. A
    /// <see cref="DaxFsException"/> on one inode is counted and the walk goes on with the next; any other exception
    /// propagates (the caller decides). Returns the inodes visited and the DaxFS errors met.</summary>
    public static (int Visited, int DaxErrors) Exercise(DaxVolume v, long maxReadBytes = 16 << 20)
    {
        var seen = new HashSet<ulong> { DaxVolume.RootIno };
        var queue = new Queue<ulong>();
        queue.Enqueue(DaxVolume.RootIno);
        var buf = new byte[1 << 16];
        int errors = 0;
        _ = v.StatFs();
        while (queue.Count > 0)
        {
            ulong dir = queue.Dequeue();
            IReadOnlyList<DirEntry> entries;
            try
            {
                TouchXattrs(v, dir);
                // Paged listing too, as FUSE does it.
                ulong cookie = 0;
                for (int guard = 0; guard < 1_000_000; guard++)
                {
                    var page = v.ReadDirectory(dir, cookie, 7);
                    if (page.Count == 0)
                        break;
                    cookie = page[^1].Cookie;
                }
                entries = v.ReadDirectory(dir);
            }
            catch (DaxFsException)
            {
                errors++;
                continue;
            }
            foreach (DirEntry e in entries)
            {
                try
                {
                    InodeAttributes a = v.GetAttributes(e.Ino);
                    if (e.Cookie <= 2)
                        continue;
                    _ = v.Lookup(dir, e.Name);
                    if (!seen.Add(e.Ino))
                        continue;
                    TouchXattrs(v, e.Ino);
                    if (a.IsDirectory)
                    {
                        queue.Enqueue(e.Ino);
                    }
                    else if (a.IsRegularFile)
                    {
                        long limit = Math.Min(a.Size, maxReadBytes);
                        for (long off = 0; off < limit; off += buf.Length)
                            v.Read(e.Ino, off, buf);
                        if (a.Size > 0)
                            v.Read(e.Ino, Math.Max(0, a.Size - buf.Length), buf);
                        v.ReadExtents(e.Ino, 0, a.Size, (_, _) => { });
                        SeekBoth(v, e.Ino);
                    }
                    else if (a.IsSymlink)
                    {
                        _ = v.ReadLink(e.Ino);
                    }
                }
                catch (DaxFsException)
                {
                    errors++;
                }
            }
        }
        return (seen.Count, errors);
    }

    private static void SeekBoth(DaxVolume v, ulong ino)
    {
        foreach (bool data in new[] { true, false })
        {
            try
            {
                _ = v.Seek(ino, 0, data);
            }
            catch (DaxFsException x) when (x.Errno == Errno.ENXIO)
            {
                // No data (or an empty file): a clean answer.
            }
        }
    }

    private static void TouchXattrs(DaxVolume v, ulong ino)
    {
        foreach (byte[] name in v.ListXattrs(ino))
            _ = v.GetXattr(ino, name);
    }

    /// <summary>The size a regular file's content reads as.</summary>
    public static byte[] ReadAll(DaxVolume v, string path)
    {
        ulong ino = v.Resolve(path);
        var buf = new byte[v.GetAttributes(ino).Size];
        int n = v.Read(ino, 0, buf);
        return buf.AsSpan(0, n).ToArray();
    }

    /// <summary>The device extents of a file: (file offset, device offset or -1, length).</summary>
    public static List<(long FileOffset, long DevOffset, long Length)> Extents(DaxVolume v, ulong ino)
    {
        var list = new List<(long, long, long)>();
        long pos = 0;
        v.ReadExtents(ino, 0, long.MaxValue / 2, (dev, len) =>
        {
            list.Add((pos, dev, len));
            pos += len;
        });
        return list;
    }

    /// <summary>Blocks of the inode table, raw.</summary>
    public static byte[] InodeTable(DaxFs.Pmem.PmemDevice dev)
    {
        var sb = Media.Geometry(dev);
        return Media.Read(dev, sb.InodeTableStart * Layout.BlockSize, checked((int)(sb.InodeCount * Layout.InodeSize)));
    }
}
