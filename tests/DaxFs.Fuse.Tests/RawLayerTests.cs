using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse.Tests;

/// <summary>The raw layer: struct layouts against fuse.h, request parsing of byte-exact fixtures, reply bytes.</summary>
public class RawLayerTests
{
    [Fact]
    public void StructSizesMatchFuseH()
    {
        Assert.Equal(40, Unsafe.SizeOf<FuseInHeader>());
        Assert.Equal(16, Unsafe.SizeOf<FuseOutHeader>());
        Assert.Equal(88, Unsafe.SizeOf<FuseAttr>());
        Assert.Equal(128, Unsafe.SizeOf<FuseEntryOut>());
        Assert.Equal(104, Unsafe.SizeOf<FuseAttrOut>());
        Assert.Equal(64, Unsafe.SizeOf<FuseInitIn>());
        Assert.Equal(64, Unsafe.SizeOf<FuseInitOut>());
        Assert.Equal(16, Unsafe.SizeOf<FuseOpenOut>());
        Assert.Equal(144, Unsafe.SizeOf<FuseCreateOut>());
        Assert.Equal(40, Unsafe.SizeOf<FuseWriteIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseWriteOut>());
        Assert.Equal(40, Unsafe.SizeOf<FuseReadIn>());
        Assert.Equal(88, Unsafe.SizeOf<FuseSetAttrIn>());
        Assert.Equal(16, Unsafe.SizeOf<FuseGetAttrIn>());
        Assert.Equal(16, Unsafe.SizeOf<FuseMknodIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseMkdirIn>());
        Assert.Equal(16, Unsafe.SizeOf<FuseCreateIn>());
        Assert.Equal(24, Unsafe.SizeOf<FuseReleaseIn>());
        Assert.Equal(24, Unsafe.SizeOf<FuseFlushIn>());
        Assert.Equal(16, Unsafe.SizeOf<FuseFsyncIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseSetXattrIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseGetXattrIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseGetXattrOut>());
        Assert.Equal(80, Unsafe.SizeOf<FuseKstatfs>());
        Assert.Equal(24, Unsafe.SizeOf<FuseDirent>());
        Assert.Equal(152, Unsafe.SizeOf<FuseDirentPlus>());
        Assert.Equal(32, Unsafe.SizeOf<FuseFallocateIn>());
        Assert.Equal(24, Unsafe.SizeOf<FuseLseekIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseLseekOut>());
        Assert.Equal(56, Unsafe.SizeOf<FuseCopyFileRangeIn>());
        Assert.Equal(16, Unsafe.SizeOf<FuseRename2In>());
        Assert.Equal(8, Unsafe.SizeOf<FuseRenameIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseLinkIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseBatchForgetIn>());
        Assert.Equal(16, Unsafe.SizeOf<FuseForgetOne>());
        Assert.Equal(8, Unsafe.SizeOf<FuseForgetIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseInterruptIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseAccessIn>());
        Assert.Equal(8, Unsafe.SizeOf<FuseOpenIn>());
    }

    [Fact]
    public void FieldOffsetsMatchFuseH()
    {
        Assert.Equal(36, (int)Marshal.OffsetOf<FuseInHeader>(nameof(FuseInHeader.TotalExtLen)));
        Assert.Equal(60, (int)Marshal.OffsetOf<FuseAttr>(nameof(FuseAttr.Mode)));
        Assert.Equal(80, (int)Marshal.OffsetOf<FuseAttr>(nameof(FuseAttr.BlkSize)));
        Assert.Equal(40, (int)Marshal.OffsetOf<FuseEntryOut>(nameof(FuseEntryOut.Attr)));
        Assert.Equal(16, (int)Marshal.OffsetOf<FuseAttrOut>(nameof(FuseAttrOut.Attr)));
        Assert.Equal(20, (int)Marshal.OffsetOf<FuseInitOut>(nameof(FuseInitOut.MaxWrite)));
        Assert.Equal(28, (int)Marshal.OffsetOf<FuseInitOut>(nameof(FuseInitOut.MaxPages)));
        Assert.Equal(32, (int)Marshal.OffsetOf<FuseInitOut>(nameof(FuseInitOut.Flags2)));
        Assert.Equal(16, (int)Marshal.OffsetOf<FuseInitIn>(nameof(FuseInitIn.Flags2)));
        Assert.Equal(68, (int)Marshal.OffsetOf<FuseSetAttrIn>(nameof(FuseSetAttrIn.Mode)));
        Assert.Equal(80, (int)Marshal.OffsetOf<FuseSetAttrIn>(nameof(FuseSetAttrIn.Gid)));
        Assert.Equal(128, (int)Marshal.OffsetOf<FuseDirentPlus>(nameof(FuseDirentPlus.Dirent)));
        Assert.Equal(48, (int)Marshal.OffsetOf<FuseCopyFileRangeIn>(nameof(FuseCopyFileRangeIn.Flags)));
    }

