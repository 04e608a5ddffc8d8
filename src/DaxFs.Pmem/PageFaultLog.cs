using System.Runtime.InteropServices;
using DaxFs.Pmem.Cpu;
using DaxFs.Pmem.Interop;

namespace DaxFs.Pmem;

/// <summary>IPageWriteTracker -- which pages of tracked mappings were written since the last look. Both trackers
/// write-protect the pages; they differ in when the written pages are found.</summary>
public interface IPageWriteTracker : IDisposable
{
    /// <summary>Starts tracking writes to [address, address+length) (page aligned): every page is protected.</summary>
    void Track(nint address, long length);

    /// <summary>Stops tracking [address, address+length).</summary>
    void Untrack(nint address, long length);

    /// <summary>Appends to <paramref name="written"/> the page ranges of the tracked [address, address+length) written
    /// since the last call (offsets relative to <paramref name="address"/>), protected again before this returns, so
    /// that a store after the return is seen next time; returns how many ranges.</summary>
    int TakeWritten(nint address, long length, List<(long Offset, long Length)> written);
}

/// <summary>PageFaultLog -- page-precise write tracking that logs each page at its first write fault, so that finding
/// the written pages costs nothing per clean page: userfaultfd in synchronous write-protect mode. A store to a
/// protected page traps; a handler thread logs the page in a ring, lifts the protection and lets the store go on.
/// <see cref="TakeWritten"/> drains the ring and protects the logged pages again. Compared with
/// <see cref="PageWriteTracker"/> (the kernel resolves the fault, PAGEMAP_SCAN walks every page-table entry of the
/// mapping to find the written ones): fsync costs what was written, not the mapping's size; the first store to a
/// clean page costs a round trip to the handler thread instead of an in-kernel fault.</summary>
/// <remarks>The handler is a native thread (pthread) running 274 bytes of machine code of ours (raw poll, read and
/// ioctl system calls, no libc, no managed code): a managed handler could deadlock, since a thread stopped in the
/// fault holds up the runtime's garbage collector, which would hold up a managed handler. Constants and layouts are the
/// kernel's uapi (linux/userfaultfd.h). Where unprivileged userfaultfd handles user-mode faults only, a system call
/// that writes into a tracked mapping (read(2) into it) fails with EFAULT; <see cref="KernelWritesHandled"/> says
/// which.</remarks>
public sealed unsafe class PageFaultLog : IPageWriteTracker
{
    private const int PageSize = 4096;

    /// <summary>Pages the ring holds between two looks; a fuller ring makes the next look report whole ranges.</summary>
    public const int RingCapacity = 1 << 16;

