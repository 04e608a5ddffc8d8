using System.Runtime.InteropServices;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

// The directory-handle requests: opendir, readdir/readdirplus, releasedir, fsyncdir.
internal sealed unsafe partial class FuseDispatcher
{
    private void OpenDir(in FuseCall c, ref FuseRequestReader r)
    {
        var result = _fs.OpenDir(c.Context, c.Node, (int)r.Read<FuseOpenIn>().Flags);
        if (ReplyOk(c, ToOpenOut(result)) == FuseErrno.ENOENT)
            ReleaseQuietly(c, result.Handle, directory: true);
    }

    private void ReadDir(in FuseCall c, ref FuseRequestReader r, bool plus)
    {
        var m = r.Read<FuseReadIn>();
        var buffer = c.State.Directory;
        buffer.Reset(c.State.Payload, (int)Math.Min(m.Size, (uint)c.State.PayloadCapacity), plus);
        _fs.ReadDir(c.Context, c.Node, m.Fh, Offset(m.Offset, "directory offset"), buffer);
        if (plus)
            CompleteDirentPlus(c, buffer);
        ReplyPayload(c, buffer.Length);
    }

    /// <summary>Fills the fuse_entry_out of each READDIRPLUS record with a Lookup made after ReadDir returned (no
    /// call into the file system from inside another). An entry whose Lookup fails keeps node id 0, which the
    /// kernel lists without caching.</summary>
    private void CompleteDirentPlus(in FuseCall c, FuseDirectoryBuffer buffer)
    {
        foreach (var pending in buffer.PendingLookups)
        {
            FuseEntry entry;
            try
            {
                entry = _fs.Lookup(c.Context, c.Node, pending.Name);
            }
            catch (DaxFsException)
            {
                continue; // removed since ReadDir saw it
            }
            var wire = ToEntryOut(entry);
            MemoryMarshal.Write(buffer.EntryOutAt(pending.Position), in wire);
        }
    }

    private void ReleaseDir(in FuseCall c, ref FuseRequestReader r)
    {
        _fs.ReleaseDir(c.Context, c.Node, r.Read<FuseReleaseIn>().Fh);
        ReplyEmpty(c);
    }

    private void FsyncDir(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseFsyncIn>();
        _fs.FsyncDir(c.Context, c.Node, m.Fh, (m.FsyncFlags & FuseKernel.FsyncFdatasync) != 0);
        ReplyEmpty(c);
    }
}