    [Fact]
    public void KernelConstants()
    {
        Assert.Equal(0x8004E500u, FuseKernel.DevIocClone); // _IOR(229, 0, uint32_t)
        Assert.Equal(1UL << 16, (ulong)FuseInitFlags.WritebackCache);
        Assert.Equal(1UL << 22, (ulong)FuseInitFlags.MaxPages);
        Assert.Equal(1UL << 30, (ulong)FuseInitFlags.InitExt);
        Assert.Equal(0x10u, (uint)FuseFallocateFlags.ZeroRange);
        Assert.Equal(4u, (uint)FuseRenameFlags.Whiteout);
        Assert.Equal(1u << 10, (uint)FuseSetAttrFields.Ctime);
        Assert.False(FuseDispatcher.Wanted.HasFlag(FuseInitFlags.WritebackCache));
    }

    [Theory]
    [InlineData(1u, "LOOKUP", 1, true)]
    [InlineData(2u, "FORGET", 8, false)]
    [InlineData(4u, "SETATTR", 88, true)]
    [InlineData(16u, "WRITE", 40, true)]
    [InlineData(21u, "SETXATTR", 9, true)]
    [InlineData(26u, "INIT", 16, true)]
    [InlineData(36u, "INTERRUPT", 8, false)]
    [InlineData(42u, "BATCH_FORGET", 8, false)]
    [InlineData(45u, "RENAME2", 18, true)]
    [InlineData(47u, "COPY_FILE_RANGE", 56, true)]
    public void OpcodeTableNamesAndMinimumSizes(uint opcode, string name, int minBody, bool hasReply)
    {
        Assert.True(FuseOpcodeTable.TryGet(opcode, out var info));
        Assert.Equal(name, info.Name);
        Assert.Equal(minBody, info.MinBodySize);
        Assert.Equal(hasReply, info.HasReply);
    }

    [Fact]
    public void OpcodeTableCoversFuseH()
    {
        foreach (uint opcode in Enum.GetValues<FuseOpcode>().Select(o => (uint)o))
            Assert.True(FuseOpcodeTable.TryGet(opcode, out _), $"opcode {opcode}");
        Assert.False(FuseOpcodeTable.TryGet(7, out _)); // 7 is unassigned in fuse.h
        Assert.False(FuseOpcodeTable.TryGet(4096, out _)); // CUSE_INIT is not FUSE
        Assert.Equal("OPCODE_999", FuseOpcodeTable.NameOf(999));
    }

    [Fact]
    public void ParsesTheKernelsInit()
    {
        Assert.Equal(FuseFrameStatus.Ok, FuseRequestFrame.Parse(Fixtures.KernelInit(), out var h, out var body,
            out _, out _));
        Assert.Equal(104u, h.Len);
        Assert.Equal((uint)FuseOpcode.Init, h.Opcode);
        Assert.Equal(2ul, h.Unique);
        Assert.Equal(0ul, h.NodeId);
        Assert.Equal(64, body.Length);
        var reader = new FuseRequestReader(body);
        var init = reader.ReadPrefix<FuseInitIn>(FuseInitIn.CompatSize);
        Assert.Equal((7u, 45u, 131072u), (init.Major, init.Minor, init.MaxReadahead));
        Assert.Equal(Fixtures.KernelInitFlags, init.Flags);
        Assert.Equal(Fixtures.KernelInitFlags2, init.Flags2);
        var flags = (FuseInitFlags)init.Flags;
        Assert.True(flags.HasFlag(FuseInitFlags.InitExt | FuseInitFlags.AsyncRead | FuseInitFlags.BigWrites |
            FuseInitFlags.DoReaddirplus | FuseInitFlags.ParallelDirops | FuseInitFlags.MaxPages |
            FuseInitFlags.ExportSupport | FuseInitFlags.WritebackCache));
    }

