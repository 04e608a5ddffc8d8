using System.Runtime.InteropServices;

namespace DaxFs.Fuse.Raw;

// The reply-side structs of include/uapi/linux/fuse.h (protocol 7.38), field for field with explicit padding.

/// <summary>FuseOutHeader -- struct fuse_out_header (16 bytes), in front of every reply.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct FuseOutHeader
{
    public uint Len;
    public int Error;
    public ulong Unique;
}

/// <summary>FuseAttr -- struct fuse_attr (88 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 88)]
internal struct FuseAttr
{
    public ulong Ino;
    public ulong Size;
    public ulong Blocks;
    public ulong Atime;
    public ulong Mtime;
    public ulong Ctime;
    public uint AtimeNsec;
    public uint MtimeNsec;
    public uint CtimeNsec;
    public uint Mode;
    public uint NLink;
    public uint Uid;
    public uint Gid;
    public uint Rdev;
    public uint BlkSize;
    public uint Flags;
}

/// <summary>FuseEntryOut -- struct fuse_entry_out (128 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 128)]
internal struct FuseEntryOut
{
    public ulong NodeId;
    public ulong Generation;
    public ulong EntryValid;
    public ulong AttrValid;
    public uint EntryValidNsec;
    public uint AttrValidNsec;
    public FuseAttr Attr;
}

/// <summary>FuseAttrOut -- struct fuse_attr_out (104 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 104)]
internal struct FuseAttrOut
{
    public ulong AttrValid;
    public uint AttrValidNsec;
    public uint Dummy;
    public FuseAttr Attr;
}

/// <summary>FuseInitOut -- struct fuse_init_out (64 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 64)]
internal struct FuseInitOut
{
    public uint Major;
    public uint Minor;
    public uint MaxReadahead;
    public uint Flags;
    public ushort MaxBackground;
    public ushort CongestionThreshold;
    public uint MaxWrite;
    public uint TimeGran;
    public ushort MaxPages;
    public ushort MapAlignment;
    public uint Flags2;
    // uint32_t unused[7]
}

/// <summary>FuseOpenOut -- struct fuse_open_out (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct FuseOpenOut
{
    public ulong Fh;
    public uint OpenFlags;
    public uint Padding; // backing_id since 7.40; zero at 7.38
}

/// <summary>FuseCreateOut -- the CREATE reply: fuse_entry_out then fuse_open_out (144 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 144)]
internal struct FuseCreateOut
{
    public FuseEntryOut Entry;
    public FuseOpenOut Open;
}

/// <summary>FuseWriteOut -- struct fuse_write_out (8 bytes), for WRITE and COPY_FILE_RANGE.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseWriteOut
{
    public uint Size;
    public uint Padding;
}

/// <summary>FuseKstatfs -- struct fuse_kstatfs (80 bytes); struct fuse_statfs_out is exactly this.</summary>
[StructLayout(LayoutKind.Sequential, Size = 80)]
internal struct FuseKstatfs
{
    public ulong Blocks;
    public ulong BFree;
    public ulong BAvail;
    public ulong Files;
    public ulong FFree;
    public uint BSize;
    public uint NameLen;
    public uint FrSize;
    public uint Padding;
    // uint32_t spare[6]
}

/// <summary>FuseGetXattrOut -- struct fuse_getxattr_out (8 bytes): the size answer of a size-0 query.</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseGetXattrOut
{
    public uint Size;
    public uint Padding;
}

/// <summary>FuseLseekOut -- struct fuse_lseek_out (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct FuseLseekOut
{
    public ulong Offset;
}

/// <summary>FuseDirent -- struct fuse_dirent without its name (24 bytes); the name follows and the record is
/// padded to 8 bytes (FUSE_DIRENT_ALIGN).</summary>
[StructLayout(LayoutKind.Sequential, Size = 24)]
internal struct FuseDirent
{
    public ulong Ino;
    public ulong Off;
    public uint NameLen;
    public uint Type;
}

/// <summary>FuseDirentPlus -- struct fuse_direntplus without the name (152 bytes): entry_out then dirent.</summary>
[StructLayout(LayoutKind.Sequential, Size = 152)]
internal struct FuseDirentPlus
{
    public FuseEntryOut EntryOut;
    public FuseDirent Dirent;
}