    // The handler, System V x86-64 ABI, rdi = &Control. Assembled with GNU as, checked with objdump:
    //   push rbx; mov rbx, rdi
    // wait: poll(&ctl->Poll, 2, -1); EINTR -> wait; error -> fail; ctl->Poll[1].revents (stop) -> done
    // read: n = read(uffd, &ctl->Msg, 32); n == 32 -> got; EAGAIN -> wait; EINTR -> read; error -> fail; else wait
    // got:  event != UFFD_EVENT_PAGEFAULT (0x12) -> read
    //       page = msg.pagefault.address & -4096
    //       ioctl(uffd, UFFDIO_WRITEPROTECT, {page, 4096, MODE_DONTWAKE})      lift the protection, thread still held
    //       if head - tail <= mask: ring[head & mask] = page; head++           publish (x86: entry before head)
    //       else overflow = 1
    //       faults++; ioctl(uffd, UFFDIO_WAKE, {page, 4096}); jmp read        only now the store goes on
    // fail: ctl->Error = rax
    // done: xor eax, eax; pop rbx; ret
    // Lifting before publishing, and waking after, is what makes the log exact: a store that completed before a look
    // began is in the ring; a page protected again by a look while its fault is being handled faults once more.
    private static ReadOnlySpan<byte> HandlerCode =>
    [
        0x53, 0x48, 0x89, 0xfb, 0x48, 0x8d, 0x7b, 0x40, 0xbe, 0x02, 0x00, 0x00, 0x00, 0x48, 0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff,
        0xb8, 0x07, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x83, 0xf8, 0xfc, 0x74, 0xe3, 0x48, 0x85, 0xc0, 0x0f, 0x88, 0xdd, 0x00,
        0x00, 0x00, 0x0f, 0xb7, 0x43, 0x4e, 0x85, 0xc0, 0x0f, 0x85, 0xd8, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x3b, 0x48, 0x8d, 0x73,
        0x50, 0xba, 0x20, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x0f, 0x05, 0x48, 0x83, 0xf8, 0x20, 0x74, 0x17, 0x48, 0x83, 0xf8, 0xf5,
        0x74, 0xb2, 0x48, 0x83, 0xf8, 0xfc, 0x74, 0xde, 0x48, 0x85, 0xc0, 0x0f, 0x88, 0xa6, 0x00, 0x00, 0x00, 0xeb, 0xa1, 0x80,
        0x7b, 0x50, 0x12, 0x75, 0xcd, 0x48, 0x8b, 0x43, 0x60, 0x48, 0x25, 0x00, 0xf0, 0xff, 0xff, 0x48, 0x89, 0x43, 0x70, 0x48,
        0xc7, 0x43, 0x78, 0x00, 0x10, 0x00, 0x00, 0x48, 0xc7, 0x83, 0x80, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x48, 0x8b,
        0x3b, 0xbe, 0x06, 0xaa, 0x18, 0xc0, 0x48, 0x8d, 0x53, 0x70, 0xb8, 0x10, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8b, 0x43,
        0x20, 0x48, 0x89, 0xc1, 0x48, 0x2b, 0x4b, 0x28, 0x48, 0x3b, 0x4b, 0x18, 0x77, 0x1c, 0x48, 0x89, 0xc2, 0x48, 0x23, 0x53,
        0x18, 0x48, 0x8b, 0x73, 0x10, 0x48, 0x8b, 0x7b, 0x70, 0x48, 0x89, 0x3c, 0xd6, 0x48, 0xff, 0xc0, 0x48, 0x89, 0x43, 0x20,
        0xeb, 0x08, 0x48, 0xc7, 0x43, 0x30, 0x01, 0x00, 0x00, 0x00, 0x48, 0xff, 0x43, 0x38, 0x48, 0x8b, 0x43, 0x70, 0x48, 0x89,
        0x83, 0x88, 0x00, 0x00, 0x00, 0x48, 0xc7, 0x83, 0x90, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x48, 0x8b, 0x3b, 0xbe,
        0x02, 0xaa, 0x10, 0x80, 0x48, 0x8d, 0x93, 0x88, 0x00, 0x00, 0x00, 0xb8, 0x10, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xe9, 0x2f,
        0xff, 0xff, 0xff, 0x48, 0x89, 0x83, 0x98, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x5b, 0xc3,
    ];

    /// <summary>What the handler reads and writes; offsets are the ones in <see cref="HandlerCode"/>.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 160)]
    private struct Control
    {
        [FieldOffset(0)] public long Uffd;
        [FieldOffset(8)] public long StopFd;
        [FieldOffset(16)] public ulong* Ring;
        [FieldOffset(24)] public ulong Mask;
        [FieldOffset(32)] public ulong Head;      // written by the handler
        [FieldOffset(40)] public ulong Tail;      // written by TakeWritten
        [FieldOffset(48)] public ulong Overflow;  // set by the handler, cleared by TakeWritten
        [FieldOffset(56)] public ulong Faults;
        [FieldOffset(64)] public int PollFd0;     // struct pollfd { int fd; short events, revents; } [2]
        [FieldOffset(68)] public short PollEvents0;
        [FieldOffset(72)] public int PollFd1;
        [FieldOffset(76)] public short PollEvents1;
        [FieldOffset(78)] public short PollRevents1;
        // 80: struct uffd_msg (32 bytes); 112: struct uffdio_writeprotect; 136: struct uffdio_range (the handler's)
        [FieldOffset(152)] public long Error;     // -errno of a failed poll/read; the handler has stopped
    }

    private sealed class Tracked(ulong start, ulong length)
    {
        public readonly ulong Start = start, Length = length;
        public readonly List<long> Pages = [];  // offsets of logged pages, not yet taken
        public bool All;                        // the ring overflowed: every page counts as written
    }