    [Fact]
    public void OldInitBodyReadsWithZeroTail()
    {
        byte[] request = Fixtures.Init(3, 7, 31, 0x1234);
        Assert.Equal(56, request.Length);
        FuseRequestFrame.Parse(request, out _, out var body, out _, out _);
        var init = new FuseRequestReader(body).ReadPrefix<FuseInitIn>(FuseInitIn.CompatSize);
        Assert.Equal((7u, 31u, 0x1234u, 0u), (init.Major, init.Minor, init.Flags, init.Flags2));
    }

    [Fact]
    public void ParsesLookup()
    {
        // len 46, LOOKUP, unique 42, node 1, uid 1000, gid 1000, pid 4242, "hello\0"
        byte[] request = Convert.FromHexString(
            "2e000000010000002a000000000000000100000000000000e8030000e80300009210000000000000" + "68656c6c6f00");
        Assert.Equal(request, Fixtures.Lookup(42, 1, "hello"));
        Assert.Equal(FuseFrameStatus.Ok, FuseRequestFrame.Parse(request, out var h, out var body, out _, out _));
        Assert.Equal((FuseOpcode.Lookup, 42ul, 1ul, 1000u, 1000u, 4242u),
            ((FuseOpcode)h.Opcode, h.Unique, h.NodeId, h.Uid, h.Gid, h.Pid));
        var reader = new FuseRequestReader(body);
        Assert.Equal("hello", reader.ReadName());
        Assert.Equal(0, reader.Remaining);
    }

    [Fact]
    public void ParsesGetAttrWithHandle()
    {
        byte[] request = Fixtures.GetAttr(7, 12, fh: 0xABCDEF);
        Assert.Equal(56, request.Length);
        FuseRequestFrame.Parse(request, out var h, out var body, out _, out _);
        var g = new FuseRequestReader(body).Read<FuseGetAttrIn>();
        Assert.Equal((12ul, 1u, 0xABCDEFul), (h.NodeId, g.GetAttrFlags, g.Fh));
    }

    [Fact]
    public void ParsesWriteAndItsPayloadInPlace()
    {
        byte[] data = Encoding.ASCII.GetBytes("payload!");
        byte[] request = Fixtures.Write(9, 5, 77, 4096, data);
        Assert.Equal(40 + 40 + 8, request.Length);
        FuseRequestFrame.Parse(request, out _, out var body, out _, out _);
        var reader = new FuseRequestReader(body);
        var w = reader.Read<FuseWriteIn>();
        Assert.Equal((77ul, 4096ul, 8u, 0x8002u), (w.Fh, w.Offset, w.Size, w.Flags));
        var payload = reader.ReadBytes(w.Size);
        Assert.Equal(data, payload.ToArray());
        Assert.True(Unsafe.AreSame(ref MemoryMarshal.GetReference(payload), ref request[80])); // no copy
    }

    [Fact]
    public void ParsesRead()
    {
        FuseRequestFrame.Parse(Fixtures.Read(11, 5, 3, 1 << 20, 131072), out _, out var body, out _, out _);
        var r = new FuseRequestReader(body).Read<FuseReadIn>();
        Assert.Equal((3ul, 1ul << 20, 131072u, 0x8000u), (r.Fh, r.Offset, r.Size, r.Flags));
    }

    [Fact]
    public void ParsesRename2()
    {
        byte[] request = Fixtures.Rename2(12, 1, "old", 9, "new", (uint)FuseRenameFlags.Exchange);
        Assert.Equal(40 + 16 + 4 + 4, request.Length);
        FuseRequestFrame.Parse(request, out _, out var body, out _, out _);
        var reader = new FuseRequestReader(body);
        var m = reader.Read<FuseRename2In>();
        Assert.Equal((9ul, 2u), (m.NewDir, m.Flags));
        Assert.Equal("old", reader.ReadName());
        Assert.Equal("new", reader.ReadName());
    }

