using System.Runtime.InteropServices;
using DaxFs.Pmem.Interop;
using Xunit;

namespace DaxFs.Pmem.Tests;

/// <summary>PageFaultLog: the first store to each protected page is logged by the native handler thread; a look
/// reports exactly the written pages as merged runs and protects them again; the ring overflowing turns into
/// "everything written" once; kernel writes into a tracked range are handled; closing the log never leaves a thread
/// stuck in a fault.</summary>
public sealed unsafe class PageFaultLogTests
{
    private const int Page = 4096;

    private static PageFaultLog Open()
    {
        PageFaultLog? log = PageFaultLog.TryOpen(out string why);
        Assert.True(log is not null, $"PageFaultLog unavailable here: {why}");
        return log;
    }

    /// <summary>A MAP_SHARED memfd mapping (what the device and file windows are made of).</summary>
    private sealed class SharedMemory : IDisposable
    {
        private readonly int _fd;

        public SharedMemory(long bytes)
        {
            _fd = Libc.MemfdCreate("pagefaultlog-test", Libc.MFD_CLOEXEC);
            Assert.True(_fd >= 0);
            Assert.Equal(0, Libc.FTruncate(_fd, bytes));
            Address = Libc.MMap(0, (nuint)bytes, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, _fd, 0);
            Assert.NotEqual(Libc.MAP_FAILED, Address);
            Length = bytes;
        }

        public nint Address { get; }

        public long Length { get; }

        public int Fd => _fd;

        public void Store(long page, byte value) => ((byte*)Address)[page * Page + 17] = value;

        public void Dispose()
        {
            Libc.MUnmap(Address, (nuint)Length);
            Libc.Close(_fd);
        }
    }

    private static List<(long Offset, long Length)> Take(PageFaultLog log, SharedMemory m)
    {
        var w = new List<(long, long)>();
        log.TakeWritten(m.Address, m.Length, w);
        return w;
    }

    [Fact]
    public void ReportsExactlyTheWrittenPagesAsRunsAndProtectsThemAgain()
    {
        using var m = new SharedMemory(1024 * Page);
        using PageFaultLog log = Open();
        m.Store(0, 9); // populated before tracking: still protected by Track
        log.Track(m.Address, m.Length);
        Assert.Empty(Take(log, m));
        foreach (long p in new long[] { 5, 3, 4, 100, 1023, 3 })
            m.Store(p, 1);
        Assert.Equal([(3L * Page, 3L * Page), (100L * Page, Page), (1023L * Page, Page)], Take(log, m));
        Assert.Equal(5, log.FaultsLogged); // page 3 twice: the second store found it writable
        Assert.Empty(Take(log, m));
        m.Store(4, 2);
        m.Store(0, 2);
        Assert.Equal([(0L, (long)Page), (4L * Page, Page)], Take(log, m));
        Assert.Equal(7, log.FaultsLogged);
        Assert.Equal(2, ((byte*)m.Address)[4 * Page + 17]);
        log.Untrack(m.Address, m.Length);
        m.Store(6, 1); // no longer protected: no fault
        Assert.Equal(7, log.FaultsLogged);
    }

