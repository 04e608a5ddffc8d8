using System.Runtime.InteropServices;
using System.Text;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse.Tests;

/// <summary>The dispatcher without a mount: request bytes in, reply bytes out, over the in-memory file system.</summary>
public class DispatcherTests
{
    private const int ENOENT = 2, EIO = 5, EINTR = 4, EEXIST = 17, ENOTEMPTY = 39, ENOSYS = 38, ERANGE = 34,
        ENODATA = 61, EPROTO = 71;

    [Fact]
    public void InitNegotiatesWhatDaxFsWantsAndNeverWritebackCache()
    {
        using var h = new DispatcherHarness(init: false);
        byte[] payload = h.Ok(Fixtures.KernelInit());
        Assert.Equal(64, payload.Length);
        var init = MemoryMarshal.Read<FuseInitOut>(payload);
        var flags = (FuseInitFlags)init.Flags;
        var expected = FuseInitFlags.AsyncRead | FuseInitFlags.BigWrites | FuseInitFlags.DoReaddirplus |
            FuseInitFlags.ParallelDirops | FuseInitFlags.MaxPages | FuseInitFlags.CacheSymlinks |
            FuseInitFlags.AsyncDio | FuseInitFlags.ExportSupport | FuseInitFlags.InitExt;
        Assert.Equal(expected, flags);
        // flags2: FUSE_DIRECT_IO_ALLOW_MMAP (bit 36) is wanted, so that direct-I/O files can still be mapped shared.
        Assert.Equal(expected | FuseInitFlags.DirectIoAllowMmap, flags | (FuseInitFlags)((ulong)init.Flags2 << 32));
        Assert.False(flags.HasFlag(FuseInitFlags.WritebackCache)); // the kernel offers it (0x73fffffb has bit 16)
        Assert.Equal((7u, 38u, 131072u), (init.Major, init.Minor, init.MaxReadahead));
        Assert.Equal((1u << 20, (ushort)256, 1u << 4, 1u), (init.MaxWrite, init.MaxPages, init.Flags2, init.TimeGran));
        Assert.True(h.Fs.InitCalled);
        Assert.Equal(45u, h.Fs.Connection.KernelMinor);
        Assert.Equal(38u, h.Fs.Connection.ProtocolMinor);
        Assert.Equal(expected | FuseInitFlags.DirectIoAllowMmap, h.Fs.Connection.Flags);
        Assert.True(h.Dispatcher.InitCompleted.IsSet);
    }

    [Fact]
    public void InitKeepsOnlyWhatTheKernelOffers()
    {
        using var h = new DispatcherHarness(init: false);
        uint offered = (uint)(FuseInitFlags.AsyncRead | FuseInitFlags.BigWrites);
        var init = MemoryMarshal.Read<FuseInitOut>(h.Ok(Fixtures.Init(5, 7, 31, offered)));
        Assert.Equal(offered, init.Flags);
    }

    [Fact]
    public void InitWithoutExportSupportOption()
    {
        using var h = new DispatcherHarness(init: false, options: new FuseMountOptions { ExportSupport = false });
        var init = MemoryMarshal.Read<FuseInitOut>(h.Ok(Fixtures.KernelInit()));
        Assert.False(((FuseInitFlags)init.Flags).HasFlag(FuseInitFlags.ExportSupport));
    }

    [Fact]
    public void InitFromANewerMajorIsAnsweredWithOurMajorOnly()
    {
        using var h = new DispatcherHarness(init: false);
        var init = MemoryMarshal.Read<FuseInitOut>(h.Ok(Fixtures.Init(6, 8, 0, 0xFFFF)));
        Assert.Equal((7u, 38u, 0u), (init.Major, init.Minor, init.Flags));
        Assert.False(h.Fs.InitCalled);
        Assert.Equal(EIO, h.Errno(Fixtures.Lookup(7, 1, "x"))); // still not initialized
    }

