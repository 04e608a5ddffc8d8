using System.Runtime.InteropServices;

namespace DaxFs.Fuse.Interop;

/// <summary>Libc -- the syscalls the FUSE session needs, declared once. Each returns -1 and sets errno on failure
/// (read it with <see cref="Marshal.GetLastPInvokeError"/>), as the C library documents.</summary>
internal static unsafe partial class Libc
{
    // Why "libc.so.6": plain "libc" can resolve to the libc.so linker script of libc6-dev, which dlopen rejects.
    private const string LibC = "libc.so.6";

    internal const int O_RDWR = 2, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;
    internal const int F_SETFD = 2, F_GETFL = 3, F_SETFL = 4, FD_CLOEXEC = 1;
    internal const short POLLIN = 0x1, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
    internal const ulong MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4;
    internal const int MNT_DETACH = 2;
    internal const int AF_UNIX = 1, SOCK_STREAM = 1, SOL_SOCKET = 1, SCM_RIGHTS = 1;
    internal const int F_OK = 0;
    internal const int O_PATH = 0x200000, O_DIRECTORY = 0x10000;

    internal const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EAGAIN = 11, EACCES = 13, EBUSY = 16,
        ENODEV = 19, EINVAL = 22, ECONNABORTED = 103, ENOTCONN = 107;

    [LibraryImport(LibC, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Open(string path, int flags, int mode);

    [LibraryImport(LibC, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport(LibC, EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport(LibC, EntryPoint = "writev", SetLastError = true)]
    internal static partial nint WriteV(int fd, FuseIoVec* iov, int count);

    [LibraryImport(LibC, EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>ioctl with a pointer argument (FUSE_DEV_IOC_CLONE takes a pointer to the session's fd).</summary>
    [LibraryImport(LibC, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, nuint request, uint* argument);

    [LibraryImport(LibC, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport(LibC, EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Mount(string source, string target, string fileSystemType, ulong flags,
        string? data);

    [LibraryImport(LibC, EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Umount2(string target, int flags);

    /// <summary>fstatfs into a scratch buffer (struct statfs is 120 bytes on 64-bit Linux); the result is not
    /// used: the call exists to send the FUSE daemon a STATFS request.</summary>
    [LibraryImport(LibC, EntryPoint = "fstatfs", SetLastError = true)]
    internal static partial int FStatFs(int fd, byte* buffer);

    [LibraryImport(LibC, EntryPoint = "statfs", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int StatFs(string path, byte* buffer);

    [LibraryImport(LibC, EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Access(string path, int mode);

    [LibraryImport(LibC, EntryPoint = "socketpair", SetLastError = true)]
    internal static partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport(LibC, EntryPoint = "recvmsg", SetLastError = true)]
    internal static partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(LibC, EntryPoint = "getuid")]
    internal static partial uint GetUid();

    [LibraryImport(LibC, EntryPoint = "getgid")]
    internal static partial uint GetGid();

    [LibraryImport(LibC, EntryPoint = "geteuid")]
    internal static partial uint GetEUid();

    /// <summary>strerror-like text for an errno, for messages.</summary>
    internal static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    /// <summary>struct pollfd (8 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    /// <summary>struct msghdr as laid out on x86-64 (56 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MsgHdr
    {
        public void* Name;
        public uint NameLen;
        public FuseIoVec* Iov;
        public nuint IovLen;
        public void* Control;
        public nuint ControlLen;
        public int Flags;
    }

    /// <summary>struct cmsghdr header (16 bytes); the data follows.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct CMsgHdr
    {
        public nuint Len;
        public int Level;
        public int Type;
    }
}
