using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

/// <summary>FuseOpenResult -- the answer to OPEN and OPENDIR: a handle the kernel passes back on every call for
/// this open file, and FOPEN_* requests.</summary>
/// <param name="Handle">Any 64-bit value the file system chooses (0 when it keeps no per-open state).</param>
/// <param name="Flags">What the kernel should do with this open file (page cache use, seekability).</param>
public readonly record struct FuseOpenResult(ulong Handle, FuseOpenFlags Flags = FuseOpenFlags.None);

/// <summary>FuseCreateResult -- the answer to CREATE: the new entry and the open file.</summary>
/// <param name="Entry">The created file (counts as one lookup).</param>
/// <param name="Open">The open file handle.</param>
public readonly record struct FuseCreateResult(FuseEntry Entry, FuseOpenResult Open);

/// <summary>FuseStatFs -- the answer to STATFS (statvfs(3) fields).</summary>
/// <param name="Blocks">Total data blocks, in <paramref name="FragmentSize"/> units.</param>
/// <param name="BlocksFree">Free blocks.</param>
/// <param name="BlocksAvailable">Free blocks available to unprivileged users.</param>
/// <param name="Files">Total inodes.</param>
/// <param name="FilesFree">Free inodes.</param>
/// <param name="BlockSize">Preferred block size (f_bsize).</param>
/// <param name="NameMax">Longest file name.</param>
/// <param name="FragmentSize">Fundamental block size (f_frsize); 0 means <paramref name="BlockSize"/>.</param>
public readonly record struct FuseStatFs(ulong Blocks, ulong BlocksFree, ulong BlocksAvailable, ulong Files,
    ulong FilesFree, uint BlockSize, uint NameMax = 255, uint FragmentSize = 0);

/// <summary>FuseSetAttrRequest -- a SETATTR: which attributes change (<see cref="Fields"/>) and their new values
/// (fields not named there are zero and must be ignored).</summary>
/// <param name="Fields">The FATTR_* bits: which of the values below are valid.</param>
/// <param name="Handle">The open file the change came through (ftruncate, futimens), if any.</param>
/// <param name="Size">New size (<see cref="FuseSetAttrFields.Size"/>).</param>
/// <param name="Mode">New permission bits (<see cref="FuseSetAttrFields.Mode"/>); the file type bits are
/// unchanged.</param>
/// <param name="Uid">New owner (<see cref="FuseSetAttrFields.Uid"/>).</param>
/// <param name="Gid">New group (<see cref="FuseSetAttrFields.Gid"/>).</param>
/// <param name="AtimeNs">New access time, ns since the epoch (<see cref="FuseSetAttrFields.Atime"/>; "now" when
/// <see cref="FuseSetAttrFields.AtimeNow"/> is also set).</param>
/// <param name="MtimeNs">New modification time (<see cref="FuseSetAttrFields.Mtime"/>; "now" with
/// <see cref="FuseSetAttrFields.MtimeNow"/>).</param>
/// <param name="CtimeNs">New change time (<see cref="FuseSetAttrFields.Ctime"/>).</param>
public readonly record struct FuseSetAttrRequest(FuseSetAttrFields Fields, ulong? Handle, long Size, uint Mode,
    uint Uid, uint Gid, long AtimeNs, long MtimeNs, long CtimeNs)
{
    /// <summary>True if every bit of <paramref name="field"/> is set in <see cref="Fields"/>.</summary>
    public bool Has(FuseSetAttrFields field) => (Fields & field) == field;
}

/// <summary>FuseConnectionInfo -- what INIT negotiated with the kernel.</summary>
/// <param name="ProtocolMajor">FUSE protocol major version (7).</param>
/// <param name="ProtocolMinor">FUSE protocol minor version in use (the lower of the kernel's and ours).</param>
/// <param name="KernelMinor">The minor version the kernel offered.</param>
/// <param name="KernelFlags">Capabilities the kernel offered.</param>
/// <param name="Flags">Capabilities in force (offered by the kernel and requested by DaxFS).</param>
/// <param name="MaxWrite">Largest WRITE payload the kernel will send.</param>
/// <param name="MaxReadahead">Largest readahead the kernel will do.</param>
/// <param name="MaxPages">Pages per request (FUSE_MAX_PAGES).</param>
public readonly record struct FuseConnectionInfo(uint ProtocolMajor, uint ProtocolMinor, uint KernelMinor,
    FuseInitFlags KernelFlags, FuseInitFlags Flags, uint MaxWrite, uint MaxReadahead, ushort MaxPages);