    [Fact]
    public void ParsesSetXattr()
    {
        byte[] request = Fixtures.SetXattr(13, 5, "user.color", [1, 2, 3], flags: 1);
        FuseRequestFrame.Parse(request, out _, out var body, out _, out _);
        var reader = new FuseRequestReader(body);
        var m = reader.Read<FuseSetXattrIn>();
        Assert.Equal((3u, 1u), (m.Size, m.Flags));
        Assert.Equal("user.color", reader.ReadXattrName());
        Assert.Equal(new byte[] { 1, 2, 3 }, reader.ReadBytes(m.Size).ToArray());
    }

    [Fact]
    public void ParsesBatchForget()
    {
        byte[] request = Fixtures.BatchForget(14, (5, 2), (6, 1));
        Assert.Equal(40 + 8 + 32, request.Length);
        FuseRequestFrame.Parse(request, out _, out var body, out _, out _);
        var reader = new FuseRequestReader(body);
        Assert.Equal(2u, reader.Read<FuseBatchForgetIn>().Count);
        var first = reader.Read<FuseForgetOne>();
        var second = reader.Read<FuseForgetOne>();
        Assert.Equal((5ul, 2ul, 6ul, 1ul), (first.NodeId, first.NLookup, second.NodeId, second.NLookup));
    }

    [Fact]
    public void ExtensionsAreCutOffTheBody()
    {
        byte[] request = new RequestBuilder(FuseOpcode.Lookup, 15, 1).Name("x").Zeros(6).U64(0xEE).Build();
        request[36] = 1; // total_extlen: one 8-byte unit
        Assert.Equal(FuseFrameStatus.Ok, FuseRequestFrame.Parse(request, out _, out var body, out _, out _));
        Assert.Equal(8, body.Length);
    }

    [Fact]
    public void EncodesEntryReplyByteExact()
    {
        var attributes = new FuseAttributes(5, 0x1234, 16, 1_700_000_000_123_456_789, 1_700_000_001_000_000_001,
            -1_500_000_000, 0x81A4, 1, 1000, 100, 0, 4096);
        var entry = new FuseEntry(attributes, 7, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(2));
        using var harness = new DispatcherHarness(init: false);
        var wire = harness.Dispatcher.ToEntryOut(entry);
        var buffer = new byte[200];
        int length = FuseReplyEncoder.WriteStruct(buffer, 0x10, wire);
        Assert.Equal(
            "9000000000000000100000000000000005000000000000000700000000000000010000000000000002000000000000000065cd1d" +
            "0000000005000000000000003412000000000000100000000000000000f153650000000001f1536500000000feffffffffffffff" +
            "15cd5b07010000000065cd1da481000001000000e803000064000000000000000010000000000000",
            Convert.ToHexString(buffer, 0, length).ToLowerInvariant());
    }

    [Fact]
    public unsafe void EncodesReaddirBufferWithPadding()
    {
        var buffer = new byte[256];
        buffer.AsSpan().Fill(0xCC); // padding must be zeroed, not left over
        fixed (byte* p = buffer)
        {
            var dir = new FuseDirectoryBuffer();
            dir.Reset(p, 256, plus: false);
            Assert.True(dir.TryAdd(".", 1, 0x41ED, 1));
            Assert.True(dir.TryAdd("hello.txt", 9, 0x81A4, 2));
            Assert.Equal(72, dir.Length); // 24+1 -> 32, 24+9 -> 40
            Assert.Equal(
                "0100000000000000010000000000000001000000040000002e00000000000000" +
                "09000000000000000200000000000000090000000800000068656c6c6f2e74787400000000000000",
                Convert.ToHexString(buffer, 0, dir.Length).ToLowerInvariant());
        }
    }

    [Fact]
    public unsafe void ReaddirBufferStopsWhenFull()
    {
        var buffer = new byte[64];
        fixed (byte* p = buffer)
        {
            var dir = new FuseDirectoryBuffer();
            dir.Reset(p, 60, plus: false);
            Assert.True(dir.TryAdd("a", 2, 0x8000, 1)); // 32 bytes
            Assert.False(dir.TryAdd("b", 3, 0x8000, 2)); // would need 64
            Assert.Equal((1, 32), (dir.Count, dir.Length));
            Assert.Throws<ArgumentException>(() => dir.TryAdd("a/b", 4, 0, 3));
            Assert.Throws<ArgumentException>(() => dir.TryAdd("", 4, 0, 3));
        }
    }