    private readonly object _lock = new();
    private readonly List<Tracked> _tracked = []; // sorted by start
    private Control* _ctl;
    private ulong* _ring;
    private nint _code, _thread;
    private int _uffd, _stopFd;
    private long _overflows, _protects;

    private PageFaultLog(int uffd, int stopFd, bool kernelWrites)
    {
        _uffd = uffd;
        _stopFd = stopFd;
        KernelWritesHandled = kernelWrites;
    }

    /// <summary>Whether a system call writing into a tracked mapping is logged like a store (privileged userfaultfd),
    /// or fails with EFAULT (user-mode faults only).</summary>
    public bool KernelWritesHandled { get; }

    /// <summary>Write faults the handler has logged.</summary>
    public long FaultsLogged => _ctl is null ? 0 : (long)Volatile.Read(ref _ctl->Faults);

    /// <summary>Times the ring was full and the next look reported whole ranges.</summary>
    public long Overflows => Interlocked.Read(ref _overflows);

    /// <summary>UFFDIO_WRITEPROTECT calls made to protect written pages again.</summary>
    public long ProtectCalls => Interlocked.Read(ref _protects);

    /// <summary>Opens a log (and starts its handler thread), or returns null with the reason.</summary>
    public static PageFaultLog? TryOpen(out string reason)
    {
        bool kernelWrites = true;
        int fd = Userfaultfd.Create(0);
        if (fd < 0 && Marshal.GetLastPInvokeError() == 1 /* EPERM */)
        {
            kernelWrites = false;
            fd = Userfaultfd.Create(Userfaultfd.UserModeOnly);
        }
        if (fd < 0)
        {
            reason = Userfaultfd.CreateFailure();
            return null;
        }
        if (Userfaultfd.Handshake(fd, Userfaultfd.FeatureWpUnpopulated | Userfaultfd.FeatureWpHugetlbfsShmem) is { } refused)
        {
            reason = $"UFFDIO_API refused write protection of unpopulated and shmem pages: {refused} (needs Linux 6.4 or later)";
            return null;
        }
        int stop = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (stop < 0)
        {
            var (_, text) = Libc.LastError();
            Libc.Close(fd);
            reason = $"eventfd() failed with {text}";
            return null;
        }
        var log = new PageFaultLog(fd, stop, kernelWrites);
        try
        {
            log.Start();
        }
        catch (PmemException e)
        {
            log.Dispose();
            reason = e.Message;
            return null;
        }
        reason = "";
        return log;
    }

    private void Start()
    {
        _ctl = (Control*)NativeMemory.AllocZeroed((nuint)sizeof(Control));
        _ring = (ulong*)NativeMemory.AllocZeroed((nuint)RingCapacity * sizeof(ulong));
        _ctl->Uffd = _uffd;
        _ctl->StopFd = _stopFd;
        _ctl->Ring = _ring;
        _ctl->Mask = RingCapacity - 1;
        _ctl->PollFd0 = _uffd;
        _ctl->PollEvents0 = 1; // POLLIN
        _ctl->PollFd1 = _stopFd;
        _ctl->PollEvents1 = 1;
        _code = ExecutablePage.Create(HandlerCode, "the write-fault handler");
        nint thread;
        int rc = Libc.PthreadCreate(&thread, 0, _code, (nint)_ctl);
        if (rc != 0)
            throw new PmemException($"cannot start the write-fault handler thread: pthread_create failed with {Libc.ErrnoText(rc)}", rc);
        _thread = thread;
    }

    /// <inheritdoc/>
    public void Track(nint address, long length)
    {
        ObjectDisposedException.ThrowIf(_uffd < 0, this);
        CheckRange(address, length);
        lock (_lock)
        {
            Userfaultfd.Register(_uffd, address, length,
                einvalHint: "synchronous write protection covers shmem (tmpfs, memfd), anonymous and hugetlbfs memory only");
            var t = new Tracked((ulong)address, (ulong)length);
            int at = _tracked.FindIndex(x => x.Start > t.Start);
            _tracked.Insert(at < 0 ? _tracked.Count : at, t);
            try
            {
                Protect((ulong)address, (ulong)length);
            }
            catch
            {
                Unregister(address, length);
                _tracked.Remove(t);
                throw;
            }
        }
    }

