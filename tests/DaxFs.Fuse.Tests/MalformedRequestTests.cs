using System.Text;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse.Tests;

/// <summary>Malformed requests: each gets an error reply with the right errno (or, for requests that are never
/// answered, no reply) and nothing throws out of the dispatcher.</summary>
public class MalformedRequestTests
{
    private const int EIO = 5, EINVAL = 22, ENOSYS = 38, ENAMETOOLONG = 36, E2BIG = 7;

    [Fact]
    public void TruncatedHeaderIsAnsweredEio()
    {
        using var h = new DispatcherHarness();
        byte[] request = Fixtures.Lookup(77, 1, "x")[..24];
        var reply = h.Send(request)!;
        Assert.Equal(EIO, -DispatcherHarness.Error(reply));
        Assert.Equal(77ul, DispatcherHarness.Unique(reply));
        Assert.Equal(16, reply.Length);
    }

    [Fact]
    public void RequestTooShortToNameIsDropped()
    {
        using var h = new DispatcherHarness();
        Assert.Null(h.Send(new byte[15]));
        Assert.Equal(FuseDispatchResult.Dropped, h.LastResult);
        Assert.Null(h.Send([]));
    }

    [Fact]
    public void LengthFieldLargerThanTheBufferIsAnsweredEio()
    {
        using var h = new DispatcherHarness();
        var b = new RequestBuilder(FuseOpcode.Lookup, 78, 1).Name("file");
        Assert.Equal(EIO, h.Errno(b.BuildWithLength(4096)));
    }

    [Fact]
    public void LengthFieldSmallerThanTheBufferIsAnsweredEio()
    {
        using var h = new DispatcherHarness();
        var b = new RequestBuilder(FuseOpcode.Lookup, 79, 1).Name("file");
        Assert.Equal(EIO, h.Errno(b.BuildWithLength(41)));
    }

    [Fact]
    public void ExtensionLengthPastTheEndIsAnsweredEio()
    {
        using var h = new DispatcherHarness();
        byte[] request = Fixtures.Lookup(80, 1, "x");
        request[36] = 200;
        Assert.Equal(EIO, h.Errno(request));
    }

    [Theory]
    [InlineData((uint)FuseOpcode.GetAttr, 8)]
    [InlineData((uint)FuseOpcode.SetAttr, 87)]
    [InlineData((uint)FuseOpcode.Read, 39)]
    [InlineData((uint)FuseOpcode.Write, 24)]
    [InlineData((uint)FuseOpcode.Open, 4)]
    [InlineData((uint)FuseOpcode.Release, 16)]
    [InlineData((uint)FuseOpcode.Fallocate, 31)]
    [InlineData((uint)FuseOpcode.Lseek, 16)]
    [InlineData((uint)FuseOpcode.CopyFileRange, 48)]
    [InlineData((uint)FuseOpcode.Rename2, 17)]
    [InlineData((uint)FuseOpcode.Lookup, 0)]
    public void BodyShorterThanTheOpcodesMinimumIsAnsweredEinval(uint opcode, int bodyLength)
    {
        using var h = new DispatcherHarness();
        byte[] request = new RequestBuilder(opcode, 81, 1).Zeros(bodyLength).Build();
        Assert.Equal(EINVAL, h.Errno(request));
    }

    [Fact]
    public void NameWithoutTerminatorIsAnsweredEinval()
    {
        using var h = new DispatcherHarness();
        byte[] request = new RequestBuilder(FuseOpcode.Lookup, 82, 1).Bytes("noterm"u8).Build();
        Assert.Equal(EINVAL, h.Errno(request));
        byte[] mkdir = new RequestBuilder(FuseOpcode.MkDir, 83, 1).U32(0x1ED).U32(0).Bytes("dir"u8).Build();
        Assert.Equal(EINVAL, h.Errno(mkdir));
        Assert.False(h.Fs.Exists(2));
    }

    [Fact]
    public void EmptyNameIsAnsweredEinval()
    {
        using var h = new DispatcherHarness();
        Assert.Equal(EINVAL, h.Errno(Fixtures.Lookup(84, 1, "")));
        Assert.Equal(EINVAL, h.Errno(Fixtures.MkDir(85, 1, "")));
    }