    [Fact]
    public void InitFromAnOldKernelFails()
    {
        using var h = new DispatcherHarness(init: false);
        Assert.Equal(EPROTO, h.Errno(Fixtures.Init(8, 7, 22, 0)));
        Assert.Contains("7.22", h.Dispatcher.InitFailure, StringComparison.Ordinal);
        Assert.True(h.Dispatcher.InitCompleted.IsSet);
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    public void BuffersHoldTheLargestRequestAndReply(int maxWrite)
    {
        using var h = new DispatcherHarness(options: new FuseMountOptions { MaxWrite = maxWrite });
        int largestSetxattr = 40 + 8 + 256 + 65536;
        Assert.True(h.Dispatcher.RequestBufferSize >= Math.Max(40 + 40 + maxWrite, largestSetxattr));
        Assert.True(h.Dispatcher.RequestBufferSize >= FuseKernel.MinReadBuffer);
        Assert.True(h.Dispatcher.MaxReplyPayload >= Math.Max(maxWrite, 65536));
    }

    [Fact]
    public void LookupMkdirAndOwnershipFollowTheCaller()
    {
        using var h = new DispatcherHarness();
        Assert.Equal(ENOENT, h.Errno(Fixtures.Lookup(10, 1, "d")));
        var made = MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.MkDir(11, 1, "d", mode: 0x1C0)));
        Assert.Equal(2ul, made.NodeId);
        Assert.Equal((0x41C0u, 1000u, 1000u, 2u), (made.Attr.Mode, made.Attr.Uid, made.Attr.Gid, made.Attr.NLink));
        Assert.Equal((1ul, 0u), (made.EntryValid, made.EntryValidNsec));
        var found = MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.Lookup(12, 1, "d")));
        Assert.Equal(2ul, found.NodeId);
        Assert.Equal(2, h.Fs.LookupCount(2));
        Assert.Equal(EEXIST, h.Errno(Fixtures.MkDir(13, 1, "d")));
    }

    [Fact]
    public void DotAndDotDotLookupsForExportSupport()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.MkDir(10, 1, "d"));
        Assert.Equal(2ul, MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.Lookup(11, 2, "."))).NodeId);
        Assert.Equal(1ul, MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.Lookup(12, 2, ".."))).NodeId);
    }

    [Fact]
    public void CreateWriteReadUsesZeroCopySegments()
    {
        using var h = new DispatcherHarness();
        var created = MemoryMarshal.Read<FuseCreateOut>(h.Ok(Fixtures.Create(10, 1, "f")));
        Assert.Equal((2ul, 2ul, 0x81A4u), (created.Entry.NodeId, created.Open.Fh, created.Entry.Attr.Mode));
        byte[] data = new byte[3 * 4096 + 100];
        new Random(7).NextBytes(data);
        var written = MemoryMarshal.Read<FuseWriteOut>(h.Ok(Fixtures.Write(11, 2, 2, 0, data)));
        Assert.Equal((uint)data.Length, written.Size);
        long before = h.Fs.SegmentsServed;
        byte[] read = h.Ok(Fixtures.Read(12, 2, 2, 0, 65536));
        Assert.Equal(data, read);
        Assert.Equal(1 + 4, h.Channel.PieceCounts[^1]); // header + one segment per page
        Assert.Equal(4, h.Fs.SegmentsServed - before);
        Assert.Equal(data[5000..6000], h.Ok(Fixtures.Read(13, 2, 2, 5000, 1000)));
        Assert.Empty(h.Ok(Fixtures.Read(14, 2, 2, 1 << 20, 4096))); // past the end: zero bytes
    }

    [Fact]
    public void HolesReadAsZeros()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(10, 1, "f"));
        h.Ok(Fixtures.Write(11, 2, 2, 200_000, [7]));
        byte[] read = h.Ok(Fixtures.Read(12, 2, 2, 0, 200_001));
        Assert.Equal(200_001, read.Length);
        Assert.All(read[..200_000], b => Assert.Equal(0, b));
        Assert.Equal(7, read[^1]);
    }

    [Fact]
    public void GetAttrAndSetAttr()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(10, 1, "f"));
        h.Ok(Fixtures.Write(11, 2, 2, 0, new byte[10_000]));
        var attr = MemoryMarshal.Read<FuseAttrOut>(h.Ok(Fixtures.GetAttr(12, 2)));
        Assert.Equal((10_000ul, 24ul, 1ul), (attr.Attr.Size, attr.Attr.Blocks, attr.AttrValid));
        var set = MemoryMarshal.Read<FuseAttrOut>(h.Ok(Fixtures.SetAttr(13, 2,
            FuseSetAttrFields.Size | FuseSetAttrFields.Mode | FuseSetAttrFields.Uid | FuseSetAttrFields.Gid |
            FuseSetAttrFields.Atime | FuseSetAttrFields.Mtime, size: 5000, mode: 0x8180, uid: 7, gid: 8,
            atime: 1_000_000, atimeNs: 5, mtime: 2_000_000, mtimeNs: 6)));
        Assert.Equal((5000ul, 0x8180u, 7u, 8u), (set.Attr.Size, set.Attr.Mode, set.Attr.Uid, set.Attr.Gid));
        Assert.Equal((1_000_000ul, 5u, 2_000_000ul, 6u),
            (set.Attr.Atime, set.Attr.AtimeNsec, set.Attr.Mtime, set.Attr.MtimeNsec));
    }

    [Fact]
    public void SymlinkAndReadlink()
    {
        using var h = new DispatcherHarness();
        byte[] request = new RequestBuilder(FuseOpcode.Symlink, 10, 1).Name("l").Name("target/of/link").Build();
        var entry = MemoryMarshal.Read<FuseEntryOut>(h.Ok(request));
        Assert.Equal((0xA1FFu, 14ul), (entry.Attr.Mode, entry.Attr.Size));
        byte[] target = h.Ok(new RequestBuilder(FuseOpcode.ReadLink, 11, entry.NodeId).Build());
        Assert.Equal("target/of/link", Encoding.UTF8.GetString(target));
    }

    [Fact]
    public void LinkUnlinkRmdir()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.MkDir(10, 1, "d"));
        h.Ok(Fixtures.Create(11, 2, "f"));
        var linked = MemoryMarshal.Read<FuseEntryOut>(h.Ok(new RequestBuilder(FuseOpcode.Link, 12, 1).U64(3)
            .Name("hard").Build()));
        Assert.Equal((3ul, 2u), (linked.NodeId, linked.Attr.NLink));
        Assert.Equal(ENOTEMPTY, h.Errno(new RequestBuilder(FuseOpcode.RmDir, 13, 1).Name("d").Build()));
        h.Ok(new RequestBuilder(FuseOpcode.Unlink, 14, 2).Name("f").Build());
        h.Ok(new RequestBuilder(FuseOpcode.RmDir, 15, 1).Name("d").Build());
        Assert.Equal(1u, MemoryMarshal.Read<FuseAttrOut>(h.Ok(Fixtures.GetAttr(16, 3))).Attr.NLink);
    }

    [Fact]
    public void RenameAndRename2Flags()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(10, 1, "a"));
        h.Ok(Fixtures.Create(11, 1, "b"));
        Assert.Equal(EEXIST, h.Errno(Fixtures.Rename2(12, 1, "a", 1, "b", (uint)FuseRenameFlags.NoReplace)));
        h.Ok(Fixtures.Rename2(13, 1, "a", 1, "b", (uint)FuseRenameFlags.Exchange));
        Assert.Equal(3ul, MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.Lookup(14, 1, "a"))).NodeId);
        Assert.Equal(2ul, MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.Lookup(15, 1, "b"))).NodeId);
        h.Ok(Fixtures.Rename(16, 1, "a", 1, "c"));
        Assert.Equal(ENOENT, h.Errno(Fixtures.Lookup(17, 1, "a")));
        Assert.Equal(3ul, MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.Lookup(18, 1, "c"))).NodeId);
    }

    [Fact]
    public void ReaddirListsEntriesWithTheirNextOffsets()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.MkDir(10, 1, "dir"));
        h.Ok(Fixtures.Create(11, 1, "file"));
        var entries = ParseDirents(h.Ok(Fixtures.Read(12, 1, 1, 0, 4096, FuseOpcode.ReadDir)));
        Assert.Equal([(".", 1ul, 1ul, 4u), ("..", 1ul, 2ul, 4u), ("dir", 2ul, 3ul, 4u), ("file", 3ul, 4ul, 8u)],
            entries);
        var rest = ParseDirents(h.Ok(Fixtures.Read(13, 1, 1, 3, 4096, FuseOpcode.ReadDir)));
        Assert.Equal([("file", 3ul, 4ul, 8u)], rest);
        var small = ParseDirents(h.Ok(Fixtures.Read(14, 1, 1, 0, 64, FuseOpcode.ReadDir)));
        Assert.Equal(2, small.Count); // 32 + 32 bytes
    }

    [Fact]
    public void ReaddirplusFillsEntriesAndCountsLookups()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.MkDir(10, 1, "dir"));
        h.Ok(Fixtures.Create(11, 1, "file"));
        long before = h.Fs.LookupCount(3);
        byte[] payload = h.Ok(Fixtures.Read(12, 1, 1, 0, 4096, FuseOpcode.ReadDirPlus));
        var records = new List<(ulong NodeId, string Name, uint Mode)>();
        for (int at = 0; at < payload.Length;)
        {
            var plus = MemoryMarshal.Read<FuseDirentPlus>(payload.AsSpan(at));
            string name = Encoding.UTF8.GetString(payload, at + 152, (int)plus.Dirent.NameLen);
            records.Add((plus.EntryOut.NodeId, name, plus.EntryOut.Attr.Mode));
            at += FuseReplyEncoder.DirentPlusSize((int)plus.Dirent.NameLen);
        }
        Assert.Equal([(0ul, ".", 0u), (0ul, "..", 0u), (2ul, "dir", 0x41EDu), (3ul, "file", 0x81A4u)], records);
        Assert.Equal(before + 1, h.Fs.LookupCount(3));
    }

    [Fact]
    public void XattrsWithSizeQueriesAndErange()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.SetXattr(10, 1, "user.b", [1, 2, 3]));
        h.Ok(Fixtures.SetXattr(11, 1, "user.a", [9]));
        Assert.Equal(EEXIST, h.Errno(Fixtures.SetXattr(12, 1, "user.a", [0], flags: 1)));
        Assert.Equal(3u, MemoryMarshal.Read<FuseGetXattrOut>(h.Ok(Fixtures.GetXattr(13, 1, "user.b", 0))).Size);
        Assert.Equal(ERANGE, h.Errno(Fixtures.GetXattr(14, 1, "user.b", 2)));
        Assert.Equal(new byte[] { 1, 2, 3 }, h.Ok(Fixtures.GetXattr(15, 1, "user.b", 100)));
        Assert.Equal(14u, MemoryMarshal.Read<FuseGetXattrOut>(h.Ok(Fixtures.ListXattr(16, 1, 0))).Size);
        Assert.Equal("user.a\0user.b\0", Encoding.UTF8.GetString(h.Ok(Fixtures.ListXattr(17, 1, 14))));
        Assert.Equal(ERANGE, h.Errno(Fixtures.ListXattr(18, 1, 13)));
        h.Ok(new RequestBuilder(FuseOpcode.RemoveXattr, 19, 1).Name("user.b").Build());
        Assert.Equal(ENODATA, h.Errno(Fixtures.GetXattr(20, 1, "user.b", 100)));
    }

    [Fact]
    public void FallocatePunchHoleAndLseekDataHole()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(10, 1, "f"));
        h.Ok(Fixtures.Write(11, 2, 2, 0, Enumerable.Repeat((byte)1, 4 * 4096).ToArray()));
        h.Ok(Fixtures.Fallocate(12, 2, 4096, 8192, (uint)(FuseFallocateFlags.PunchHole | FuseFallocateFlags.KeepSize)));
        Assert.Equal(4096ul, MemoryMarshal.Read<FuseLseekOut>(h.Ok(Fixtures.Lseek(13, 2, 0, 4))).Offset);
        Assert.Equal(12288ul, MemoryMarshal.Read<FuseLseekOut>(h.Ok(Fixtures.Lseek(14, 2, 4096, 3))).Offset);
        byte[] read = h.Ok(Fixtures.Read(15, 2, 2, 0, 4 * 4096));
        Assert.Equal((1, 0, 0, 1), (read[0], read[4096], read[12287], read[12288]));
        h.Ok(Fixtures.Fallocate(16, 2, 16384, 4096, 0));
        Assert.Equal(20480ul, MemoryMarshal.Read<FuseAttrOut>(h.Ok(Fixtures.GetAttr(17, 2))).Attr.Size);
    }

    [Fact]
    public void CopyFileRange()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(10, 1, "a"));
        h.Ok(Fixtures.Create(11, 1, "b"));
        h.Ok(Fixtures.Write(12, 2, 2, 0, Encoding.ASCII.GetBytes("0123456789")));
        byte[] request = new RequestBuilder(FuseOpcode.CopyFileRange, 13, 2).U64(2).U64(2).U64(3).U64(3).U64(100)
            .U64(5).U64(0).Build();
        Assert.Equal(5u, MemoryMarshal.Read<FuseWriteOut>(h.Ok(request)).Size);
        Assert.Equal("23456", Encoding.ASCII.GetString(h.Ok(Fixtures.Read(14, 3, 3, 100, 10))));
    }

    [Fact]
    public void StatfsReplyFields()
    {
        using var h = new DispatcherHarness();
        var s = MemoryMarshal.Read<FuseKstatfs>(h.Ok(new RequestBuilder(FuseOpcode.StatFs, 10, 1).Build()));
        Assert.Equal((1ul << 20, 1ul << 19, 4096u, 255u, 4096u), (s.Blocks, s.BFree, s.BSize, s.NameLen, s.FrSize));
    }

    [Fact]
    public void ForgetAndBatchForgetReleaseLookups()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(10, 1, "f"));
        h.Ok(Fixtures.Lookup(11, 1, "f"));
        h.Ok(new RequestBuilder(FuseOpcode.Unlink, 12, 1).Name("f").Build());
        Assert.True(h.Fs.Exists(2)); // unlinked but still looked up
        Assert.Null(h.Send(Fixtures.Forget(13, 2, 1)));
        Assert.Equal(1, h.Fs.LookupCount(2));
        Assert.Null(h.Send(Fixtures.BatchForget(14, (2, 1))));
        Assert.False(h.Fs.Exists(2));
    }

    [Fact]
    public void InterruptIsVisibleToTheInterruptedRequest()
    {
        using var h = new DispatcherHarness(fileSystem: new InterruptibleFs());
        Assert.Null(h.Send(Fixtures.Interrupt(10, 500)));
        Assert.Equal(1, h.Dispatcher.Interrupts.Received);
        Assert.Equal(EINTR, h.Errno(new RequestBuilder(FuseOpcode.StatFs, 500, 1).Build()));
        Assert.Equal(ENOSYS, h.Errno(new RequestBuilder(FuseOpcode.StatFs, 500, 1).Build())); // forgotten when done
    }

    [Fact]
    public void DestroyCallsTheFileSystemOnce()
    {
        using var h = new DispatcherHarness();
        h.Ok(new RequestBuilder(FuseOpcode.Destroy, 10, 0).Build());
        Assert.Equal(FuseDispatchResult.Destroyed, h.LastResult);
        Assert.False(h.Dispatcher.DestroyOnce());
        Assert.Equal(1, h.Fs.DestroyCalls);
    }

    [Fact]
    public void UnexpectedExceptionsBecomeEioLoggedOnce()
    {
        using var h = new DispatcherHarness(fileSystem: new ThrowingFs());
        Assert.Equal(EIO, h.Errno(Fixtures.Lookup(10, 1, "x")));
        Assert.Equal(EIO, h.Errno(Fixtures.Lookup(11, 1, "y")));
        Assert.Equal(2, h.Dispatcher.Log.UnexpectedExceptions);
        Assert.Single(h.Log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries),
            l => l.Contains("LOOKUP failed with an unexpected exception", StringComparison.Ordinal));
        Assert.Equal(EIO, h.Errno(Fixtures.Read(12, 1, 0, 0, 10))); // reply larger than asked
        Assert.Equal(EIO, h.Errno(Fixtures.Write(13, 1, 0, 0, [1, 2]))); // claims more written than given
        Assert.Equal(1, ((ThrowingFs)h.FileSystem).LeasesReleased);
    }

    [Fact]
    public void BaseClassAnswersEnosys()
    {
        using var h = new DispatcherHarness(fileSystem: new EmptyFs());
        Assert.Equal(ENOSYS, h.Errno(Fixtures.Lookup(10, 1, "x")));
        Assert.Equal(ENOSYS, h.Errno(Fixtures.Open(11, 1)));
        Assert.Equal(ENOSYS, h.Errno(Fixtures.GetXattr(12, 1, "user.x", 0)));
        Assert.Null(h.Send(Fixtures.Forget(13, 1, 1)));
    }

    [Fact]
    public void InterruptedEntryReplyGivesTheLookupBack()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.MkDir(10, 1, "d"));
        Assert.Equal(1, h.Fs.LookupCount(2));
        h.Channel.NextResult = ENOENT; // the kernel refuses the reply: the caller was interrupted
        h.Send(Fixtures.Lookup(11, 1, "d"));
        Assert.Equal(1, h.Fs.LookupCount(2));
    }

    [Fact]
    public void RootInodeIsMappedToNodeOne()
    {
        using var h = new DispatcherHarness(options: new FuseMountOptions { RootInode = 100 });
        var made = MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.MkDir(10, 1, "d")));
        Assert.Equal(101ul, made.NodeId);
        var parent = MemoryMarshal.Read<FuseEntryOut>(h.Ok(Fixtures.Lookup(11, 101, "..")));
        Assert.Equal((1ul, 100ul), (parent.NodeId, parent.Attr.Ino)); // node 1, but stat shows the real inode
        Assert.Equal(100ul, MemoryMarshal.Read<FuseAttrOut>(h.Ok(Fixtures.GetAttr(12, 1))).Attr.Ino);
    }

    private static List<(string Name, ulong Ino, ulong Off, uint Type)> ParseDirents(byte[] payload)
    {
        var result = new List<(string, ulong, ulong, uint)>();
        for (int at = 0; at < payload.Length;)
        {
            var d = MemoryMarshal.Read<FuseDirent>(payload.AsSpan(at));
            result.Add((Encoding.UTF8.GetString(payload, at + 24, (int)d.NameLen), d.Ino, d.Off, d.Type));
            at += FuseReplyEncoder.DirentSize((int)d.NameLen);
        }
        return result;
    }

    [Fact]
    public void KillPrivV2IsNegotiatedAndAWriteThatKillsSetIdBitsInvalidatesTheCachedMode()
    {
        var fs = new KillPrivFs();
        using var h = new DispatcherHarness(init: false, fileSystem: fs);
        var init = MemoryMarshal.Read<FuseInitOut>(h.Ok(Fixtures.KernelInit()));
        Assert.True(((FuseInitFlags)init.Flags).HasFlag(FuseInitFlags.HandleKillprivV2));
        // A write by a caller with CAP_FSETID (write_flags 0): nothing to clear, one reply only.
        int before = h.Channel.Replies.Count;
        h.Ok(Fixtures.Write(10, 5, 5, 0, [1, 2, 3]));
        Assert.Equal((0, before + 1), (fs.Kills, h.Channel.Replies.Count));
        // FUSE_WRITE_KILL_SUIDGID: the file system clears the bits, then a FUSE_NOTIFY_INVAL_INODE (unique 0, code 2,
        // node 5, offset -1: attributes only) goes out before the WRITE reply.
        byte[] write = Fixtures.Write(11, 5, 5, 0, [1, 2, 3]);
        BitConverter.TryWriteBytes(write.AsSpan(40 + 20), 4u); // fuse_write_in.write_flags
        var written = MemoryMarshal.Read<FuseWriteOut>(h.Ok(write));
        Assert.Equal((3u, 1), (written.Size, fs.Kills));
        byte[] notify = h.Channel.Replies[^2];
        Assert.Equal(40, notify.Length);
        Assert.Equal((40u, 2, 0ul), (BitConverter.ToUInt32(notify, 0), DispatcherHarness.Error(notify), DispatcherHarness.Unique(notify)));
        Assert.Equal((5ul, -1L, 0L), (BitConverter.ToUInt64(notify, 16), BitConverter.ToInt64(notify, 24), BitConverter.ToInt64(notify, 32)));
        Assert.Equal(11ul, DispatcherHarness.Unique(h.Channel.Replies[^1]));
        // FUSE_OPEN_KILL_SUIDGID (open with O_TRUNC by a caller without CAP_FSETID).
        byte[] open = Fixtures.Open(12, 5, flags: 0x201);
        BitConverter.TryWriteBytes(open.AsSpan(40 + 4), 1u); // fuse_open_in.open_flags
        h.Ok(open);
        Assert.Equal(2, fs.Kills);
    }

    [Fact]
    public void KillPrivV2IsNotAskedForAFileSystemThatDoesNotHandleIt()
    {
        using var h = new DispatcherHarness(init: false, fileSystem: new EmptyFs());
        var init = MemoryMarshal.Read<FuseInitOut>(h.Ok(Fixtures.KernelInit()));
        Assert.False(((FuseInitFlags)init.Flags).HasFlag(FuseInitFlags.HandleKillprivV2));
    }

    private sealed class KillPrivFs : FuseFileSystemBase
    {
        public int Kills;

        public override bool HandlesKillPrivV2 => true;

        public override bool KillSuidGid(FuseRequestContext context, ulong ino)
        {
            Assert.Equal(5ul, ino);
            Kills++;
            return true;
        }

        public override FuseOpenResult Open(FuseRequestContext context, ulong ino, int flags) => new(ino);

        public override int Write(FuseRequestContext context, ulong ino, ulong handle, long offset,
            ReadOnlySpan<byte> data, int flags) => data.Length;
    }

    private sealed class EmptyFs : FuseFileSystemBase;

    private sealed class InterruptibleFs : FuseFileSystemBase
    {
        public override FuseStatFs StatFs(FuseRequestContext context, ulong ino) => context.IsInterrupted
            ? throw new DaxFsException((Errno)4, "interrupted")
            : throw new DaxFsException(Errno.ENOSYS, "not interrupted");
    }

    private sealed class ThrowingFs : FuseFileSystemBase
    {
        public int LeasesReleased;

        public override FuseEntry Lookup(FuseRequestContext context, ulong parent, string name) =>
            throw new InvalidOperationException("bug");

        public override void Read(FuseRequestContext context, ulong ino, ulong handle, long offset, int size,
            FuseReadReply reply)
        {
            reply.Hold(new Lease(this));
            reply.AddBytes(new byte[size + 1]);
        }

        public override int Write(FuseRequestContext context, ulong ino, ulong handle, long offset,
            ReadOnlySpan<byte> data, int flags) => data.Length + 1;

        private sealed class Lease(ThrowingFs fs) : IDisposable
        {
            public void Dispose() => fs.LeasesReleased++;
        }
    }
}
