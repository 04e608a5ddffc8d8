using System.Runtime.InteropServices;
using DaxFs.Pmem.Interop;

namespace DaxFs.Pmem;

/// <summary>PageWriteTracker -- which pages of a mapping were written since the last look, found the way the kernel
/// finds dirty DAX entries: by write-protecting them. userfaultfd in asynchronous write-protect mode
/// (UFFD_FEATURE_WP_ASYNC, Linux 6.7+: the kernel resolves the write fault itself and clears the protection) marks a
/// written page; the PAGEMAP_SCAN ioctl on /proc/self/pagemap reports the marked pages and protects them again in one
/// call (PM_SCAN_WP_MATCHING). Constants and layouts are the kernel's uapi (linux/userfaultfd.h, linux/fs.h); Debian's
/// headers predate them.</summary>
/// <remarks>Write protection splits 2 MiB mappings into 4 KiB ones. Here (Linux 6.18) it works on shmem (tmpfs, memfd)
/// and on ordinary files; <see cref="TryOpen"/> and <see cref="Track"/> say why when the kernel refuses.</remarks>
public sealed unsafe class PageWriteTracker : IPageWriteTracker
{
    private const ulong PAGEMAP_SCAN = 0xC0606610;        // _IOWR('f', 16, struct pm_scan_arg)           (96 bytes)
    private const ulong PM_SCAN_WP_MATCHING = 1UL << 0;
    private const ulong PM_SCAN_CHECK_WPASYNC = 1UL << 1;
    private const ulong PAGE_IS_WRITTEN = 1UL << 1;

    private int _uffd;
    private int _pagemap;
    private long _scans, _faultsSeen;

    private PageWriteTracker(int uffd, int pagemap)
    {
        _uffd = uffd;
        _pagemap = pagemap;
    }

    /// <summary>PAGEMAP_SCAN calls made.</summary>
    public long Scans => Interlocked.Read(ref _scans);

    /// <summary>Written page ranges reported.</summary>
    public long RangesReported => Interlocked.Read(ref _faultsSeen);

    [StructLayout(LayoutKind.Sequential)]
    private struct PmScanArg
    {
        public ulong Size, Flags, Start, End, WalkEnd, Vec, VecLen, MaxPages, CategoryInverted, CategoryMask, CategoryAnyofMask, ReturnMask;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PageRegion
    {
        public ulong Start, End, Categories;
    }

    /// <summary>Opens a tracker, or returns null with the reason the kernel gave.</summary>
    public static PageWriteTracker? TryOpen(out string reason)
    {
        int fd = Userfaultfd.Create(Userfaultfd.UserModeOnly);
        if (fd < 0)
        {
            reason = Userfaultfd.CreateFailure();
            return null;
        }
        if (Userfaultfd.Handshake(fd, Userfaultfd.FeatureWpAsync | Userfaultfd.FeatureWpUnpopulated | Userfaultfd.FeatureWpHugetlbfsShmem) is { } refused)
        {
            reason = $"UFFDIO_API refused asynchronous write protection: {refused} (needs Linux 6.7 or later)";
            return null;
        }
        int pm = Libc.Open("/proc/self/pagemap", Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        if (pm < 0)
        {
            var (_, text) = Libc.LastError();
            Libc.Close(fd);
            reason = $"cannot open /proc/self/pagemap: {text}";
            return null;
        }
        reason = "";
        return new PageWriteTracker(fd, pm);
    }

    /// <summary>Starts tracking writes to [address, address+length) (page aligned): registers it for write-protect
    /// faults and protects every page. Throws with the kernel's reason when the memory cannot be tracked.</summary>
    public void Track(nint address, long length)
    {
        Userfaultfd.Register(_uffd, address, length);
        try
        {
            Userfaultfd.Protect(_uffd, (ulong)address, (ulong)length);
        }
        catch
        {
            Untrack(address, length);
            throw;
        }
    }

    /// <summary>Stops tracking [address, address+length).</summary>
    public void Untrack(nint address, long length) => Userfaultfd.Unregister(_uffd, address, length);

    /// <summary>Appends to <paramref name="written"/> the page ranges of [address, address+length) written since the
    /// last call (offsets relative to <paramref name="address"/>) and protects them again; returns how many ranges.</summary>
    public int TakeWritten(nint address, long length, List<(long Offset, long Length)> written)
    {
        const int VecLen = 256;
        PageRegion* vec = stackalloc PageRegion[VecLen];
        ulong start = (ulong)address, end = (ulong)(address + (nint)length);
        int total = 0;
        while (start < end)
        {
            var arg = new PmScanArg
            {
                Size = (ulong)sizeof(PmScanArg), Flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, Start = start, End = end,
                Vec = (ulong)vec, VecLen = VecLen, CategoryMask = PAGE_IS_WRITTEN, ReturnMask = PAGE_IS_WRITTEN,
            };
            int n = Libc.Ioctl(_pagemap, PAGEMAP_SCAN, &arg);
            Interlocked.Increment(ref _scans);
            if (n < 0)
            {
                var (errno, text) = Libc.LastError();
                throw new PmemException($"PAGEMAP_SCAN failed with {text}", errno);
            }
            for (int i = 0; i < n; i++)
                written.Add(((long)(vec[i].Start - (ulong)address), (long)(vec[i].End - vec[i].Start)));
            total += n;
            Interlocked.Add(ref _faultsSeen, n);
            if (arg.WalkEnd >= end || n < VecLen)
                break;
            start = arg.WalkEnd;
        }
        return total;
    }

    /// <summary>Closes the userfaultfd and pagemap descriptors.</summary>
    public void Dispose()
    {
        int u = Interlocked.Exchange(ref _uffd, -1);
        if (u >= 0)
            Libc.Close(u);
        int p = Interlocked.Exchange(ref _pagemap, -1);
        if (p >= 0)
            Libc.Close(p);
    }
}