    [Fact]
    public void ConcurrentWritersEachFindTheirOwnStoresInTheNextLook()
    {
        const int Threads = 4, PagesEach = 256, Rounds = 200;
        using var m = new SharedMemory(Threads * PagesEach * (long)Page);
        using PageFaultLog log = Open();
        int seed = Environment.TickCount;
        Console.WriteLine($"PageFaultLogTests.ConcurrentWriters seed {seed}");
        // One tracked range per thread (as one per mapping): each thread stores, then looks, and must see its pages.
        for (int t = 0; t < Threads; t++)
            log.Track(m.Address + t * PagesEach * Page, PagesEach * (long)Page);
        var failures = new List<string>();
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            var rng = new Random(seed + t);
            nint baseAddr = m.Address + t * PagesEach * Page;
            for (int r = 0; r < Rounds; r++)
            {
                var stored = new SortedSet<long>();
                for (int k = rng.Next(1, 8); k > 0; k--)
                {
                    long p = rng.Next(PagesEach);
                    ((byte*)baseAddr)[p * Page + rng.Next(Page)] = (byte)r;
                    stored.Add(p);
                }
                var w = new List<(long Offset, long Length)>();
                log.TakeWritten(baseAddr, PagesEach * (long)Page, w);
                var seen = new SortedSet<long>(w.SelectMany(x => Enumerable.Range(0, (int)(x.Length / Page)).Select(i => x.Offset / Page + i)));
                if (!seen.SetEquals(stored))
                    lock (failures)
                        failures.Add($"thread {t} round {r}: stored {string.Join(",", stored)}, reported {string.Join(",", seen)} (seed {seed})");
            }
        });
        Assert.Empty(failures);
    }

    [Fact]
    public void AFullRingReportsTheWholeRangeOnce()
    {
        long pages = PageFaultLog.RingCapacity + 64;
        using var m = new SharedMemory(pages * Page);
        using PageFaultLog log = Open();
        log.Track(m.Address, m.Length);
        for (long p = 0; p < pages; p++)
            m.Store(p, 1);
        Assert.Equal([(0L, m.Length)], Take(log, m));
        Assert.Equal(1, log.Overflows);
        m.Store(7, 2);
        Assert.Equal([(7L * Page, (long)Page)], Take(log, m));
    }

    [Fact]
    public void ASystemCallWritingIntoATrackedPageIsLogged()
    {
        using var m = new SharedMemory(16 * Page);
        using PageFaultLog log = Open();
        Assert.True(log.KernelWritesHandled, "running as root, userfaultfd should handle kernel-mode faults too");
        log.Track(m.Address, m.Length);
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, Enumerable.Repeat((byte)0x5A, Page).ToArray());
            int fd = Libc.Open(file, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            Assert.True(fd >= 0);
            nint n = Read(fd, (void*)(m.Address + 9 * Page), Page);
            Libc.Close(fd);
            Assert.Equal(Page, (int)n);
            Assert.Equal(0x5A, ((byte*)m.Address)[9 * Page + 100]);
            Assert.Equal([(9L * Page, (long)Page)], Take(log, m));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [DllImport("libc.so.6", EntryPoint = "read", SetLastError = true)]
    private static extern nint Read(int fd, void* buf, nuint count);

    [Fact]
    public void DisposingWhileTrackingLeavesStoresFree()
    {
        using var m = new SharedMemory(8 * Page);
        PageFaultLog log = Open();
        log.Track(m.Address, m.Length);
        m.Store(1, 1);
        log.Dispose();
        log.Dispose(); // idempotent
        var stored = new ManualResetEventSlim();
        var t = new Thread(() =>
        {
            m.Store(2, 3);
            stored.Set();
        }) { IsBackground = true };
        t.Start();
        Assert.True(stored.Wait(TimeSpan.FromSeconds(10)), "a store into a formerly tracked page hung");
        Assert.Equal(3, ((byte*)m.Address)[2 * Page + 17]);
        Assert.Throws<ObjectDisposedException>(() => log.Track(m.Address, m.Length));
    }

    [Fact]
    public void BadRangesAreRefused()
    {
        using var m = new SharedMemory(8 * Page);
        using PageFaultLog log = Open();
        Assert.Throws<ArgumentException>(() => log.Track(m.Address + 1, Page));
        Assert.Throws<ArgumentException>(() => log.Track(m.Address, 100));
        Assert.Throws<ArgumentException>(() => log.Track(0, Page));
        Assert.Throws<ArgumentException>(() => Take(log, m)); // not tracked
        // An ordinary file's shared mapping (ext4 under /var/tmp): synchronous write protection is refused there.
        string file = Path.Combine("/var/tmp", $"daxfs-pfl-{Guid.NewGuid():N}");
        File.WriteAllBytes(file, new byte[Page]);
        int fd = Libc.Open(file, Libc.O_RDWR | Libc.O_CLOEXEC, 0);
        nint map = Libc.MMap(0, Page, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
        try
        {
            Assert.NotEqual(Libc.MAP_FAILED, map);
            var e = Assert.Throws<PmemException>(() => log.Track(map, Page));
            Assert.Contains("UFFDIO_REGISTER", e.Message, StringComparison.Ordinal);
            Assert.Contains("shmem", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Libc.MUnmap(map, Page);
            Libc.Close(fd);
            File.Delete(file);
        }
    }
}
