using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse.Tests;

/// <summary>Fixtures -- request byte arrays as the kernel sends them. The INIT is the one Linux 6.18 (protocol
/// 7.45) sent to a test mount on this machine, byte for byte; the others are built field by field in the
/// kernel's layout.</summary>
internal static class Fixtures
{
    /// <summary>INIT from Linux 6.18: unique 2, node 0, 7.45, max_readahead 128 KiB, flags 0x73fffffb (INIT_EXT
    /// set), flags2 0x5fd.</summary>
    public const string KernelInitHex =
        "680000001a0000000200000000000000000000000000000000000000000000000000000000000000" +
        "070000002d00000000000200fbffff73fd050000" +
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

    public const uint KernelInitFlags = 0x73fffffb;
    public const uint KernelInitFlags2 = 0x5fd;

    public static byte[] KernelInit() => Convert.FromHexString(KernelInitHex);

    /// <summary>The kernel INIT with another unique.</summary>
    public static byte[] InitRequest(ulong unique)
    {
        byte[] bytes = KernelInit();
        BitConverter.TryWriteBytes(bytes.AsSpan(8), unique);
        return bytes;
    }

    /// <summary>An INIT of another version and flags (16-byte body before 7.36, 64-byte after).</summary>
    public static byte[] Init(ulong unique, uint major, uint minor, uint flags, uint flags2 = 0)
    {
        var b = new RequestBuilder(FuseOpcode.Init, unique, 0, 0, 0, 0).U32(major).U32(minor).U32(131072).U32(flags);
        return minor >= 36 ? b.U32(flags2).Zeros(44).Build() : b.Build();
    }

    public static byte[] Lookup(ulong unique, ulong parent, string name) =>
        new RequestBuilder(FuseOpcode.Lookup, unique, parent).Name(name).Build();

    public static byte[] GetAttr(ulong unique, ulong node, ulong? fh = null) =>
        new RequestBuilder(FuseOpcode.GetAttr, unique, node).U32(fh is null ? 0u : 1u).U32(0).U64(fh ?? 0).Build();

    public static byte[] MkDir(ulong unique, ulong parent, string name, uint mode = 0x1ED, uint umask = 0x12) =>
        new RequestBuilder(FuseOpcode.MkDir, unique, parent).U32(mode).U32(umask).Name(name).Build();

    public static byte[] Create(ulong unique, ulong parent, string name, uint mode = 0x81A4, uint flags = 0x8241) =>
        new RequestBuilder(FuseOpcode.Create, unique, parent).U32(flags).U32(mode).U32(0x12).U32(0).Name(name)
            .Build();

    public static byte[] MkNod(ulong unique, ulong parent, string name, uint mode, uint rdev = 0) =>
        new RequestBuilder(FuseOpcode.MkNod, unique, parent).U32(mode).U32(rdev).U32(0x12).U32(0).Name(name).Build();

    public static byte[] Write(ulong unique, ulong node, ulong fh, ulong offset, byte[] data, uint? size = null) =>
        new RequestBuilder(FuseOpcode.Write, unique, node).U64(fh).U64(offset).U32(size ?? (uint)data.Length)
            .U32(0).U64(0).U32(0x8002).U32(0).Bytes(data).Build();

    public static byte[] Read(ulong unique, ulong node, ulong fh, ulong offset, uint size,
        FuseOpcode opcode = FuseOpcode.Read) =>
        new RequestBuilder(opcode, unique, node).U64(fh).U64(offset).U32(size).U32(0).U64(0).U32(0x8000).U32(0)
            .Build();

    public static byte[] Open(ulong unique, ulong node, uint flags = 2, FuseOpcode opcode = FuseOpcode.Open) =>
        new RequestBuilder(opcode, unique, node).U32(flags).U32(0).Build();

    public static byte[] Release(ulong unique, ulong node, ulong fh, FuseOpcode opcode = FuseOpcode.Release) =>
        new RequestBuilder(opcode, unique, node).U64(fh).U32(2).U32(0).U64(0).Build();

    public static byte[] Rename2(ulong unique, ulong parent, string name, ulong newParent, string newName,
        uint flags) =>
        new RequestBuilder(FuseOpcode.Rename2, unique, parent).U64(newParent).U32(flags).U32(0).Name(name)
            .Name(newName).Build();

    public static byte[] Rename(ulong unique, ulong parent, string name, ulong newParent, string newName) =>
        new RequestBuilder(FuseOpcode.Rename, unique, parent).U64(newParent).Name(name).Name(newName).Build();

    public static byte[] SetXattr(ulong unique, ulong node, string name, byte[] value, uint flags = 0,
        uint? size = null) =>
        new RequestBuilder(FuseOpcode.SetXattr, unique, node).U32(size ?? (uint)value.Length).U32(flags).Name(name)
            .Bytes(value).Build();

    public static byte[] GetXattr(ulong unique, ulong node, string name, uint size) =>
        new RequestBuilder(FuseOpcode.GetXattr, unique, node).U32(size).U32(0).Name(name).Build();

    public static byte[] ListXattr(ulong unique, ulong node, uint size) =>
        new RequestBuilder(FuseOpcode.ListXattr, unique, node).U32(size).U32(0).Build();

    public static byte[] BatchForget(ulong unique, params (ulong Node, ulong Count)[] entries)
    {
        var b = new RequestBuilder(FuseOpcode.BatchForget, unique, 0).U32((uint)entries.Length).U32(0);
        foreach (var (node, count) in entries)
            b.U64(node).U64(count);
        return b.Build();
    }

    public static byte[] Forget(ulong unique, ulong node, ulong count) =>
        new RequestBuilder(FuseOpcode.Forget, unique, node).U64(count).Build();

    public static byte[] SetAttr(ulong unique, ulong node, FuseSetAttrFields valid, ulong size = 0, uint mode = 0,
        uint uid = 0, uint gid = 0, ulong atime = 0, uint atimeNs = 0, ulong mtime = 0, uint mtimeNs = 0) =>
        new RequestBuilder(FuseOpcode.SetAttr, unique, node).U32((uint)valid).U32(0).U64(0).U64(size).U64(0)
            .U64(atime).U64(mtime).U64(0).U32(atimeNs).U32(mtimeNs).U32(0).U32(mode).U32(0).U32(uid).U32(gid).U32(0)
            .Build();

    public static byte[] Fallocate(ulong unique, ulong node, ulong offset, ulong length, uint mode) =>
        new RequestBuilder(FuseOpcode.Fallocate, unique, node).U64(node).U64(offset).U64(length).U32(mode).U32(0)
            .Build();

    public static byte[] Lseek(ulong unique, ulong node, ulong offset, uint whence) =>
        new RequestBuilder(FuseOpcode.Lseek, unique, node).U64(node).U64(offset).U32(whence).U32(0).Build();

    public static byte[] Interrupt(ulong unique, ulong target) =>
        new RequestBuilder(FuseOpcode.Interrupt, unique, 0).U64(target).Build();
}
