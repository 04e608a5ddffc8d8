using System.Text;
using DaxFs.Format;
using DaxFs.Journal;
using DaxFs.Namespace;

namespace DaxFs;

public sealed partial class DaxVolume
{
    /// <summary>The value of extended attribute <paramref name="name"/>; ENODATA if absent.</summary>
    public byte[] GetXattr(ulong ino, ReadOnlySpan<byte> name)
    {
        ThrowIfDisposed();
        ValidateXattrName(name);
        Inode i = Get(ino);
        EnterRead(i);
        try
        {
            foreach (var (n, v) in i.Xattrs ?? [])
                if (name.SequenceEqual(n))
                    return (byte[])v.Clone();
            throw new DaxFsException(Errno.ENODATA, $"inode {ino} has no attribute '{Show(name)}'");
        }
        finally
        {
            i.Lock.ExitReadLock();
        }
    }

    /// <inheritdoc cref="GetXattr(ulong, ReadOnlySpan{byte})"/>
    public byte[] GetXattr(ulong ino, string name) => GetXattr(ino, Encoding.UTF8.GetBytes(name));

    /// <summary>The names of the extended attributes of <paramref name="ino"/>, in the order they were set.</summary>
    public IReadOnlyList<byte[]> ListXattrs(ulong ino)
    {
        ThrowIfDisposed();
        Inode i = Get(ino);
        EnterRead(i);
        try
        {
            return (i.Xattrs ?? []).Select(e => (byte[])e.Name.Clone()).ToList();
        }
        finally
        {
            i.Lock.ExitReadLock();
        }
    }

    /// <summary>Sets an extended attribute (stored on the media; all of an inode's attributes share one 4 KiB block,
    /// ENOSPC beyond it).</summary>
    public void SetXattr(ulong ino, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, XattrFlags flags = XattrFlags.None)
    {
        ThrowIfDisposed();
        ValidateXattrName(name);
        if ((flags & ~(XattrFlags.Create | XattrFlags.Replace)) != 0)
            throw new DaxFsException(Errno.EINVAL, $"xattr flags {flags} are invalid");
        if (value.Length > ushort.MaxValue)
            throw new DaxFsException(Errno.E2BIG, $"an attribute value of {value.Length} bytes is too large");
        Inode i = Get(ino);
        EnterWrite(i);
        try
        {
            var set = (i.Xattrs ?? []).ToList();
            int at = IndexOfXattr(set, name);
            if (at >= 0 && (flags & XattrFlags.Create) != 0)
                throw new DaxFsException(Errno.EEXIST, $"inode {ino} already has attribute '{Show(name)}'");
            if (at < 0 && (flags & XattrFlags.Replace) != 0)
                throw new DaxFsException(Errno.ENODATA, $"inode {ino} has no attribute '{Show(name)}'");
            if (at >= 0)
                set[at] = (set[at].Name, value.ToArray());
            else
                set.Add((name.ToArray(), value.ToArray()));
            if (XattrFormat.Size(set) > Layout.BlockSize)
                throw new DaxFsException(Errno.ENOSPC, $"the attributes of inode {ino} would not fit in one {Layout.BlockSize}-byte block");
            StoreXattrs(i, set, freeing: false);
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <inheritdoc cref="SetXattr(ulong, ReadOnlySpan{byte}, ReadOnlySpan{byte}, XattrFlags)"/>
    public void SetXattr(ulong ino, string name, ReadOnlySpan<byte> value, XattrFlags flags = XattrFlags.None) =>
        SetXattr(ino, Encoding.UTF8.GetBytes(name), value, flags);

    /// <summary>Removes an extended attribute; ENODATA if absent.</summary>
    public void RemoveXattr(ulong ino, ReadOnlySpan<byte> name)
    {
        ThrowIfDisposed();
        ValidateXattrName(name);
        Inode i = Get(ino);
        EnterWrite(i);
        try
        {
            var set = (i.Xattrs ?? []).ToList();
            int at = IndexOfXattr(set, name);
            if (at < 0)
                throw new DaxFsException(Errno.ENODATA, $"inode {ino} has no attribute '{Show(name)}'");
            set.RemoveAt(at);
            StoreXattrs(i, set, freeing: true);
        }
        finally
        {
            i.Lock.ExitWriteLock();
        }
    }

    /// <inheritdoc cref="RemoveXattr(ulong, ReadOnlySpan{byte})"/>
    public void RemoveXattr(ulong ino, string name) => RemoveXattr(ino, Encoding.UTF8.GetBytes(name));

    /// <summary>Writes the set into a new block (ordered), switches the inode to it and frees the old one.</summary>
    private void StoreXattrs(Inode i, List<(byte[] Name, byte[] Value)> set, bool freeing)
    {
        using var tx = Tx.Begin(this);
        tx.Reserve(set.Count > 0 ? 1 : 0, freeing);
        tx.BeginChanges();
        long old = i.Rec.XattrBlock;
        if (set.Count > 0)
        {
            long block = tx.AllocateOne(old != 0 ? old + 1 : -1);
            OrderedWrite(tx, block * Layout.BlockSize, XattrFormat.Encode(set, i.Ino, i.Rec.Generation));
            i.Rec.XattrBlock = block;
            i.Rec.Blocks++;
        }
        else
        {
            i.Rec.XattrBlock = 0;
        }
        if (old != 0)
        {
            tx.Free(old, 1);
            i.Rec.Blocks--;
        }
        i.Xattrs = set.Count > 0 ? set : null;
        i.Rec.CtimeNs = NowNs();
        tx.Touch(i);
        tx.Commit();
    }

    private static int IndexOfXattr(List<(byte[] Name, byte[] Value)> set, ReadOnlySpan<byte> name)
    {
        for (int k = 0; k < set.Count; k++)
            if (name.SequenceEqual(set[k].Name))
                return k;
        return -1;
    }

    private static void ValidateXattrName(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty || name.Length > XattrFormat.MaxNameBytes)
            throw new DaxFsException(name.IsEmpty ? Errno.EINVAL : Errno.ERANGE, $"attribute name of {name.Length} bytes is invalid");
        if (name.IndexOf((byte)0) >= 0)
            throw new DaxFsException(Errno.EINVAL, "attribute name contains NUL");
        // The namespaces DaxFS stores. system.* (POSIX ACLs) is refused so that programs fall back to chmod, as
        // they do on file systems without ACL support; unknown namespaces are refused as Linux does.
        if (!name.StartsWith("user."u8) && !name.StartsWith("trusted."u8) && !name.StartsWith("security."u8))
            throw new DaxFsException(Errno.EOPNOTSUPP, $"attribute namespace of '{Show(name)}' is not supported (user., trusted., security.)");
    }
}
