using System.Text;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

// The extended attribute requests. GETXATTR and LISTXATTR answer a size query (size 0) with fuse_getxattr_out
// and a too-small buffer with ERANGE here, so the file system only ever returns the whole value.
internal sealed partial class FuseDispatcher
{
    private void SetXattr(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseSetXattrIn>();
        string name = r.ReadXattrName();
        if (m.Size > FuseKernel.XattrSizeMax)
            throw new FuseMalformedRequestException(Errno.E2BIG, $"xattr value of {m.Size} bytes");
        var value = r.ReadBytes(m.Size);
        _fs.SetXattr(c.Context, c.Node, name, value, (int)m.Flags);
        ReplyEmpty(c);
    }

    private void GetXattr(in FuseCall c, ref FuseRequestReader r)
    {
        uint size = r.Read<FuseGetXattrIn>().Size;
        var value = _fs.GetXattr(c.Context, c.Node, r.ReadXattrName());
        if (value.Length > FuseKernel.XattrSizeMax)
            throw new DaxFsException(Errno.E2BIG, $"xattr value of {value.Length} bytes");
        if (ReplySizeOnly(c, size, value.Length))
            return;
        value.Span.CopyTo(c.State.PayloadSpan);
        ReplyPayload(c, value.Length);
    }

    private void ListXattr(in FuseCall c, ref FuseRequestReader r)
    {
        uint size = r.Read<FuseGetXattrIn>().Size;
        var names = _fs.ListXattr(c.Context, c.Node);
        var payload = c.State.PayloadSpan;
        int length = 0;
        foreach (string name in names)
        {
            int count = Encoding.UTF8.GetByteCount(name);
            if (count == 0 || length + count + 1 > FuseKernel.XattrSizeMax)
                throw new DaxFsException(Errno.E2BIG, "xattr name list longer than 64 KiB or with an empty name");
            length += Encoding.UTF8.GetBytes(name, payload[length..]);
            payload[length++] = 0;
        }
        if (!ReplySizeOnly(c, size, length))
            ReplyPayload(c, length);
    }

    private void RemoveXattr(in FuseCall c, ref FuseRequestReader r)
    {
        _fs.RemoveXattr(c.Context, c.Node, r.ReadXattrName());
        ReplyEmpty(c);
    }

    /// <summary>Answers a size query, or refuses a buffer that is too small; false when the data should follow.</summary>
    private static bool ReplySizeOnly(in FuseCall c, uint size, int length)
    {
        if (size == 0)
        {
            ReplyOk(c, new FuseGetXattrOut { Size = (uint)length });
            return true;
        }
        if (length > size)
            throw new DaxFsException(Errno.ERANGE, $"value of {length} bytes, buffer of {size}");
        return false;
    }
}
