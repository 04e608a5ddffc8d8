using System.Diagnostics;
using System.Runtime.InteropServices;

namespace DaxFs.Tests.Support;

/// <summary>SyscallCounter -- counts the system calls the calling thread makes: a perf counter on the
/// raw_syscalls:sys_enter tracepoint, opened for this thread only (perf_event_open; root, tracefs mounted here if
/// it is not). Reading the count is itself one system call, which <see cref="Since"/> leaves out.</summary>
internal sealed unsafe class SyscallCounter : IDisposable
{
    private const long SYS_perf_event_open = 298; // x86-64
    private const uint PERF_TYPE_TRACEPOINT = 2;
    private const string IdFile = "/sys/kernel/tracing/events/raw_syscalls/sys_enter/id";
    private readonly int _fd;
    private readonly int _thread;

    [StructLayout(LayoutKind.Sequential)]
    private struct PerfEventAttr
    {
        public uint Type, Size;
        public ulong Config, SamplePeriod, SampleType, ReadFormat, Flags;
        public uint WakeupEvents, BpType;
        public ulong Config1;
    }

    public SyscallCounter()
    {
        if (!File.Exists(IdFile))
        {
            using var p = Process.Start("mount", "-t tracefs nodev /sys/kernel/tracing")!;
            p.WaitForExit();
        }
        ulong id = ulong.Parse(File.ReadAllText(IdFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var attr = new PerfEventAttr { Type = PERF_TYPE_TRACEPOINT, Size = (uint)sizeof(PerfEventAttr), Config = id };
        long fd = Syscall(SYS_perf_event_open, (long)&attr, 0 /* this thread */, -1 /* any CPU */, -1, 0);
        if (fd < 0)
            throw new InvalidOperationException($"perf_event_open(raw_syscalls:sys_enter) failed: errno {Marshal.GetLastPInvokeError()}");
        _fd = (int)fd;
        _thread = Environment.CurrentManagedThreadId;
    }

    /// <summary>System calls this thread has made since the counter opened (the read for this answer included).</summary>
    public long Count
    {
        get
        {
            if (Environment.CurrentManagedThreadId != _thread)
                throw new InvalidOperationException("the counter counts the thread that opened it");
            ulong value;
            if (Read(_fd, &value, sizeof(ulong)) != sizeof(ulong))
                throw new InvalidOperationException($"reading the perf counter failed: errno {Marshal.GetLastPInvokeError()}");
            return (long)value;
        }
    }

    /// <summary>System calls made since <paramref name="before"/> (a <see cref="Count"/>), not counting the read that
    /// answers.</summary>
    public long Since(long before) => Count - before - 1;

    public void Dispose() => Close(_fd);

    [DllImport("libc.so.6", EntryPoint = "syscall", SetLastError = true)]
    private static extern long Syscall(long number, long a1, long a2, long a3, long a4, long a5);

    [DllImport("libc.so.6", EntryPoint = "read", SetLastError = true)]
    private static extern nint Read(int fd, void* buf, nint count);

    [DllImport("libc.so.6", EntryPoint = "close")]
    private static extern int Close(int fd);
}
