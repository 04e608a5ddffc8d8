using System.Runtime.InteropServices;

namespace DaxFs.Fuse.Raw;

// The request-side structs of include/uapi/linux/fuse.h (protocol 7.38), field for field, with the header's
// explicit padding. Every struct is 8-byte aligned as the kernel lays it out for 64-bit user space; the sizes are
// asserted by tests against the numbers in the header's comments and the kernel's FUSE_COMPAT_* constants.

/// <summary>FuseInHeader -- struct fuse_in_header (40 bytes), in front of every request.</summary>
[StructLayout(LayoutKind.Sequential, Size = 40)]
internal struct FuseInHeader
{
    public uint Len;
    public uint Opcode;
    public ulong Unique;
    public ulong NodeId;
    public uint Uid;
    public uint Gid;
    public uint Pid;
    public ushort TotalExtLen; // since 7.37 (was padding): extensions after the body, in 8-byte units
    public ushort Padding;
}

/// <summary>FuseInitIn -- struct fuse_init_in (64 bytes since 7.36; 16 before).</summary>
[StructLayout(LayoutKind.Sequential, Size = 64)]
internal struct FuseInitIn
{
    public const int CompatSize = 16;
    public uint Major;
    public uint Minor;
    public uint MaxReadahead;
    public uint Flags;
    public uint Flags2;
    // uint32_t unused[11]
}

/// <summary>FuseForgetIn -- struct fuse_forget_in (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseForgetIn
{
    public ulong NLookup;
}

/// <summary>FuseForgetOne -- struct fuse_forget_one (16 bytes), an element of BATCH_FORGET.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct FuseForgetOne
{
    public ulong NodeId;
    public ulong NLookup;
}

/// <summary>FuseBatchForgetIn -- struct fuse_batch_forget_in (8 bytes), followed by count forget_one.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseBatchForgetIn
{
    public uint Count;
    public uint Dummy;
}

/// <summary>FuseGetAttrIn -- struct fuse_getattr_in (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct FuseGetAttrIn
{
    public uint GetAttrFlags;
    public uint Dummy;
    public ulong Fh;
}

/// <summary>FuseSetAttrIn -- struct fuse_setattr_in (88 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 88)]
internal struct FuseSetAttrIn
{
    public uint Valid;
    public uint Padding;
    public ulong Fh;
    public ulong Size;
    public ulong LockOwner;
    public ulong Atime;
    public ulong Mtime;
    public ulong Ctime;
    public uint AtimeNsec;
    public uint MtimeNsec;
    public uint CtimeNsec;
    public uint Mode;
    public uint Unused4;
    public uint Uid;
    public uint Gid;
    public uint Unused5;
}

/// <summary>FuseMknodIn -- struct fuse_mknod_in (16 bytes), followed by the name.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct FuseMknodIn
{
    public uint Mode;
    public uint Rdev;
    public uint Umask;
    public uint Padding;
}

/// <summary>FuseMkdirIn -- struct fuse_mkdir_in (8 bytes), followed by the name.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseMkdirIn
{
    public uint Mode;
    public uint Umask;
}

/// <summary>FuseRenameIn -- struct fuse_rename_in (8 bytes), followed by old and new name.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseRenameIn
{
    public ulong NewDir;
}

/// <summary>FuseRename2In -- struct fuse_rename2_in (16 bytes), followed by old and new name.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct FuseRename2In
{
    public ulong NewDir;
    public uint Flags;
    public uint Padding;
}

/// <summary>FuseLinkIn -- struct fuse_link_in (8 bytes), followed by the new name.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseLinkIn
{
    public ulong OldNodeId;
}

/// <summary>FuseOpenIn -- struct fuse_open_in (8 bytes), for OPEN and OPENDIR.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseOpenIn
{
    public uint Flags;
    public uint OpenFlags;
}

/// <summary>FuseCreateIn -- struct fuse_create_in (16 bytes), followed by the name.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct FuseCreateIn
{
    public uint Flags;
    public uint Mode;
    public uint Umask;
    public uint OpenFlags;
}

/// <summary>FuseReleaseIn -- struct fuse_release_in (24 bytes), for RELEASE and RELEASEDIR.</summary>
[StructLayout(LayoutKind.Sequential, Size = 24)]
internal struct FuseReleaseIn
{
    public ulong Fh;
    public uint Flags;
    public uint ReleaseFlags;
    public ulong LockOwner;
}

/// <summary>FuseFlushIn -- struct fuse_flush_in (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 24)]
internal struct FuseFlushIn
{
    public ulong Fh;
    public uint Unused;
    public uint Padding;
    public ulong LockOwner;
}

/// <summary>FuseReadIn -- struct fuse_read_in (40 bytes), for READ, READDIR and READDIRPLUS.</summary>
[StructLayout(LayoutKind.Sequential, Size = 40)]
internal struct FuseReadIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Size;
    public uint ReadFlags;
    public ulong LockOwner;
    public uint Flags;
    public uint Padding;
}

/// <summary>FuseWriteIn -- struct fuse_write_in (40 bytes), followed by the data.</summary>
[StructLayout(LayoutKind.Sequential, Size = 40)]
internal struct FuseWriteIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Size;
    public uint WriteFlags;
    public ulong LockOwner;
    public uint Flags;
    public uint Padding;
}

/// <summary>FuseFsyncIn -- struct fuse_fsync_in (16 bytes), for FSYNC and FSYNCDIR.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct FuseFsyncIn
{
    public ulong Fh;
    public uint FsyncFlags;
    public uint Padding;
}

/// <summary>FuseSetXattrIn -- struct fuse_setxattr_in in its 8-byte form (FUSE_COMPAT_SETXATTR_IN_SIZE; the
/// 16-byte form needs FUSE_SETXATTR_EXT, which is not negotiated), followed by name and value.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseSetXattrIn
{
    public uint Size;
    public uint Flags;
}

/// <summary>FuseGetXattrIn -- struct fuse_getxattr_in (8 bytes), for GETXATTR (followed by the name) and
/// LISTXATTR.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseGetXattrIn
{
    public uint Size;
    public uint Padding;
}

/// <summary>FuseAccessIn -- struct fuse_access_in (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseAccessIn
{
    public uint Mask;
    public uint Padding;
}

/// <summary>FuseInterruptIn -- struct fuse_interrupt_in (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseInterruptIn
{
    public ulong Unique;
}

/// <summary>FuseFallocateIn -- struct fuse_fallocate_in (32 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 32)]
internal struct FuseFallocateIn
{
    public ulong Fh;
    public ulong Offset;
    public ulong Length;
    public uint Mode;
    public uint Padding;
}

/// <summary>FuseLseekIn -- struct fuse_lseek_in (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 24)]
internal struct FuseLseekIn
{
    public ulong Fh;
    public ulong Offset;
    public uint Whence;
    public uint Padding;
}

/// <summary>FuseCopyFileRangeIn -- struct fuse_copy_file_range_in (56 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 56)]
internal struct FuseCopyFileRangeIn
{
    public ulong FhIn;
    public ulong OffIn;
    public ulong NodeIdOut;
    public ulong FhOut;
    public ulong OffOut;
    public ulong Len;
    public ulong Flags;
}
