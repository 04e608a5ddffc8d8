using System.Runtime.InteropServices;
using DaxFs.Fuse.Interop;

namespace DaxFs.Fuse;

/// <summary>FuseMount -- a mounted FUSE session: the kernel mount, N worker threads each on its own cloned
/// /dev/fuse descriptor, and the dispatcher that calls the <see cref="IFuseFileSystem"/>. Made by
/// <see cref="Mount"/>; ended by <see cref="Unmount"/>/<see cref="Dispose"/>, by an external umount, or by the
/// signals <see cref="HandleTerminationSignals"/> installs.</summary>
public sealed class FuseMount : IDisposable
{
    private readonly FuseMountOptions _options;
    private readonly FuseDispatcher _dispatcher;
    private readonly FuseLog _log;
    private readonly List<FuseWorker> _workers = [];
    private readonly List<int> _descriptors = [];
    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _ended = new();
    private volatile bool _stopping;
    private volatile bool _connectionEnded;
    private bool _kernelMounted;
    private bool _tornDown;
    private int _liveWorkers;
    private int _pokeFd = -1;
    private int _pendingPokes;

    private FuseMount(string mountPoint, FuseMountOptions options, FuseDispatcher dispatcher, FuseLog log,
        int sessionFd, FuseMountMethod method)
    {
        MountPoint = mountPoint;
        Method = method;
        _options = options;
        _dispatcher = dispatcher;
        _log = log;
        _descriptors.Add(sessionFd);
        _kernelMounted = true;
    }

    /// <summary>The absolute path the volume is mounted on.</summary>
    public string MountPoint { get; }

    /// <summary>How the mount was made: <see cref="FuseMountMethod.Syscall"/> or
    /// <see cref="FuseMountMethod.Fusermount"/>.</summary>
    public FuseMountMethod Method { get; }

    /// <summary>What INIT negotiated with the kernel.</summary>
    public FuseConnectionInfo Connection => _dispatcher.Connection ?? default;

    /// <summary>Worker threads serving requests.</summary>
    public int WorkerCount => _workers.Count;

    /// <summary>Workers with a descriptor of their own (FUSE_DEV_IOC_CLONE); the others share the session's.</summary>
    public int ClonedDescriptors => _descriptors.Count - 1;

    /// <summary>True until the session has ended (unmounted by anyone, or the connection aborted).</summary>
    public bool IsMounted => !_ended.IsSet;

    /// <summary>Requests refused as malformed since the mount.</summary>
    public long MalformedRequests => _log.MalformedRequests;

    /// <summary>Exceptions other than DaxFsException thrown by the file system (answered EIO).</summary>
    public long UnexpectedExceptions => _log.UnexpectedExceptions;

    /// <summary>INTERRUPT requests received.</summary>
    public long InterruptsReceived => _dispatcher.Interrupts.Received;

    /// <summary>Mounts <paramref name="fileSystem"/> on the directory <paramref name="mountPoint"/> and returns
    /// once the kernel's INIT has been answered. A stale mount left there by a killed daemon is detached first.
    /// Throws <see cref="FuseMountException"/> with a one-line reason when no mount can be made.</summary>
    public static FuseMount Mount(string mountPoint, IFuseFileSystem fileSystem, FuseMountOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(mountPoint);
        ArgumentNullException.ThrowIfNull(fileSystem);
        options ??= new FuseMountOptions();
        options.Validate();
        string path = Path.TrimEndingDirectorySeparator(Path.GetFullPath(mountPoint));
        var log = new FuseLog(options.Log ?? Console.Error);
        FuseMounter.RecoverStale(path, log);
        if (!Directory.Exists(path))
            throw new FuseMountException($"cannot mount {path}: no such directory");
        var dispatcher = new FuseDispatcher(fileSystem, options, log);
        var (fd, method) = FuseMounter.Mount(path, options, log);
        var mount = new FuseMount(path, options, dispatcher, log, fd, method);
        try
        {
            mount.StartWorkers();
            mount.AwaitInit();
        }
        catch
        {
            mount.Dispose();
            throw;
        }
        return mount;
    }