    /// <inheritdoc/>
    public void Untrack(nint address, long length)
    {
        if (_uffd < 0)
            return;
        lock (_lock)
        {
            Drain();
            _tracked.RemoveAll(t => t.Start == (ulong)address);
            Unregister(address, length); // also wakes any thread held in a fault of the range
        }
    }

    private void Unregister(nint address, long length) => Userfaultfd.Unregister(_uffd, address, length);

    /// <inheritdoc/>
    public int TakeWritten(nint address, long length, List<(long Offset, long Length)> written)
    {
        ObjectDisposedException.ThrowIf(_uffd < 0, this);
        ArgumentNullException.ThrowIfNull(written);
        lock (_lock)
        {
            if (Volatile.Read(ref _ctl->Error) is var err and < 0)
                throw HandlerStopped(err);
            Drain();
            Tracked? t = _tracked.Find(x => x.Start == (ulong)address);
            if (t is null)
                throw new ArgumentException($"[0x{address:x}, +{length}) is not a tracked range", nameof(address));
            if (t.All)
            {
                t.All = false;
                t.Pages.Clear();
                Protect(t.Start, t.Length);
                written.Add((0, (long)t.Length));
                return 1;
            }
            if (t.Pages.Count == 0)
                return 0;
            t.Pages.Sort();
            int runs = 0;
            for (int k = 0; k < t.Pages.Count;)
            {
                long first = t.Pages[k], next = first + PageSize;
                k++;
                while (k < t.Pages.Count && t.Pages[k] <= next)
                {
                    next = Math.Max(next, t.Pages[k] + PageSize);
                    k++;
                }
                // Protected again before the caller writes the run back: a store from here on faults and is logged anew.
                Protect(t.Start + (ulong)first, (ulong)(next - first));
                written.Add((first, next - first));
                runs++;
            }
            t.Pages.Clear();
            return runs;
        }
    }

    /// <summary>Moves the handler's ring into the tracked ranges (caller holds the lock).</summary>
    private void Drain()
    {
        if (Interlocked.Exchange(ref _ctl->Overflow, 0) != 0)
        {
            // Pages were unprotected and not logged: every range counts as fully written once.
            Interlocked.Increment(ref _overflows);
            foreach (Tracked t in _tracked)
                t.All = true;
        }
        ulong head = Volatile.Read(ref _ctl->Head), tail = _ctl->Tail;
        for (; tail < head; tail++)
        {
            ulong page = _ring[tail & (RingCapacity - 1)];
            Tracked? t = Find(page);
            if (t is not null && !t.All)
                t.Pages.Add((long)(page - t.Start));
        }
        Volatile.Write(ref _ctl->Tail, head);
    }

    private Tracked? Find(ulong address)
    {
        int lo = 0, hi = _tracked.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            Tracked t = _tracked[mid];
            if (address < t.Start)
                hi = mid - 1;
            else if (address >= t.Start + t.Length)
                lo = mid + 1;
            else
                return t;
        }
        return null;
    }

    private void Protect(ulong start, ulong length)
    {
        Interlocked.Increment(ref _protects);
        Userfaultfd.Protect(_uffd, start, length);
    }

    private static PmemException HandlerStopped(long err) =>
        new($"the write-fault handler thread stopped: {Libc.ErrnoText((int)-err)}", (int)-err);

    private static void CheckRange(nint address, long length)
    {
        if (address == 0 || address % PageSize != 0 || length <= 0 || length % PageSize != 0)
            throw new ArgumentException($"[0x{address:x}, +{length}) is not a page-aligned range");
    }

    /// <summary>Stops the handler thread, closes the userfaultfd (every tracked range is released, any thread held in
    /// a fault goes on) and frees the ring.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_uffd < 0)
                return;
            if (_thread != 0)
            {
                ulong one = 1;
                Libc.Write(_stopFd, &one, sizeof(ulong));
                Libc.PthreadJoin(_thread, null);
                _thread = 0;
            }
            Libc.Close(_uffd);
            Libc.Close(_stopFd);
            _uffd = _stopFd = -1;
            _tracked.Clear();
            if (_code != 0)
                ExecutablePage.Free(_code);
            NativeMemory.Free(_ring);
            NativeMemory.Free(_ctl);
            _code = 0;
            _ring = null;
            _ctl = null;
        }
    }
}