    [Fact]
    public void NameWithSlashOrBadUtf8OrTooLongIsRefused()
    {
        using var h = new DispatcherHarness();
        Assert.Equal(EINVAL, h.Errno(Fixtures.Create(86, 1, "a/b")));
        byte[] badUtf8 = new RequestBuilder(FuseOpcode.Lookup, 87, 1).Bytes([0xC3, 0x28, 0]).Build();
        Assert.Equal(EINVAL, h.Errno(badUtf8));
        Assert.Equal(ENAMETOOLONG, h.Errno(Fixtures.Lookup(88, 1, new string('a', 256))));
        Assert.Equal(2, h.Errno(Fixtures.Lookup(89, 1, new string('a', 255)))); // valid name: ENOENT
    }

    [Fact]
    public void SecondNameMissingIsAnsweredEinval()
    {
        using var h = new DispatcherHarness();
        byte[] request = new RequestBuilder(FuseOpcode.Rename, 90, 1).U64(1).Name("only").Build();
        Assert.Equal(EINVAL, h.Errno(request));
        byte[] symlink = new RequestBuilder(FuseOpcode.Symlink, 91, 1).Name("link").Build();
        Assert.Equal(EINVAL, h.Errno(symlink));
    }

    [Fact]
    public void WriteWhoseSizeExceedsThePayloadIsAnsweredEinval()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(92, 1, "f"));
        Assert.Equal(EINVAL, h.Errno(Fixtures.Write(93, 2, 2, 0, new byte[10], size: 11)));
        Assert.Equal(EINVAL, h.Errno(Fixtures.Write(94, 2, 2, 0, [], size: uint.MaxValue)));
        Assert.Equal(0L, h.FileSystem.GetAttr(default, 2, null).Size);
    }

    [Fact]
    public void OffsetsPastTheLargestFileOffsetAreAnsweredEinval()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(95, 1, "f"));
        Assert.Equal(EINVAL, h.Errno(Fixtures.Write(96, 2, 2, 1UL << 63, [1])));
        Assert.Equal(EINVAL, h.Errno(Fixtures.Read(97, 2, 2, ulong.MaxValue, 10)));
        Assert.Equal(EINVAL, h.Errno(Fixtures.Fallocate(98, 2, 0, 0, 0)));
        const int EFBIG = 27; // the end of the range would wrap past 2^63
        Assert.Equal(EFBIG, h.Errno(Fixtures.Write(120, 2, 2, long.MaxValue - 4, new byte[10])));
        Assert.Equal(EFBIG, h.Errno(Fixtures.Fallocate(121, 2, long.MaxValue - 4, 10, 0)));
        Assert.Empty(h.Ok(Fixtures.Read(122, 2, 2, long.MaxValue, 4096)));
    }

    [Fact]
    public void SetxattrValueLengthPastTheEndIsAnsweredEinval()
    {
        using var h = new DispatcherHarness();
        Assert.Equal(EINVAL, h.Errno(Fixtures.SetXattr(99, 1, "user.a", [1, 2], size: 3)));
        Assert.Equal(E2BIG, h.Errno(Fixtures.SetXattr(100, 1, "user.a", [], size: 70000)));
        Assert.Equal(EINVAL, h.Errno(new RequestBuilder(FuseOpcode.GetXattr, 101, 1).U32(0).U32(0).Bytes("user"u8)
            .Build()));
    }

    [Fact]
    public void UnknownRenameFlagsAreAnsweredEinval()
    {
        using var h = new DispatcherHarness();
        Assert.Equal(EINVAL, h.Errno(Fixtures.Rename2(102, 1, "a", 1, "b", 8)));
    }

    [Theory]
    [InlineData(7u)]
    [InlineData(53u)]
    [InlineData(4096u)]
    [InlineData(0xFFFFFFFFu)]
    public void UnknownOpcodeIsAnsweredEnosys(uint opcode)
    {
        using var h = new DispatcherHarness();
        Assert.Equal(ENOSYS, h.Errno(new RequestBuilder(opcode, 103, 1).Zeros(16).Build()));
    }

    [Theory]
    [InlineData((uint)FuseOpcode.GetLk)]
    [InlineData((uint)FuseOpcode.SetLk)]
    [InlineData((uint)FuseOpcode.Bmap)]
    [InlineData((uint)FuseOpcode.Ioctl)]
    [InlineData((uint)FuseOpcode.Poll)]
    [InlineData((uint)FuseOpcode.SyncFs)]
    [InlineData((uint)FuseOpcode.TmpFile)]
    [InlineData((uint)FuseOpcode.Statx)]
    public void UnsupportedOpcodeIsAnsweredEnosys(uint opcode)
    {
        using var h = new DispatcherHarness();
        Assert.Equal(ENOSYS, h.Errno(new RequestBuilder(opcode, 104, 1).Zeros(64).Build()));
    }

    [Fact]
    public void RequestBeforeInitIsAnsweredEio()
    {
        using var h = new DispatcherHarness(init: false);
        Assert.Equal(EIO, h.Errno(Fixtures.Lookup(105, 1, "x")));
    }

    [Fact]
    public void MalformedForgetsGetNoReply()
    {
        using var h = new DispatcherHarness();
        Assert.Null(h.Send(new RequestBuilder(FuseOpcode.Forget, 106, 1).Zeros(4).Build()));
        Assert.Null(h.Send(new RequestBuilder(FuseOpcode.Interrupt, 107, 0).Zeros(3).Build()));
        Assert.Null(h.Send(new RequestBuilder(FuseOpcode.Forget, 108, 1).U64(1).BuildWithLength(100)));
        Assert.Equal(FuseDispatchResult.NoReply, h.LastResult);
    }

    [Fact]
    public void BatchForgetWithCountPastTheEndForgetsThePresentEntries()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.MkDir(109, 1, "d"));
        h.Ok(Fixtures.Lookup(110, 1, "d"));
        Assert.Equal(2, h.Fs.LookupCount(2));
        byte[] request = new RequestBuilder(FuseOpcode.BatchForget, 111, 0).U32(5).U32(0).U64(2).U64(2).Build();
        Assert.Null(h.Send(request));
        Assert.Equal(0, h.Fs.LookupCount(2));
        Assert.Contains("BATCH_FORGET", h.Log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void MalformedRequestsAreLoggedOncePerOpcode()
    {
        using var h = new DispatcherHarness();
        for (int i = 0; i < 5; i++)
            h.Errno(Fixtures.Lookup(120 + (ulong)i, 1, ""));
        Assert.Equal(5, h.Dispatcher.Log.MalformedRequests);
        Assert.Single(h.Log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries),
            l => l.Contains("LOOKUP", StringComparison.Ordinal));
    }

    /// <summary>Every prefix and every single-byte corruption of every fixture: the dispatcher answers (or
    /// drops) and never throws; every reply is well-formed and names the request it answers.</summary>
    [Fact]
    public void NoTruncationOrCorruptionOfAFixtureThrows()
    {
        using var h = new DispatcherHarness();
        h.Ok(Fixtures.Create(2, 1, "f"));
        h.Ok(Fixtures.Write(3, 2, 2, 0, Encoding.ASCII.GetBytes("hello world")));
        byte[][] fixtures =
        [
            Fixtures.KernelInit(), Fixtures.Lookup(10, 1, "f"), Fixtures.GetAttr(11, 2, 2), Fixtures.Read(12, 2, 2,
            0, 4096), Fixtures.Write(13, 2, 2, 3, [1, 2, 3]), Fixtures.Rename2(14, 1, "f", 1, "g", 1),
            Fixtures.SetXattr(15, 2, "user.x", [9]), Fixtures.GetXattr(16, 2, "user.x", 64),
            Fixtures.ListXattr(17, 2, 64), Fixtures.BatchForget(18, (2, 0)), Fixtures.MkDir(19, 1, "d"),
            Fixtures.SetAttr(20, 2, FuseSetAttrFields.Mode, mode: 0x81FF), Fixtures.Read(21, 1, 1, 0, 4096,
            FuseOpcode.ReadDirPlus), Fixtures.Fallocate(22, 2, 0, 4096, 0), Fixtures.Lseek(23, 2, 0, 3),
            Fixtures.Interrupt(24, 10), Fixtures.Forget(25, 2, 0),
        ];
        var random = new Random(1234);
        foreach (byte[] fixture in fixtures)
        {
            for (int length = 0; length <= fixture.Length; length++)
                SendChecked(h, fixture[..length]);
            for (int i = 0; i < 200; i++)
            {
                byte[] corrupt = (byte[])fixture.Clone();
                corrupt[random.Next(corrupt.Length)] = (byte)random.Next(256);
                SendChecked(h, corrupt);
            }
        }
    }

    private static void SendChecked(DispatcherHarness h, byte[] request)
    {
        var reply = h.Send(request);
        if (reply is null)
            return;
        Assert.True(reply.Length >= 16);
        Assert.Equal((uint)reply.Length, BitConverter.ToUInt32(reply, 0));
        Assert.Equal(BitConverter.ToUInt64(request, 8), DispatcherHarness.Unique(reply));
        int error = DispatcherHarness.Error(reply);
        Assert.True(error <= 0 && error > -4096);
        if (error != 0)
            Assert.Equal(16, reply.Length);
    }
}
