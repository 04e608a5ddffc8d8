using System.Runtime.InteropServices;

namespace DaxFs.Fuse.Tests;

/// <summary>TestLibc -- the syscalls the mount tests drive directly: xattrs, fallocate, lseek SEEK_DATA/SEEK_HOLE,
/// copy_file_range, kill.</summary>
internal static unsafe partial class TestLibc
{
    private const string LibC = "libc.so.6";
    public const int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0x40;
    public const int SEEK_DATA = 3, SEEK_HOLE = 4;
    public const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2, FALLOC_FL_ZERO_RANGE = 0x10;
    public const int SIGKILL = 9, SIGTERM = 15;
    public const int ENOTCONN = 107, ENXIO = 6;

    [LibraryImport(LibC, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(LibC, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(LibC, EntryPoint = "setxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int SetXattr(string path, string name, byte[] value, nuint size, int flags);

    [LibraryImport(LibC, EntryPoint = "getxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial nint GetXattr(string path, string name, byte[]? value, nuint size);

    [LibraryImport(LibC, EntryPoint = "listxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial nint ListXattr(string path, byte[]? list, nuint size);

    [LibraryImport(LibC, EntryPoint = "removexattr", StringMarshalling = StringMarshalling.Utf8,
        SetLastError = true)]
    public static partial int RemoveXattr(string path, string name);

    [LibraryImport(LibC, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    [LibraryImport(LibC, EntryPoint = "lseek", SetLastError = true)]
    public static partial long Lseek(int fd, long offset, int whence);

    [LibraryImport(LibC, EntryPoint = "copy_file_range", SetLastError = true)]
    public static partial nint CopyFileRange(int fdIn, long* offIn, int fdOut, long* offOut, nuint length,
        uint flags);

    [LibraryImport(LibC, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport(LibC, EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Access(string path, int mode);

    public static int Errno => Marshal.GetLastPInvokeError();

    public static T Check<T>(T result, string what) where T : System.Numerics.INumber<T> =>
        result < T.Zero ? throw new IOException($"{what}: errno {Errno}") : result;
}
