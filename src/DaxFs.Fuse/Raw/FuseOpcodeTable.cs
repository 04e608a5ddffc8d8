using System.Runtime.CompilerServices;

namespace DaxFs.Fuse.Raw;

/// <summary>FuseOpcodeInfo -- what the session knows about one opcode: its name, the smallest body the kernel
/// sends with it, and whether the kernel waits for a reply.</summary>
internal readonly record struct FuseOpcodeInfo(FuseOpcode Opcode, string Name, int MinBodySize, bool HasReply,
    bool Supported);

/// <summary>FuseOpcodeTable -- the opcode table: name and minimum input size of every opcode of fuse.h, and
/// which ones the dispatcher serves (the rest are answered ENOSYS).</summary>
internal static class FuseOpcodeTable
{
    private static readonly FuseOpcodeInfo[] Table = Build();

    /// <summary>The entry of <paramref name="opcode"/>, or false for an opcode fuse.h does not define.</summary>
    public static bool TryGet(uint opcode, out FuseOpcodeInfo info)
    {
        if (opcode < (uint)Table.Length && Table[opcode].Name is not null)
        {
            info = Table[opcode];
            return true;
        }
        info = default;
        return false;
    }

    /// <summary>A readable name for logs, also for unknown opcodes.</summary>
    public static string NameOf(uint opcode) => TryGet(opcode, out var info) ? info.Name : $"OPCODE_{opcode}";

    private static FuseOpcodeInfo[] Build()
    {
        var t = new FuseOpcodeInfo[(int)FuseOpcode.Statx + 1];
        // A name-only body is at least its terminator; the name checks then refuse an empty name.
        const int Name = 1, TwoNames = 2;
        Add(t, FuseOpcode.Lookup, "LOOKUP", Name);
        Add(t, FuseOpcode.Forget, "FORGET", Size<FuseForgetIn>(), hasReply: false);
        Add(t, FuseOpcode.GetAttr, "GETATTR", Size<FuseGetAttrIn>());
        Add(t, FuseOpcode.SetAttr, "SETATTR", Size<FuseSetAttrIn>());
        Add(t, FuseOpcode.ReadLink, "READLINK", 0);
        Add(t, FuseOpcode.Symlink, "SYMLINK", TwoNames);
        Add(t, FuseOpcode.MkNod, "MKNOD", Size<FuseMknodIn>() + Name);
        Add(t, FuseOpcode.MkDir, "MKDIR", Size<FuseMkdirIn>() + Name);
        Add(t, FuseOpcode.Unlink, "UNLINK", Name);
        Add(t, FuseOpcode.RmDir, "RMDIR", Name);
        Add(t, FuseOpcode.Rename, "RENAME", Size<FuseRenameIn>() + TwoNames);
        Add(t, FuseOpcode.Link, "LINK", Size<FuseLinkIn>() + Name);
        Add(t, FuseOpcode.Open, "OPEN", Size<FuseOpenIn>());
        Add(t, FuseOpcode.Read, "READ", Size<FuseReadIn>());
        Add(t, FuseOpcode.Write, "WRITE", Size<FuseWriteIn>());
        Add(t, FuseOpcode.StatFs, "STATFS", 0);
        Add(t, FuseOpcode.Release, "RELEASE", Size<FuseReleaseIn>());
        Add(t, FuseOpcode.Fsync, "FSYNC", Size<FuseFsyncIn>());
        Add(t, FuseOpcode.SetXattr, "SETXATTR", Size<FuseSetXattrIn>() + Name);
        Add(t, FuseOpcode.GetXattr, "GETXATTR", Size<FuseGetXattrIn>() + Name);
        Add(t, FuseOpcode.ListXattr, "LISTXATTR", Size<FuseGetXattrIn>());
        Add(t, FuseOpcode.RemoveXattr, "REMOVEXATTR", Name);
        Add(t, FuseOpcode.Flush, "FLUSH", Size<FuseFlushIn>());
        Add(t, FuseOpcode.Init, "INIT", FuseInitIn.CompatSize);
        Add(t, FuseOpcode.OpenDir, "OPENDIR", Size<FuseOpenIn>());
        Add(t, FuseOpcode.ReadDir, "READDIR", Size<FuseReadIn>());
        Add(t, FuseOpcode.ReleaseDir, "RELEASEDIR", Size<FuseReleaseIn>());
        Add(t, FuseOpcode.FsyncDir, "FSYNCDIR", Size<FuseFsyncIn>());
        Add(t, FuseOpcode.GetLk, "GETLK", 0, supported: false);
        Add(t, FuseOpcode.SetLk, "SETLK", 0, supported: false);
        Add(t, FuseOpcode.SetLkW, "SETLKW", 0, supported: false);
        Add(t, FuseOpcode.Access, "ACCESS", Size<FuseAccessIn>());
        Add(t, FuseOpcode.Create, "CREATE", Size<FuseCreateIn>() + Name);
        Add(t, FuseOpcode.Interrupt, "INTERRUPT", Size<FuseInterruptIn>(), hasReply: false);
        Add(t, FuseOpcode.Bmap, "BMAP", 0, supported: false);
        Add(t, FuseOpcode.Destroy, "DESTROY", 0);
        Add(t, FuseOpcode.Ioctl, "IOCTL", 0, supported: false);
        Add(t, FuseOpcode.Poll, "POLL", 0, supported: false);
        Add(t, FuseOpcode.NotifyReply, "NOTIFY_REPLY", 0, hasReply: false, supported: false);
        Add(t, FuseOpcode.BatchForget, "BATCH_FORGET", Size<FuseBatchForgetIn>(), hasReply: false);
        Add(t, FuseOpcode.Fallocate, "FALLOCATE", Size<FuseFallocateIn>());
        Add(t, FuseOpcode.ReadDirPlus, "READDIRPLUS", Size<FuseReadIn>());
        Add(t, FuseOpcode.Rename2, "RENAME2", Size<FuseRename2In>() + TwoNames);
        Add(t, FuseOpcode.Lseek, "LSEEK", Size<FuseLseekIn>());
        Add(t, FuseOpcode.CopyFileRange, "COPY_FILE_RANGE", Size<FuseCopyFileRangeIn>());
        Add(t, FuseOpcode.SetupMapping, "SETUPMAPPING", 0, supported: false);
        Add(t, FuseOpcode.RemoveMapping, "REMOVEMAPPING", 0, supported: false);
        Add(t, FuseOpcode.SyncFs, "SYNCFS", 0, supported: false);
        Add(t, FuseOpcode.TmpFile, "TMPFILE", 0, supported: false);
        Add(t, FuseOpcode.Statx, "STATX", 0, supported: false);
        return t;
    }

    private static void Add(FuseOpcodeInfo[] t, FuseOpcode op, string name, int minBody, bool hasReply = true,
        bool supported = true) => t[(int)op] = new FuseOpcodeInfo(op, name, minBody, hasReply, supported);

    private static int Size<T>() where T : unmanaged => Unsafe.SizeOf<T>();
}
