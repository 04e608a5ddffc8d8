using System.Runtime.InteropServices;
using DaxFs.Fuse.Interop;

namespace DaxFs.Fuse;

/// <summary>FuseWorker -- one thread serving requests from one /dev/fuse descriptor (the session's, or a clone
/// made with FUSE_DEV_IOC_CLONE): read a request into its own buffer, dispatch, reply with writev. The read blocks:
/// the kernel queues blocked readers of a connection exclusively and wakes one idle worker per request (poll would
/// wake them all, and all but one would find nothing to read). A worker notices a stop after its next request;
/// <see cref="FuseMount"/> sends requests of its own (STATFS) to wake idle workers when it stops while the
/// connection lingers, and an ended connection (unmount, abort) wakes them all with ENODEV.</summary>
internal sealed unsafe class FuseWorker
{
    private const int PollIntervalMs = 200;
    private volatile bool _exited;
    private readonly int _fd;
    private readonly FuseDispatcher _dispatcher;
    private readonly Func<bool> _stopping;
    private readonly Action<FuseWorker, string> _exitedCallback;
    private readonly Thread _thread;

    public FuseWorker(int index, int fd, FuseDispatcher dispatcher, Func<bool> stopping,
        Action<FuseWorker, string> exited)
    {
        _fd = fd;
        _dispatcher = dispatcher;
        _stopping = stopping;
        _exitedCallback = exited;
        // Why background: a daemon whose Main returns without unmounting must still exit.
        _thread = new Thread(Run) { IsBackground = true, Name = $"daxfs-fuse-{index}" };
    }

    public int Descriptor => _fd;

    public Thread Thread => _thread;

    /// <summary>True once the worker's loop has ended (set before the exit callback runs).</summary>
    public bool HasExited => _exited;

    public void Start() => _thread.Start();

    private void Run()
    {
        string why = "stopped";
        int size = _dispatcher.RequestBufferSize;
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)size, 4096);
        var state = new FuseWorkerState(_dispatcher.MaxReplyPayload, new DeviceChannel(_fd));
        try
        {
            why = Loop(buffer, size, state);
        }
        catch (Exception e)
        {
            // The dispatcher catches everything a request can cause; this is a bug in the session itself.
            _dispatcher.Log.Write($"worker {_thread.Name} failed: {e}");
            why = $"failed: {e.Message}";
        }
        finally
        {
            state.Dispose();
            NativeMemory.AlignedFree(buffer);
            _exited = true;
            _exitedCallback(this, why);
        }
    }

    private string Loop(byte* buffer, int size, FuseWorkerState state)
    {
        while (!_stopping())
        {
            nint n = Libc.Read(_fd, buffer, (nuint)size);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                switch (errno)
                {
                    case Libc.EAGAIN: // a descriptor someone made non-blocking: wait for a request, then read
                        WaitReadable();
                        continue;
                    case Libc.EINTR:
                    case Libc.ENOENT: // the request was interrupted before it could be read: take the next one
                        continue;
                    case Libc.ENODEV: // unmounted (or the connection was aborted)
                    case Libc.ECONNABORTED:
                        return "unmounted";
                    default:
                        return $"reading /dev/fuse failed: {Libc.Describe(errno)}";
                }
            }
            if (_dispatcher.Dispatch(new ReadOnlySpan<byte>(buffer, (int)n), state) == FuseDispatchResult.Destroyed)
                return "destroyed";
        }
        return "stopped";
    }

    private void WaitReadable()
    {
        var poll = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
        // An error or hang-up makes the next read report it (ENODEV), so poll's result needs no inspection.
        Libc.Poll(&poll, 1, PollIntervalMs);
    }

    /// <summary>DeviceChannel -- replies written to /dev/fuse with one writev each.</summary>
    private sealed class DeviceChannel(int fd) : IFuseReplyChannel
    {
        public int Send(FuseIoVec* iov, int count)
        {
            while (true)
            {
                if (Libc.WriteV(fd, iov, count) >= 0)
                    return 0;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR)
                    return errno; // ENOENT: the request was interrupted and is no longer awaited; not an error
            }
        }
    }
}