    /// <summary>Whether <paramref name="mountPoint"/> is a FUSE mount whose daemon is gone (every access answers
    /// ENOTCONN), as a daemon killed with SIGKILL leaves it. <see cref="Mount"/> detaches such a mount before
    /// mounting in its place.</summary>
    public static bool IsStale(string mountPoint)
    {
        ArgumentException.ThrowIfNullOrEmpty(mountPoint);
        return Libc.Access(mountPoint, Libc.F_OK) != 0 && Marshal.GetLastPInvokeError() == Libc.ENOTCONN;
    }

    /// <summary>Unmounts (a plain unmount, retried while busy for <see cref="FuseMountOptions.UnmountTimeout"/>,
    /// then a lazy one), stops the workers and waits for them, calls <see cref="IFuseFileSystem.Destroy"/> once
    /// and closes the descriptors. Safe to call more than once and from any thread but a worker.</summary>
    public void Unmount()
    {
        bool unmountKernel;
        lock (_gate)
        {
            unmountKernel = _kernelMounted;
            _kernelMounted = false;
        }
        FuseMountException? failure = null;
        if (unmountKernel)
        {
            try
            {
                // A connection that ended by itself was unmounted by someone else, or aborted (then stale).
                if (_connectionEnded)
                    FuseMounter.RecoverStale(MountPoint, _log);
                else
                    FuseMounter.Unmount(MountPoint, Method, _options.UnmountTimeout, _log, OpenPokeDescriptor);
            }
            catch (FuseMountException e)
            {
                failure = e;
            }
        }
        Teardown();
        if (failure is not null)
            throw failure;
    }

    /// <summary>Blocks until the session has ended (for a foreground daemon).</summary>
    public void WaitForUnmount() => _ended.Wait();

    /// <summary>Blocks until the session has ended or <paramref name="timeout"/> passes; true if it ended.</summary>
    public bool WaitForUnmount(TimeSpan timeout) => _ended.Wait(timeout);