    [Fact]
    public void EncodesDirentPlusByteExact()
    {
        var entry = new FuseEntry(new FuseAttributes(9, 3, 8, 0, 0, 0, 0x8180, 1, 0, 0),
            0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        using var harness = new DispatcherHarness(init: false);
        var buffer = new byte[160];
        buffer.AsSpan().Fill(0xCC);
        int size = FuseReplyEncoder.WriteDirentPlus(buffer, harness.Dispatcher.ToEntryOut(entry), 9, 3, 8,
            "abc"u8);
        Assert.Equal(160, size);
        Assert.Equal(
            "0900000000000000000000000000000001000000000000000100000000000000000000000000000009000000000000000300000000" +
            "0000000800000000000000000000000000000000000000000000000000000000000000000000000000000000000000808100000100" +
            "0000000000000000000000000000001000000000000009000000000000000300000000000000030000000800000061626300000000" +
            "00",
            Convert.ToHexString(buffer).ToLowerInvariant());
    }

    [Fact]
    public void ErrorReplyIsHeaderWithNegativeErrno()
    {
        var buffer = new byte[16];
        FuseReplyEncoder.WriteError(buffer, 0x0102030405060708, Errno.ENOENT);
        Assert.Equal("10000000feffffff0807060504030201", Convert.ToHexString(buffer).ToLowerInvariant());
    }

    [Theory]
    [InlineData(0L, 0L, 0u)]
    [InlineData(1_500_000_000L, 1L, 500_000_000u)]
    [InlineData(-1L, -1L, 999_999_999u)]
    [InlineData(-1_000_000_000L, -1L, 0u)]
    public void SplitsNanosecondsWithFlooring(long ns, long seconds, uint nanoseconds)
    {
        Assert.Equal((seconds, nanoseconds), FuseDispatcher.SplitNanoseconds(ns));
        Assert.Equal(ns, FuseDispatcher.JoinNanoseconds((ulong)seconds, nanoseconds));
    }

    [Fact]
    public void ReaderRefusesEverythingOutOfBounds()
    {
        Assert.Equal(Errno.EINVAL, ReadError(new byte[7], r => r.Read<FuseForgetIn>()));
        Assert.Equal(Errno.EINVAL, ReadError("abc"u8.ToArray(), r => r.ReadName()));
        Assert.Equal(Errno.EINVAL, ReadError([0], r => r.ReadName()));
        Assert.Equal(Errno.EINVAL, ReadError("a/b\0"u8.ToArray(), r => r.ReadName()));
        Assert.Equal(Errno.EINVAL, ReadError([0xFF, 0xFE, 0], r => r.ReadName()));
        Assert.Equal(Errno.ENAMETOOLONG, ReadError(Encoding.ASCII.GetBytes(new string('n', 256) + "\0"),
            r => r.ReadName()));
        Assert.Equal(Errno.EINVAL, ReadError(new byte[4], r => r.ReadBytes(5)));
        Assert.Equal(Errno.EINVAL, ReadError(new byte[4], r => r.ReadBytes(-1)));
        Assert.Equal(Errno.EINVAL, ReadError(new byte[15], r => r.ReadPrefix<FuseInitIn>(16)));
        Assert.Equal(Errno.ERANGE, ReadError(Encoding.ASCII.GetBytes(new string('x', 256) + "\0"),
            r => r.ReadXattrName()));
    }

    private static Errno ReadError(byte[] body, Func<FuseRequestReaderBox, object> action)
    {
        var e = Assert.Throws<FuseMalformedRequestException>(() => action(new FuseRequestReaderBox(body)));
        return e.Errno;
    }

    /// <summary>FuseRequestReaderBox -- lets a lambda drive a ref struct reader.</summary>
    internal sealed class FuseRequestReaderBox(byte[] body)
    {
        public object Read<T>() where T : unmanaged => new FuseRequestReader(body).Read<T>();
        public object ReadName() => new FuseRequestReader(body).ReadName();
        public object ReadXattrName() => new FuseRequestReader(body).ReadXattrName();
        public object ReadBytes(long n) => new FuseRequestReader(body).ReadBytes(n).ToArray();
        public object ReadPrefix<T>(int min) where T : unmanaged => new FuseRequestReader(body).ReadPrefix<T>(min);
    }
}
