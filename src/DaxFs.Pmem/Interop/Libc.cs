using System.Runtime.InteropServices;

namespace DaxFs.Pmem.Interop;

/// <summary>Libc -- the syscalls the device layer needs, declared once. Each returns -1 and sets errno on failure
/// (read it with <see cref="Marshal.GetLastPInvokeError"/>), as the C library documents.</summary>
internal static unsafe partial class Libc
{
    // Why "libc.so.6": plain "libc" can resolve to the libc.so linker script of libc6-dev, which dlopen rejects.
    private const string LibC = "libc.so.6";

    internal const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_CLOEXEC = 0x80000;
    internal const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    internal const int MAP_SHARED = 0x1, MAP_PRIVATE = 0x2, MAP_SHARED_VALIDATE = 0x3, MAP_FIXED = 0x10,
        MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000, MAP_POPULATE = 0x8000, MAP_SYNC = 0x80000;
    internal const int MS_ASYNC = 1, MS_INVALIDATE = 2, MS_SYNC = 4;
    internal const int MADV_DONTNEED = 4, MADV_HUGEPAGE = 14, MADV_NOHUGEPAGE = 15;
    internal const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    internal const uint MFD_CLOEXEC = 1;
    internal const int S_IFMT = 0xF000, S_IFCHR = 0x2000, S_IFREG = 0x8000, S_IFBLK = 0x6000, S_IFDIR = 0x4000;

    internal const int ENOENT = 2, EINTR = 4, EIO = 5, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EBUSY = 16,
        EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOSPC = 28, EOPNOTSUPP = 95;

    internal static readonly nint MAP_FAILED = -1;

    /// <summary>open -- open or create a file; returns a descriptor or -1.</summary>
    [LibraryImport(LibC, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Open(string path, int flags, int mode);

    /// <summary>close -- release a descriptor.</summary>
    [LibraryImport(LibC, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    /// <summary>fstat -- file type, size and device numbers of a descriptor.</summary>
    [LibraryImport(LibC, EntryPoint = "fstat", SetLastError = true)]
    internal static partial int FStat(int fd, out Stat buf);

    /// <summary>ftruncate -- set the length of a file.</summary>
    [LibraryImport(LibC, EntryPoint = "ftruncate", SetLastError = true)]
    internal static partial int FTruncate(int fd, long length);

    /// <summary>posix_fallocate -- reserve blocks for a file; returns 0 or an errno (does not set errno).</summary>
    [LibraryImport(LibC, EntryPoint = "posix_fallocate")]
    internal static partial int PosixFAllocate(int fd, long offset, long length);

    /// <summary>flock -- take or drop an advisory whole-file lock.</summary>
    [LibraryImport(LibC, EntryPoint = "flock", SetLastError = true)]
    internal static partial int FLock(int fd, int operation);

    /// <summary>memfd_create -- an anonymous tmpfs-backed file.</summary>
    [LibraryImport(LibC, EntryPoint = "memfd_create", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int MemfdCreate(string name, uint flags);

    /// <summary>mmap -- map a file or anonymous memory; returns <see cref="MAP_FAILED"/> on error.</summary>
    [LibraryImport(LibC, EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint MMap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    /// <summary>munmap -- remove a mapping.</summary>
    [LibraryImport(LibC, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int MUnmap(nint addr, nuint length);

    /// <summary>mprotect -- change the protection of mapped pages.</summary>
    [LibraryImport(LibC, EntryPoint = "mprotect", SetLastError = true)]
    internal static partial int MProtect(nint addr, nuint length, int prot);

    /// <summary>msync -- write mapped pages back to the file (MS_SYNC waits for completion).</summary>
    [LibraryImport(LibC, EntryPoint = "msync", SetLastError = true)]
    internal static partial int MSync(nint addr, nuint length, int flags);

    /// <summary>madvise -- advice on a mapped range (huge pages, discard).</summary>
    [LibraryImport(LibC, EntryPoint = "madvise", SetLastError = true)]
    internal static partial int MAdvise(nint addr, nuint length, int advice);

    /// <summary>ioctl -- a device-specific request with a pointer argument.</summary>
    [LibraryImport(LibC, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, ulong request, void* arg);

    /// <summary>syscall -- a raw system call with up to three integer arguments (userfaultfd has no libc wrapper here).</summary>
    [LibraryImport(LibC, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3);

    internal const long SYS_userfaultfd = 323; // x86-64
    internal const int O_NONBLOCK = 0x800;

    /// <summary>eventfd -- a counter descriptor that polls readable once written.</summary>
    [LibraryImport(LibC, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int EventFd(uint initval, int flags);

    internal const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;

    /// <summary>write -- bytes to a descriptor.</summary>
    [LibraryImport(LibC, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, void* buf, nuint count);

    /// <summary>pthread_create -- a native thread running <paramref name="start"/>(<paramref name="arg"/>); returns an
    /// errno value (0 on success).</summary>
    [LibraryImport(LibC, EntryPoint = "pthread_create")]
    internal static partial int PthreadCreate(nint* thread, nint attr, nint start, nint arg);

    /// <summary>pthread_join -- waits for a native thread to return.</summary>
    [LibraryImport(LibC, EntryPoint = "pthread_join")]
    internal static partial int PthreadJoin(nint thread, nint* result);

    /// <summary>getpagesize -- the base page size.</summary>
    [LibraryImport(LibC, EntryPoint = "getpagesize")]
    internal static partial int GetPageSize();

    /// <summary>struct stat as laid out by the x86-64 kernel ABI (144 bytes).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    internal struct Stat
    {
        [FieldOffset(0)] public ulong Dev;
        [FieldOffset(8)] public ulong Ino;
        [FieldOffset(16)] public ulong NLink;
        [FieldOffset(24)] public uint Mode;
        [FieldOffset(28)] public uint Uid;
        [FieldOffset(32)] public uint Gid;
        [FieldOffset(40)] public ulong RDev;
        [FieldOffset(48)] public long Size;
        [FieldOffset(56)] public long BlkSize;
        [FieldOffset(64)] public long Blocks;
    }

    /// <summary>gnu_dev_major -- the major number of a dev_t.</summary>
    internal static uint Major(ulong dev) => (uint)(((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffUL));

    /// <summary>gnu_dev_minor -- the minor number of a dev_t.</summary>
    internal static uint Minor(ulong dev) => (uint)((dev & 0xff) | ((dev >> 12) & ~0xffUL));

    /// <summary>The errno of the last failed call and its text, for exception messages.</summary>
    internal static (int Errno, string Text) LastError()
    {
        int errno = Marshal.GetLastPInvokeError();
        return (errno, ErrnoText(errno));
    }

    /// <summary>strerror text with the symbolic name, e.g. "EOPNOTSUPP (Operation not supported)".</summary>
    internal static string ErrnoText(int errno) => $"{ErrnoName(errno)} ({Marshal.GetPInvokeErrorMessage(errno)})";

    /// <summary>The symbolic name of the errno values this layer reports.</summary>
    internal static string ErrnoName(int errno) => errno switch
    {
        1 => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", EIO => "EIO", 9 => "EBADF", EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM", EACCES => "EACCES", EBUSY => "EBUSY", EEXIST => "EEXIST", ENODEV => "ENODEV",
        20 => "ENOTDIR", 21 => "EISDIR", EINVAL => "EINVAL", 27 => "EFBIG", ENOSPC => "ENOSPC", 30 => "EROFS",
        EOPNOTSUPP => "EOPNOTSUPP", 6 => "ENXIO", 75 => "EOVERFLOW",
        _ => "errno " + errno,
    };
}