    /// <summary>Makes SIGINT and SIGTERM unmount cleanly (instead of killing the process); dispose the result to
    /// restore the default behaviour. <see cref="WaitForUnmount()"/> returns once the unmount is done.</summary>
    public IDisposable HandleTerminationSignals()
    {
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            _log.Write($"{context.Signal}: unmounting {MountPoint}");
            ThreadPool.QueueUserWorkItem(_ => UnmountQuietly());
        }
        return new SignalRegistrations(
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
        ]);
    }

    /// <summary>Unmounts (see <see cref="Unmount"/>); a failure is logged, not thrown.</summary>
    public void Dispose() => UnmountQuietly();

    private void UnmountQuietly()
    {
        try
        {
            Unmount();
        }
        catch (FuseMountException e)
        {
            _log.Write(e.Message);
        }
    }

    private void StartWorkers()
    {
        int sessionFd = _descriptors[0];
        for (int i = 0; i < _options.Threads; i++)
        {
            int fd = sessionFd;
            if (i > 0)
            {
                int clone = FuseMounter.Clone(sessionFd, out string? error);
                if (clone >= 0)
                {
                    fd = clone;
                    _descriptors.Add(clone);
                }
                else
                {
                    // Sharing the session descriptor still works; only the parallelism of replies suffers.
                    _log.Once("clone", $"worker descriptors share the session's ({error})");
                }
            }
            _workers.Add(new FuseWorker(i, fd, _dispatcher, () => _stopping, OnWorkerExited));
        }
        _liveWorkers = _workers.Count;
        foreach (var worker in _workers)
            worker.Start();
    }

    private void AwaitInit()
    {
        int which = WaitHandle.WaitAny([_dispatcher.InitCompleted.WaitHandle, _ended.WaitHandle],
            _options.InitTimeout);
        if (which == WaitHandle.WaitTimeout)
            throw new FuseMountException(
                $"mounted {MountPoint}, but the kernel sent no INIT within {_options.InitTimeout.TotalSeconds} s");
        if (_dispatcher.InitFailure is { } failure)
            throw new FuseMountException($"mounted {MountPoint}, but INIT failed: {failure}");
        if (_dispatcher.Connection is null)
            throw new FuseMountException($"mounted {MountPoint}, but the connection ended before INIT");
    }

    private void OnWorkerExited(FuseWorker worker, string why)
    {
        if (why is not ("stopped" or "unmounted" or "destroyed"))
        {
            _log.Write($"{worker.Thread.Name} stopped: {why}");
            // A broken session is ended as a whole: unmount, which wakes and stops the other workers.
            if (!_stopping)
                ThreadPool.QueueUserWorkItem(_ => UnmountQuietly());
        }
        if (why is "unmounted" or "destroyed")
            _connectionEnded = true;
        // One worker's end is the session's: each other worker stops after its next request (Teardown wakes them).
        _stopping = true;
        if (Interlocked.Decrement(ref _liveWorkers) == 0)
            ThreadPool.QueueUserWorkItem(_ => Teardown());
    }

    private void Teardown()
    {
        bool first;
        lock (_gate)
        {
            first = !_tornDown;
            _tornDown = true;
        }
        if (!first)
        {
            _ended.Wait(); // another thread is tearing down: callers must see a finished session
            return;
        }
        _stopping = true;
        foreach (var worker in _workers)
        {
            if (worker.Thread == Thread.CurrentThread)
                continue;
            // Workers blocked in read(2) wake on the connection's end (ENODEV) or on a request; a connection that
            // lingers (lazily detached, files still open) gets STATFS requests from here, one per idle worker.
            while (!worker.Thread.Join(WakeInterval))
                WakeIdleWorkers();
        }
        _dispatcher.DestroyOnce();
        // Why closing ends a lazily detached mount: the last descriptor of a connection aborts it (and a wake-up
        // request no worker took fails with ENOTCONN).
        foreach (int fd in _descriptors)
            Libc.Close(fd);
        _descriptors.Clear();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (Volatile.Read(ref _pendingPokes) > 0 && sw.Elapsed < TimeSpan.FromSeconds(5))
            Thread.Sleep(10);
        if (_pokeFd >= 0)
            Libc.Close(_pokeFd);
        _pokeFd = -1;
        _ended.Set();
    }

    private static readonly TimeSpan WakeInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Before a lazy detach: a descriptor on the mount's root (O_PATH, so no request is sent), through which
    /// <see cref="WakeIdleWorkers"/> still reaches the connection once the mount point no longer leads to it.</summary>
    private void OpenPokeDescriptor()
    {
        if (_pokeFd < 0)
            _pokeFd = Libc.Open(MountPoint, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
    }

    /// <summary>Sends one STATFS request per worker still blocked in read(2), each from a thread of its own (the
    /// call waits for the reply): the worker that takes it answers, sees the stop and exits.</summary>
    private void WakeIdleWorkers()
    {
        int live = _workers.Count(w => !w.HasExited && w.Thread != Thread.CurrentThread);
        while (Volatile.Read(ref _pendingPokes) < live)
        {
            Interlocked.Increment(ref _pendingPokes);
            new Thread(Poke) { IsBackground = true, Name = "daxfs-fuse-wake" }.Start();
        }
    }

    private unsafe void Poke()
    {
        byte* scratch = stackalloc byte[256];
        int fd = _pokeFd;
        // The result does not matter: an answered request means a worker woke; ENOTCONN means the connection ended.
        _ = fd >= 0 ? Libc.FStatFs(fd, scratch) : Libc.StatFs(MountPoint, scratch);
        Interlocked.Decrement(ref _pendingPokes);
    }

    /// <summary>SignalRegistrations -- the SIGINT/SIGTERM handlers, removed together.</summary>
    private sealed class SignalRegistrations(PosixSignalRegistration[] registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (var registration in registrations)
                registration.Dispose();
        }
    }
}
