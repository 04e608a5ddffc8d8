using System.Text;
using DaxFs.Format;

namespace DaxFs;

public sealed partial class DaxVolume
{
    private const int MaxSymlinkFollows = 40;

    /// <summary>The inode a path names ('/'-separated from the root; symbolic links in the middle are followed, the
    /// last one too when <paramref name="followLast"/>).</summary>
    public ulong Resolve(string path, bool followLast = true) => ResolveBytes(Encoding.UTF8.GetBytes(path), followLast);

    /// <summary>stat(2) (or lstat with <paramref name="followLinks"/> false) by path.</summary>
    public InodeAttributes Stat(string path, bool followLinks = true) => GetAttributes(Resolve(path, followLinks));

    /// <summary>Whether a path names something.</summary>
    public bool Exists(string path)
    {
        try
        {
            Resolve(path);
            return true;
        }
        catch (DaxFsException e) when (e.Errno is Errno.ENOENT or Errno.ENOTDIR)
        {
            return false;
        }
    }

    /// <summary>Opens an existing regular file.</summary>
    public DaxFile OpenFile(string path)
    {
        ulong ino = Resolve(path);
        _ = GetRegular(ino);
        return new DaxFile(this, ino);
    }

    /// <summary>Creates a regular file (or, unless <paramref name="exclusive"/>, opens the existing one) and opens it.</summary>
    public DaxFile CreateFile(string path, uint mode = 0x1A4, bool exclusive = false)
    {
        var (parent, name) = ResolveParent(path);
        try
        {
            return new DaxFile(this, CreateFile(parent, name, mode).Ino);
        }
        catch (DaxFsException e) when (e.Errno == Errno.EEXIST && !exclusive)
        {
            return OpenFile(path);
        }
    }

    /// <summary>mkdir by path.</summary>
    public InodeAttributes CreateDirectory(string path, uint mode = 0x1ED)
    {
        var (parent, name) = ResolveParent(path);
        return MakeDirectory(parent, name, mode);
    }

    /// <summary>unlink by path.</summary>
    public void Delete(string path)
    {
        var (parent, name) = ResolveParent(path);
        Unlink(parent, name);
    }

    /// <summary>rmdir by path.</summary>
    public void DeleteDirectory(string path)
    {
        var (parent, name) = ResolveParent(path);
        RemoveDirectory(parent, name);
    }

    /// <summary>rename by path.</summary>
    public void Rename(string from, string to, RenameFlags flags = RenameFlags.None)
    {
        var (p1, n1) = ResolveParent(from);
        var (p2, n2) = ResolveParent(to);
        Rename(p1, n1, p2, n2, flags);
    }

    /// <summary>link by path.</summary>
    public InodeAttributes Link(string existing, string newPath)
    {
        ulong ino = Resolve(existing, followLast: false);
        var (parent, name) = ResolveParent(newPath);
        return Link(ino, parent, name);
    }

    /// <summary>symlink by path.</summary>
    public InodeAttributes Symlink(string path, string target)
    {
        var (parent, name) = ResolveParent(path);
        return CreateSymlink(parent, name, Encoding.UTF8.GetBytes(target));
    }

    /// <summary>readlink by path.</summary>
    public string ReadLink(string path) => Encoding.UTF8.GetString(ReadLink(Resolve(path, followLast: false)));

    /// <summary>The entries of a directory by path, without "." and "..".</summary>
    public IReadOnlyList<DirEntry> List(string path) => ReadDirectory(Resolve(path)).Where(e => e.Cookie > 2).ToList();

    /// <summary>The directory and final name of a path (the directory resolved, the name not).</summary>
    public (ulong Parent, byte[] Name) ResolveParent(string path)
    {
        byte[] p = Encoding.UTF8.GetBytes(path);
        int end = p.Length;
        while (end > 1 && p[end - 1] == '/')
            end--;
        int slash = Array.LastIndexOf(p, (byte)'/', end - 1 >= 0 ? end - 1 : 0);
        byte[] name = p[(slash + 1)..end];
        if (name.Length == 0)
            throw new DaxFsException(Errno.EINVAL, $"path '{path}' has no final name");
        ulong parent = slash <= 0 ? RootIno : ResolveBytes(p[..slash], followLast: true);
        return (parent, name);
    }

    /// <summary>Walks a path from the root, following symbolic links (at most 40: ELOOP).</summary>
    private ulong ResolveBytes(byte[] path, bool followLast)
    {
        ThrowIfDisposed();
        int follows = 0;
        // path_resolution(7): a path ending in "/" or "/." names a directory (a final symlink is then followed).
        ReadOnlySpan<byte> trimmed = path.AsSpan().TrimEnd((byte)'/');
        bool mustBeDir = path.Length > 0 && (path[^1] == '/' || (trimmed.EndsWith("/."u8) || trimmed.SequenceEqual("."u8)));
        ulong ino = Walk(RootIno, path, followLast || mustBeDir, ref follows);
        if (mustBeDir && !GetAttributes(ino).IsDirectory)
            throw new DaxFsException(Errno.ENOTDIR, $"'{Encoding.UTF8.GetString(path)}' ends in '/' but does not name a directory");
        return ino;
    }

    private ulong Walk(ulong start, ReadOnlySpan<byte> path, bool followLast, ref int follows)
    {
        ulong cur = path.Length > 0 && path[0] == '/' ? RootIno : start;
        var parts = new List<byte[]>();
        foreach (Range r in path.Split((byte)'/'))
            if (path[r].Length > 0 && !path[r].SequenceEqual("."u8))
                parts.Add(path[r].ToArray());
        for (int k = 0; k < parts.Count; k++)
        {
            if (parts[k].Length > Layout.MaxNameBytes)
                throw new DaxFsException(Errno.ENAMETOOLONG, $"path component of {parts[k].Length} bytes");
            InodeAttributes dir = GetAttributes(cur);
            if (!dir.IsDirectory)
                throw new DaxFsException(Errno.ENOTDIR, $"inode {cur} is not a directory");
            InodeAttributes next = Lookup(cur, parts[k]);
            bool last = k == parts.Count - 1;
            if (next.IsSymlink && (!last || followLast))
            {
                if (++follows > MaxSymlinkFollows)
                    throw new DaxFsException(Errno.ELOOP, "too many levels of symbolic links");
                byte[] target = ReadLink(next.Ino);
                cur = Walk(cur, target, followLast: true, ref follows);
                continue;
            }
            cur = next.Ino;
        }
        return cur;
    }
}
