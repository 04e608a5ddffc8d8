using System.Text;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

// The namespace and attribute requests: lookup, getattr/setattr, create-a-name, remove, rename, link, statfs.
internal sealed partial class FuseDispatcher
{
    private void Lookup(in FuseCall c, ref FuseRequestReader r) =>
        ReplyEntry(c, _fs.Lookup(c.Context, c.Node, r.ReadName()));

    private void GetAttr(in FuseCall c, ref FuseRequestReader r)
    {
        var g = r.Read<FuseGetAttrIn>();
        ulong? handle = (g.GetAttrFlags & FuseKernel.GetAttrFh) != 0 ? g.Fh : null;
        ReplyAttr(c, _fs.GetAttr(c.Context, c.Node, handle));
    }

    private void SetAttr(in FuseCall c, ref FuseRequestReader r)
    {
        var s = r.Read<FuseSetAttrIn>();
        var fields = (FuseSetAttrFields)s.Valid;
        var request = new FuseSetAttrRequest(fields, fields.HasFlag(FuseSetAttrFields.Handle) ? s.Fh : null,
            Offset(s.Size, "size"), s.Mode, s.Uid, s.Gid, JoinNanoseconds(s.Atime, s.AtimeNsec),
            JoinNanoseconds(s.Mtime, s.MtimeNsec), JoinNanoseconds(s.Ctime, s.CtimeNsec));
        ReplyAttr(c, _fs.SetAttr(c.Context, c.Node, request));
    }

    private void ReadLink(in FuseCall c)
    {
        string target = _fs.ReadLink(c.Context, c.Node);
        var payload = c.State.PayloadSpan;
        if (Encoding.UTF8.GetByteCount(target) is 0 or >= FuseKernel.PathMax)
            throw new InvalidOperationException($"symlink target of {target.Length} characters");
        ReplyPayload(c, Encoding.UTF8.GetBytes(target, payload));
    }

    private void Symlink(in FuseCall c, ref FuseRequestReader r)
    {
        string name = r.ReadName();
        string target = r.ReadPath();
        ReplyEntry(c, _fs.Symlink(c.Context, c.Node, name, target));
    }

    private void MkNod(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseMknodIn>();
        ReplyEntry(c, _fs.MkNod(c.Context, c.Node, r.ReadName(), m.Mode, m.Rdev, m.Umask));
    }

    private void MkDir(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseMkdirIn>();
        ReplyEntry(c, _fs.MkDir(c.Context, c.Node, r.ReadName(), m.Mode, m.Umask));
    }

    private void Unlink(in FuseCall c, ref FuseRequestReader r)
    {
        _fs.Unlink(c.Context, c.Node, r.ReadName());
        ReplyEmpty(c);
    }

    private void RmDir(in FuseCall c, ref FuseRequestReader r)
    {
        _fs.RmDir(c.Context, c.Node, r.ReadName());
        ReplyEmpty(c);
    }

    private void Rename(in FuseCall c, ref FuseRequestReader r)
    {
        ulong newDir = r.Read<FuseRenameIn>().NewDir;
        RenameNames(c, ref r, newDir, FuseRenameFlags.None);
    }

    private void Rename2(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseRename2In>();
        var flags = (FuseRenameFlags)m.Flags;
        const FuseRenameFlags Known = FuseRenameFlags.NoReplace | FuseRenameFlags.Exchange | FuseRenameFlags.Whiteout;
        if ((flags & ~Known) != 0)
            throw new FuseMalformedRequestException(Errno.EINVAL, $"unknown rename flags 0x{m.Flags:x}");
        RenameNames(c, ref r, m.NewDir, flags);
    }

    private void RenameNames(in FuseCall c, ref FuseRequestReader r, ulong newDir, FuseRenameFlags flags)
    {
        string name = r.ReadName();
        string newName = r.ReadName();
        _fs.Rename(c.Context, c.Node, name, InNode(newDir), newName, flags);
        ReplyEmpty(c);
    }

    private void Link(in FuseCall c, ref FuseRequestReader r)
    {
        ulong ino = InNode(r.Read<FuseLinkIn>().OldNodeId);
        ReplyEntry(c, _fs.Link(c.Context, ino, c.Node, r.ReadName()));
    }

    private void StatFs(in FuseCall c)
    {
        var s = _fs.StatFs(c.Context, c.Node);
        ReplyOk(c, new FuseKstatfs
        {
            Blocks = s.Blocks,
            BFree = s.BlocksFree,
            BAvail = s.BlocksAvailable,
            Files = s.Files,
            FFree = s.FilesFree,
            BSize = s.BlockSize,
            NameLen = s.NameMax,
            FrSize = s.FragmentSize == 0 ? s.BlockSize : s.FragmentSize,
        });
    }

    private void Access(in FuseCall c, ref FuseRequestReader r)
    {
        _fs.Access(c.Context, c.Node, (int)r.Read<FuseAccessIn>().Mask);
        ReplyEmpty(c);
    }
}
