using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace DaxFs.Integration.Tests;

/// <summary>StatX -- the fields of statx(2) the tests compare.</summary>
internal readonly record struct StatX(uint Mode, uint Nlink, uint Uid, uint Gid, ulong Ino, long Size, long Blocks,
    long AtimeNs, long MtimeNs, long CtimeNs, uint DevMajor, uint DevMinor)
{
    public uint Type => Mode & 0xF000;
    public bool IsDirectory => Type == 0x4000;
    public bool IsRegular => Type == 0x8000;
    public bool IsSymlink => Type == 0xA000;
    public uint Perm => Mode & 0xFFF;
}

/// <summary>Libc -- raw system calls for the POSIX behaviour steps (every call returns -errno on failure, never
/// throws, so a step records exactly what the kernel answered).</summary>
internal static unsafe class Libc
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtEmptyPath = 0x1000;
    public const int AtRemoveDir = 0x200;

    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_EXCL = 0x80, O_TRUNC = 0x200,
        O_APPEND = 0x400, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;

    public const int SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2, SEEK_DATA = 3, SEEK_HOLE = 4;

    public const uint RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2;

    public const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2, FALLOC_FL_ZERO_RANGE = 0x10;

    public const int XATTR_CREATE = 1, XATTR_REPLACE = 2;

    public const long UTIME_NOW = (1L << 30) - 1, UTIME_OMIT = (1L << 30) - 2;

    [DllImport("libc", SetLastError = true, EntryPoint = "open")]
    private static extern int open_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mode);

    [DllImport("libc", SetLastError = true, EntryPoint = "close")]
    private static extern int close_(int fd);

    [DllImport("libc", SetLastError = true, EntryPoint = "pread")]
    private static extern nint pread_(int fd, byte* buf, nint count, long offset);

    [DllImport("libc", SetLastError = true, EntryPoint = "pwrite")]
    private static extern nint pwrite_(int fd, byte* buf, nint count, long offset);

    [DllImport("libc", SetLastError = true, EntryPoint = "read")]
    private static extern nint read_(int fd, byte* buf, nint count);

    [DllImport("libc", SetLastError = true, EntryPoint = "write")]
    private static extern nint write_(int fd, byte* buf, nint count);

    [DllImport("libc", SetLastError = true, EntryPoint = "lseek")]
    private static extern long lseek_(int fd, long offset, int whence);

    [DllImport("libc", SetLastError = true, EntryPoint = "ftruncate")]
    private static extern int ftruncate_(int fd, long length);

    [DllImport("libc", SetLastError = true, EntryPoint = "truncate")]
    private static extern int truncate_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, long length);

    [DllImport("libc", SetLastError = true, EntryPoint = "fsync")]
    private static extern int fsync_(int fd);

    [DllImport("libc", SetLastError = true, EntryPoint = "rename")]
    private static extern int rename_([MarshalAs(UnmanagedType.LPUTF8Str)] string from, [MarshalAs(UnmanagedType.LPUTF8Str)] string to);

    [DllImport("libc", SetLastError = true, EntryPoint = "renameat2")]
    private static extern int renameat2_(int olddirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string from, int newdirfd,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string to, uint flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "link")]
    private static extern int link_([MarshalAs(UnmanagedType.LPUTF8Str)] string existing, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);

    [DllImport("libc", SetLastError = true, EntryPoint = "unlink")]
    private static extern int unlink_([MarshalAs(UnmanagedType.LPUTF8Str)] string path);

    [DllImport("libc", SetLastError = true, EntryPoint = "symlink")]
    private static extern int symlink_([MarshalAs(UnmanagedType.LPUTF8Str)] string target, [MarshalAs(UnmanagedType.LPUTF8Str)] string path);

    [DllImport("libc", SetLastError = true, EntryPoint = "readlink")]
    private static extern nint readlink_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buf, nint size);

    [DllImport("libc", SetLastError = true, EntryPoint = "mkdir")]
    private static extern int mkdir_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    [DllImport("libc", SetLastError = true, EntryPoint = "rmdir")]
    private static extern int rmdir_([MarshalAs(UnmanagedType.LPUTF8Str)] string path);

    [DllImport("libc", SetLastError = true, EntryPoint = "chmod")]
    private static extern int chmod_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    [DllImport("libc", SetLastError = true, EntryPoint = "chown")]
    private static extern int chown_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint uid, uint gid);

    [DllImport("libc", SetLastError = true, EntryPoint = "lchown")]
    private static extern int lchown_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint uid, uint gid);

    [DllImport("libc", SetLastError = true, EntryPoint = "utimensat")]
    private static extern int utimensat_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, long* times, int flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "fallocate")]
    private static extern int fallocate_(int fd, int mode, long offset, long len);

    [DllImport("libc", SetLastError = true, EntryPoint = "setxattr")]
    private static extern int setxattr_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, byte* value, nint size, int flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "lsetxattr")]
    private static extern int lsetxattr_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, byte* value, nint size, int flags);

    [DllImport("libc", SetLastError = true, EntryPoint = "lgetxattr")]
    private static extern nint lgetxattr_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, byte* value, nint size);

    [DllImport("libc", SetLastError = true, EntryPoint = "getxattr")]
    private static extern nint getxattr_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, byte* value, nint size);

    [DllImport("libc", SetLastError = true, EntryPoint = "listxattr")]
    private static extern nint listxattr_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* list, nint size);

    [DllImport("libc", SetLastError = true, EntryPoint = "removexattr")]
    private static extern int removexattr_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    [DllImport("libc", SetLastError = true, EntryPoint = "statx")]
    private static extern int statx_(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte* buf);

    [DllImport("libc", SetLastError = true, EntryPoint = "kill")]
    private static extern int kill_(int pid, int signal);

    [DllImport("libc", SetLastError = true, EntryPoint = "access")]
    private static extern int access_([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int mode);

    private static int Err() => -Marshal.GetLastPInvokeError();

    private static long R(long rc) => rc < 0 ? Err() : rc;

    public static int Open(string path, int flags, uint mode = 0x1A4) => (int)R(open_(path, flags | O_CLOEXEC, mode));

    public static int Close(int fd) => (int)R(close_(fd));

    public static long PRead(int fd, byte[] buf, long offset)
    {
        fixed (byte* p = buf)
            return R(pread_(fd, p, buf.Length, offset));
    }

    public static long PWrite(int fd, byte[] data, long offset)
    {
        fixed (byte* p = data)
            return R(pwrite_(fd, p, data.Length, offset));
    }

    public static long Read(int fd, byte[] buf)
    {
        fixed (byte* p = buf)
            return R(read_(fd, p, buf.Length));
    }

    public static long Write(int fd, byte[] data)
    {
        fixed (byte* p = data)
            return R(write_(fd, p, data.Length));
    }

    public static long LSeek(int fd, long offset, int whence) => R(lseek_(fd, offset, whence));

    public static int FTruncate(int fd, long length) => (int)R(ftruncate_(fd, length));

    public static int Truncate(string path, long length) => (int)R(truncate_(path, length));

    public static int FSync(int fd) => (int)R(fsync_(fd));

    public static int Rename(string from, string to) => (int)R(rename_(from, to));

    public static int Rename2(string from, string to, uint flags) => (int)R(renameat2_(AtFdCwd, from, AtFdCwd, to, flags));

    public static int Link(string existing, string newPath) => (int)R(link_(existing, newPath));

    public static int Unlink(string path) => (int)R(unlink_(path));

    public static int Symlink(string target, string path) => (int)R(symlink_(target, path));

    public static string ReadLink(string path, out int rc, int size = 4096)
    {
        byte[] buf = new byte[size];
        fixed (byte* p = buf)
        {
            long n = R(readlink_(path, p, size));
            rc = (int)Math.Min(n, 0);
            return n < 0 ? "" : Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }

    public static int Mkdir(string path, uint mode = 0x1ED) => (int)R(mkdir_(path, mode));

    public static int Rmdir(string path) => (int)R(rmdir_(path));

    public static int Chmod(string path, uint mode) => (int)R(chmod_(path, mode));

    public static int Chown(string path, uint uid, uint gid) => (int)R(chown_(path, uid, gid));

    public static int LChown(string path, uint uid, uint gid) => (int)R(lchown_(path, uid, gid));

    public const int SIGKILL = 9, SIGTERM = 15;

    public static int Kill(int pid, int signal) => (int)R(kill_(pid, signal));

    public static int Access(string path, int mode) => (int)R(access_(path, mode));

    /// <summary>utimensat with (atime, mtime) as (seconds, nanoseconds or UTIME_NOW/UTIME_OMIT).</summary>
    public static int Utimens(string path, (long Sec, long Nsec) atime, (long Sec, long Nsec) mtime, int flags = 0)
    {
        long* t = stackalloc long[4];
        t[0] = atime.Sec;
        t[1] = atime.Nsec;
        t[2] = mtime.Sec;
        t[3] = mtime.Nsec;
        return (int)R(utimensat_(AtFdCwd, path, t, flags));
    }

    public static int Fallocate(int fd, int mode, long offset, long length) => (int)R(fallocate_(fd, mode, offset, length));

    public static int SetXattr(string path, string name, byte[] value, int flags)
    {
        fixed (byte* p = value)
            return (int)R(setxattr_(path, name, p, value.Length, flags));
    }

    public static int LSetXattr(string path, string name, byte[] value, int flags)
    {
        fixed (byte* p = value)
            return (int)R(lsetxattr_(path, name, p, value.Length, flags));
    }

    /// <summary>lgetxattr's length (or -errno).</summary>
    public static long LGetXattr(string path, string name) => R(lgetxattr_(path, name, null, 0));

    /// <summary>getxattr into a buffer of <paramref name="size"/> bytes (0: ask for the length).</summary>
    public static long GetXattr(string path, string name, int size, out byte[] value)
    {
        byte[] buf = new byte[Math.Max(size, 1)];
        fixed (byte* p = buf)
        {
            long n = R(getxattr_(path, name, size == 0 ? null : p, size));
            value = n > 0 && size > 0 ? buf[..(int)n] : [];
            return n;
        }
    }

    public static long ListXattr(string path, int size, out string[] names)
    {
        byte[] buf = new byte[Math.Max(size, 1)];
        fixed (byte* p = buf)
        {
            long n = R(listxattr_(path, size == 0 ? null : p, size));
            names = n > 0 && size > 0 ? Encoding.UTF8.GetString(buf, 0, (int)n).Split('\0', StringSplitOptions.RemoveEmptyEntries) : [];
            return n;
        }
    }

    public static int RemoveXattr(string path, string name) => (int)R(removexattr_(path, name));

    /// <summary>statx of a path (lstat with <paramref name="follow"/> false), or of an open descriptor when path is null.</summary>
    public static int Stat(string? path, out StatX st, bool follow = true, int fd = AtFdCwd)
    {
        byte* b = stackalloc byte[256];
        int flags = (follow ? 0 : AtSymlinkNoFollow) | (path is null ? AtEmptyPath : 0);
        int rc = statx_(path is null ? fd : AtFdCwd, path ?? "", flags, 0xFFF, b);
        if (rc != 0)
        {
            st = default;
            return Err();
        }
        var s = new ReadOnlySpan<byte>(b, 256);
        static long T(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadInt64LittleEndian(s[at..]) * 1_000_000_000 + BinaryPrimitives.ReadUInt32LittleEndian(s[(at + 8)..]);
        st = new StatX(BinaryPrimitives.ReadUInt16LittleEndian(s[28..]), BinaryPrimitives.ReadUInt32LittleEndian(s[16..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[20..]), BinaryPrimitives.ReadUInt32LittleEndian(s[24..]),
            BinaryPrimitives.ReadUInt64LittleEndian(s[32..]), BinaryPrimitives.ReadInt64LittleEndian(s[40..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[48..]), T(s, 64), T(s, 112), T(s, 96),
            BinaryPrimitives.ReadUInt32LittleEndian(s[136..]), BinaryPrimitives.ReadUInt32LittleEndian(s[140..]));
        return 0;
    }

    public static StatX LStat(string path)
    {
        int rc = Stat(path, out StatX st, follow: false);
        return rc == 0 ? st : throw new IOException($"lstat {path}: {Name(rc)}");
    }

    /// <summary>"0" or the errno's name, e.g. "ENOENT".</summary>
    public static string Name(long rc) => rc >= 0 ? rc.ToString(System.Globalization.CultureInfo.InvariantCulture) : ErrnoName((int)-rc);

    public static string ErrnoName(int e) => e switch
    {
        1 => "EPERM", 2 => "ENOENT", 5 => "EIO", 6 => "ENXIO", 9 => "EBADF", 13 => "EACCES", 16 => "EBUSY", 17 => "EEXIST", 18 => "EXDEV",
        20 => "ENOTDIR", 21 => "EISDIR", 22 => "EINVAL", 27 => "EFBIG", 28 => "ENOSPC", 30 => "EROFS", 31 => "EMLINK", 34 => "ERANGE",
        36 => "ENAMETOOLONG", 107 => "ENOTCONN", 38 => "ENOSYS", 39 => "ENOTEMPTY", 40 => "ELOOP", 61 => "ENODATA", 95 => "EOPNOTSUPP", 7 => "E2BIG",
        _ => $"errno {e}",
    };
}
