using System.Runtime.InteropServices;
using System.Text;
using DaxFs.Fuse.Interop;
using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

/// <summary>FuseMounter -- makes and unmakes the kernel mount: mount(2) on /dev/fuse as root, fusermount3
/// otherwise; clones the session descriptor for workers; clears a stale mount left by a killed daemon.</summary>
internal static class FuseMounter
{
    // Why blocking descriptors: a blocked read(2) of /dev/fuse waits exclusively, so the kernel wakes one idle
    // worker per request; poll(2) would wake every worker for each request.
    private const int DevFuseFlags = Libc.O_RDWR | Libc.O_CLOEXEC;

    /// <summary>Mounts <paramref name="path"/>; returns the session descriptor (blocking) and how it was
    /// made. Throws <see cref="FuseMountException"/> naming every way tried and why each failed.</summary>
    public static (int Fd, FuseMountMethod Method) Mount(string path, FuseMountOptions options, FuseLog log)
    {
        var failures = new List<string>();
        bool root = Libc.GetEUid() == 0;
        if (options.Method == FuseMountMethod.Syscall || (options.Method == FuseMountMethod.Auto && root))
        {
            try
            {
                return (MountSyscall(path, options), FuseMountMethod.Syscall);
            }
            catch (FuseMountException e) when (options.Method == FuseMountMethod.Auto)
            {
                failures.Add(e.Message);
            }
        }
        else if (options.Method == FuseMountMethod.Auto)
        {
            failures.Add("mount(2) needs root");
        }
        if (options.Method != FuseMountMethod.Syscall)
        {
            string? helper = Fusermount.Locate();
            if (helper is null)
            {
                failures.Add("fusermount3 is not on PATH (Debian package fuse3)");
            }
            else
            {
                try
                {
                    int fd = Fusermount.Mount(helper, path, FusermountOptions(options));
                    SetBlocking(fd);
                    return (fd, FuseMountMethod.Fusermount);
                }
                catch (FuseMountException e)
                {
                    failures.Add(e.Message);
                }
            }
        }
        throw new FuseMountException($"cannot mount {path}: {string.Join("; ", failures)}");
    }

    /// <summary>A new descriptor on the connection of <paramref name="sessionFd"/> (FUSE_DEV_IOC_CLONE), so that
    /// its requests are read and answered independently; -1 and <paramref name="error"/> if the kernel refuses.</summary>
    public static unsafe int Clone(int sessionFd, out string? error)
    {
        error = null;
        int fd = Libc.Open("/dev/fuse", DevFuseFlags, 0);
        if (fd < 0)
        {
            error = $"open /dev/fuse: {Libc.Describe(Marshal.GetLastPInvokeError())}";
            return -1;
        }
        uint session = (uint)sessionFd;
        if (Libc.Ioctl(fd, FuseKernel.DevIocClone, &session) != 0)
        {
            error = $"ioctl FUSE_DEV_IOC_CLONE: {Libc.Describe(Marshal.GetLastPInvokeError())}";
            Libc.Close(fd);
            return -1;
        }
        return fd;
    }

    /// <summary>Unmounts <paramref name="path"/>: a plain unmount, retried while busy for
    /// <paramref name="timeout"/>, then a lazy one (the mount disappears from the namespace at once and the
    /// connection ends when the session closes its descriptors). False if it was not mounted any more.</summary>
    public static bool Unmount(string path, FuseMountMethod method, TimeSpan timeout, FuseLog log,
        Action? beforeDetach = null)
    {
        if (method == FuseMountMethod.Fusermount && Libc.GetEUid() != 0)
            return Fusermount.Unmount(path, timeout, log, beforeDetach);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Libc.Umount2(path, 0) == 0)
                return true;
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Libc.EINVAL or Libc.ENOENT)
                return false; // not a mount point (any more): someone unmounted it already
            if (errno != Libc.EBUSY || DateTime.UtcNow >= deadline)
                break;
            Thread.Sleep(50);
        }
        log.Write($"{path} stays busy; detaching it (lazy unmount)");
        beforeDetach?.Invoke();
        if (Libc.Umount2(path, Libc.MNT_DETACH) == 0)
            return true;
        int detachErrno = Marshal.GetLastPInvokeError();
        if (detachErrno is Libc.EINVAL or Libc.ENOENT)
            return false;
        throw new FuseMountException($"cannot unmount {path}: umount2: {Libc.Describe(detachErrno)}");
    }

    /// <summary>Detaches a mount whose daemon died (SIGKILL): its mount point answers ENOTCONN. True if one was
    /// found and detached.</summary>
    public static bool RecoverStale(string path, FuseLog log)
    {
        if (Libc.Access(path, Libc.F_OK) == 0 || Marshal.GetLastPInvokeError() != Libc.ENOTCONN)
            return false;
        log.Write($"{path} is a FUSE mount whose daemon is gone (ENOTCONN); detaching it");
        if (Libc.GetEUid() == 0)
        {
            if (Libc.Umount2(path, Libc.MNT_DETACH) != 0)
                throw new FuseMountException(
                    $"cannot detach the stale mount on {path}: {Libc.Describe(Marshal.GetLastPInvokeError())}");
        }
        else
        {
            Fusermount.Unmount(path, TimeSpan.Zero, log);
        }
        return true;
    }

    private static int MountSyscall(string path, FuseMountOptions options)
    {
        int fd = Libc.Open("/dev/fuse", DevFuseFlags, 0);
        if (fd < 0)
            throw new FuseMountException($"open /dev/fuse: {Libc.Describe(Marshal.GetLastPInvokeError())}");
        // rootmode is octal (S_IFDIR); user_id/group_id name who may use the mount without allow_other.
        var data = new StringBuilder($"fd={fd},rootmode=40000,user_id={Libc.GetUid()},group_id={Libc.GetGid()}");
        data.Append($",max_read={options.MaxWrite}");
        if (options.DefaultPermissions)
            data.Append(",default_permissions");
        if (options.AllowOther)
            data.Append(",allow_other");
        ulong flags = Libc.MS_NOSUID | Libc.MS_NODEV | (options.ReadOnly ? Libc.MS_RDONLY : 0);
        if (Libc.Mount(options.FsName, path, $"fuse.{options.Subtype}", flags, data.ToString()) == 0)
            return fd;
        int errno = Marshal.GetLastPInvokeError();
        // Why a second try: a kernel without subtype support knows only "fuse" (ENODEV for "fuse.daxfs").
        if (errno == Libc.ENODEV && Libc.Mount(options.FsName, path, "fuse", flags, data.ToString()) == 0)
            return fd;
        errno = errno == Libc.ENODEV ? Marshal.GetLastPInvokeError() : errno;
        Libc.Close(fd);
        throw new FuseMountException($"mount(2): {Libc.Describe(errno)}");
    }

    private static string FusermountOptions(FuseMountOptions options)
    {
        var o = new StringBuilder($"fsname={options.FsName},subtype={options.Subtype},max_read={options.MaxWrite}");
        if (options.DefaultPermissions)
            o.Append(",default_permissions");
        if (options.AllowOther)
            o.Append(",allow_other");
        if (options.ReadOnly)
            o.Append(",ro");
        return o.ToString();
    }

    private static void SetBlocking(int fd)
    {
        int flags = Libc.Fcntl(fd, Libc.F_GETFL, 0);
        if (flags < 0 || Libc.Fcntl(fd, Libc.F_SETFL, flags & ~Libc.O_NONBLOCK) < 0)
            throw new FuseMountException($"fcntl ~O_NONBLOCK: {Libc.Describe(Marshal.GetLastPInvokeError())}");
    }
}
