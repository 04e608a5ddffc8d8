using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

// The open-file requests: open/create/release/flush/fsync, read (zero-copy), write, fallocate, lseek,
// copy_file_range.
internal sealed unsafe partial class FuseDispatcher
{
    private void Open(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseOpenIn>();
        // HANDLE_KILLPRIV_V2: an O_TRUNC open by a caller without CAP_FSETID clears the set-id bits.
        if ((m.OpenFlags & FuseKernel.OpenKillSuidGid) != 0 && KillPrivV2 && _fs.KillSuidGid(c.Context, c.Node))
            NotifyInvalidateAttributes(c, c.Node);
        var result = _fs.Open(c.Context, c.Node, (int)m.Flags);
        if (ReplyOk(c, ToOpenOut(result)) == FuseErrno.ENOENT)
            ReleaseQuietly(c, result.Handle, directory: false); // open(2) was interrupted: nobody holds it
    }

    /// <summary>FUSE_NOTIFY_INVAL_INODE with a negative offset: the kernel drops its cached attributes of
    /// <paramref name="ino"/> (a mode the file system changed on its own, as for set-id bits cleared by a write),
    /// and keeps the page cache. A notification has unique 0 and the notify code in the error field; a failure
    /// (ENOENT: the kernel has no such inode cached) needs no handling.</summary>
    private static void NotifyInvalidateAttributes(in FuseCall c, ulong ino)
    {
        const int Length = 16 + 24; // fuse_out_header + fuse_notify_inval_inode_out
        byte* message = stackalloc byte[Length];
        var span = new Span<byte>(message, Length);
        FuseReplyEncoder.WriteHeader(span, Length, FuseKernel.NotifyInvalInode, 0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(span[16..], ino);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(span[24..], -1); // attributes only
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(span[32..], 0);
        var iov = new FuseIoVec((nint)message, Length);
        c.State.Channel.Send(&iov, 1);
    }

    /// <summary>Whether INIT negotiated FUSE_HANDLE_KILLPRIV_V2.</summary>
    private bool KillPrivV2 => Connection is { } info && (info.Flags & FuseInitFlags.HandleKillprivV2) != 0;

    private void Create(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseCreateIn>();
        var result = _fs.Create(c.Context, c.Node, r.ReadName(), m.Mode, m.Umask, (int)m.Flags);
        var reply = new FuseCreateOut { Entry = ToEntryOut(result.Entry), Open = ToOpenOut(result.Open) };
        if (ReplyOk(c, reply) == FuseErrno.ENOENT)
        {
            var node = new FuseCall(c.Context, result.Entry.Attributes.Ino, c.Unique, c.State);
            ReleaseQuietly(node, result.Open.Handle, directory: false);
            ForgetQuietly(result.Entry.Attributes.Ino, 1);
        }
    }

    private void Release(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseReleaseIn>();
        _fs.Release(c.Context, c.Node, m.Fh, (int)m.Flags);
        ReplyEmpty(c);
    }

    private void Flush(in FuseCall c, ref FuseRequestReader r)
    {
        _fs.Flush(c.Context, c.Node, r.Read<FuseFlushIn>().Fh);
        ReplyEmpty(c);
    }

    private void Fsync(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseFsyncIn>();
        _fs.Fsync(c.Context, c.Node, m.Fh, (m.FsyncFlags & FuseKernel.FsyncFdatasync) != 0);
        ReplyEmpty(c);
    }

    private void Read(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseReadIn>();
        long offset = Offset(m.Offset, "read offset");
        var reply = c.State.ReadReply;
        // A range ending past the largest offset is cut there: reads past the end of a file return nothing.
        reply.Reset((int)Math.Min(m.Size, Math.Min(int.MaxValue, long.MaxValue - offset)));
        try
        {
            _fs.Read(c.Context, c.Node, m.Fh, offset, reply.MaxLength, reply);
            // The header goes in front of the pieces: the scratch area starts after it, so nothing is overwritten.
            int length = FuseReplyEncoder.HeaderSize + reply.Length;
            FuseReplyEncoder.WriteHeader(c.State.ReplySpan, length, 0, c.Unique);
            reply.IoVecs[0] = new FuseIoVec((nint)c.State.Reply, FuseReplyEncoder.HeaderSize);
            c.State.Replied = true;
            c.State.Channel.Send(reply.IoVecs, 1 + reply.SegmentCount);
        }
        finally
        {
            reply.ReleaseLeases(e => Log.Unexpected("READ lease", e));
        }
    }

    private void Write(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseWriteIn>();
        long offset = Offset(m.Offset, "write offset");
        var data = r.ReadBytes(m.Size);
        CheckRange(offset, data.Length, "write");
        // HANDLE_KILLPRIV_V2: the kernel leaves clearing the set-id bits of a written file to the file system.
        if ((m.WriteFlags & FuseKernel.WriteKillSuidGid) != 0 && KillPrivV2 && _fs.KillSuidGid(c.Context, c.Node))
            NotifyInvalidateAttributes(c, c.Node);
        int written = _fs.Write(c.Context, c.Node, m.Fh, offset, data, (int)m.Flags);
        if (written < 0 || written > data.Length)
            throw new InvalidOperationException($"Write returned {written} for {data.Length} bytes");
        ReplyOk(c, new FuseWriteOut { Size = (uint)written });
    }

    private void Fallocate(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseFallocateIn>();
        long offset = Offset(m.Offset, "fallocate offset");
        long length = Offset(m.Length, "fallocate length");
        if (length == 0)
            throw new FuseMalformedRequestException(Errno.EINVAL, "fallocate of 0 bytes");
        CheckRange(offset, length, "fallocate");
        _fs.Fallocate(c.Context, c.Node, m.Fh, offset, length, (FuseFallocateFlags)m.Mode);
        ReplyEmpty(c);
    }

    private void Lseek(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseLseekIn>();
        if (m.Whence > FuseKernel.SeekHole)
            throw new FuseMalformedRequestException(Errno.EINVAL, $"lseek whence {m.Whence}");
        // A negative offset (as the kernel passes it, two's complement) is ENXIO for SEEK_DATA/SEEK_HOLE, as on
        // Linux file systems; the file system decides.
        long result = _fs.Lseek(c.Context, c.Node, m.Fh, unchecked((long)m.Offset), (int)m.Whence);
        ReplyOk(c, new FuseLseekOut { Offset = Check(result, "Lseek result") });
    }

    private void CopyFileRange(in FuseCall c, ref FuseRequestReader r)
    {
        var m = r.Read<FuseCopyFileRangeIn>();
        // fuse_write_out.size is 32 bits: ask for no more than fits (the caller loops on a short copy).
        long length = (long)Math.Min(m.Len, uint.MaxValue & ~4095u);
        long offsetIn = Offset(m.OffIn, "source offset"), offsetOut = Offset(m.OffOut, "target offset");
        CheckRange(offsetIn, length, "copy source");
        CheckRange(offsetOut, length, "copy target");
        long copied = _fs.CopyFileRange(c.Context, c.Node, m.FhIn, offsetIn, InNode(m.NodeIdOut), m.FhOut,
            offsetOut, length, m.Flags);
        if (copied < 0 || copied > length)
            throw new InvalidOperationException($"CopyFileRange returned {copied} for {length} bytes");
        ReplyOk(c, new FuseWriteOut { Size = (uint)copied });
    }

    /// <summary>Refuses a range whose end passes the largest file offset (the kernel never sends one; a file
    /// system must not have to guard against the wrap-around).</summary>
    private static void CheckRange(long offset, long length, string what)
    {
        if (offset > long.MaxValue - length)
            throw new FuseMalformedRequestException(Errno.EFBIG, $"{what} range {offset}+{length} passes 2^63");
    }

    private static FuseOpenOut ToOpenOut(in FuseOpenResult result) =>
        new() { Fh = result.Handle, OpenFlags = (uint)result.Flags };

    private void ReleaseQuietly(in FuseCall c, ulong handle, bool directory)
    {
        try
        {
            if (directory)
                _fs.ReleaseDir(c.Context, c.Node, handle);
            else
                _fs.Release(c.Context, c.Node, handle, 0);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.Unexpected(directory ? "RELEASEDIR" : "RELEASE", e);
        }
    }
}
