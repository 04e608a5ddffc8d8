using System.Runtime.InteropServices;

namespace DaxFs.Pmem.Interop;

/// <summary>Userfaultfd -- the write-protect part of userfaultfd(2) that both page trackers use: opening a descriptor
/// with the features they need, registering a range for write-protect faults, protecting and unregistering it.
/// Constants and layouts are the kernel's uapi (linux/userfaultfd.h); Debian's headers predate some of them.</summary>
internal static unsafe class Userfaultfd
{
    public const ulong FeatureWpHugetlbfsShmem = 1UL << 12; // UFFD_FEATURE_WP_HUGETLBFS_SHMEM
    public const ulong FeatureWpUnpopulated = 1UL << 13;    // UFFD_FEATURE_WP_UNPOPULATED
    public const ulong FeatureWpAsync = 1UL << 15;          // UFFD_FEATURE_WP_ASYNC
    public const int UserModeOnly = 1;                      // UFFD_USER_MODE_ONLY
    private const ulong UFFD_API = 0xAA;
    private const ulong UFFDIO_API = 0xC018AA3F;          // _IOWR(0xAA, 0x3F, struct uffdio_api)        (24 bytes)
    private const ulong UFFDIO_REGISTER = 0xC020AA00;     // _IOWR(0xAA, 0x00, struct uffdio_register)   (32 bytes)
    private const ulong UFFDIO_UNREGISTER = 0x8010AA01;   // _IOR(0xAA, 0x01, struct uffdio_range)       (16 bytes)
    private const ulong UFFDIO_WRITEPROTECT = 0xC018AA06; // _IOWR(0xAA, 0x06, struct uffdio_writeprotect) (24 bytes)
    private const ulong UFFDIO_REGISTER_MODE_WP = 1UL << 1;
    private const ulong UFFDIO_WRITEPROTECT_MODE_WP = 1UL << 0;

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioApi
    {
        public ulong Api, Features, Ioctls;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioRange
    {
        public ulong Start, Len;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioRegister
    {
        public UffdioRange Range;
        public ulong Mode, Ioctls;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioWriteProtect
    {
        public UffdioRange Range;
        public ulong Mode;
    }

    /// <summary>userfaultfd(O_CLOEXEC | O_NONBLOCK | <paramref name="flags"/>): the descriptor, or -1 (errno set).</summary>
    public static int Create(int flags) => (int)Libc.Syscall(Libc.SYS_userfaultfd, Libc.O_CLOEXEC | Libc.O_NONBLOCK | flags, 0, 0);

    /// <summary>Why userfaultfd() just failed.</summary>
    public static string CreateFailure()
    {
        var (errno, text) = Libc.LastError();
        return $"userfaultfd() failed with {text}" + (errno == 1 ? " (vm.unprivileged_userfaultfd is 0 and the process is not privileged)" : "");
    }

    /// <summary>UFFDIO_API with <paramref name="features"/>; on refusal closes <paramref name="fd"/> and returns the
    /// kernel's reason.</summary>
    public static string? Handshake(int fd, ulong features)
    {
        var api = new UffdioApi { Api = UFFD_API, Features = features };
        if (Libc.Ioctl(fd, UFFDIO_API, &api) == 0)
            return null;
        var (_, text) = Libc.LastError();
        Libc.Close(fd);
        return text;
    }

    /// <summary>Registers [address, +length) for write-protect faults; throws with the kernel's reason
    /// (<paramref name="einvalHint"/> added to an EINVAL).</summary>
    public static void Register(int fd, nint address, long length, string? einvalHint = null)
    {
        var reg = new UffdioRegister { Range = new UffdioRange { Start = (ulong)address, Len = (ulong)length }, Mode = UFFDIO_REGISTER_MODE_WP };
        if (Libc.Ioctl(fd, UFFDIO_REGISTER, &reg) != 0)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"userfaultfd cannot track writes to this mapping: UFFDIO_REGISTER failed with {text}" +
                (errno == Libc.EINVAL && einvalHint is not null ? $" ({einvalHint})" : ""), errno);
        }
    }

    /// <summary>Unregisters [address, +length) (which also wakes any thread held in a fault of it).</summary>
    public static void Unregister(int fd, nint address, long length)
    {
        var range = new UffdioRange { Start = (ulong)address, Len = (ulong)length };
        Libc.Ioctl(fd, UFFDIO_UNREGISTER, &range);
    }

    /// <summary>Write-protects [start, +length) of a registered range; throws with the kernel's reason.</summary>
    public static void Protect(int fd, ulong start, ulong length)
    {
        var wp = new UffdioWriteProtect { Range = new UffdioRange { Start = start, Len = length }, Mode = UFFDIO_WRITEPROTECT_MODE_WP };
        if (Libc.Ioctl(fd, UFFDIO_WRITEPROTECT, &wp) != 0)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"cannot write-protect tracked pages: UFFDIO_WRITEPROTECT failed with {text}", errno);
        }
    }
}
