using System.Diagnostics;
using System.Runtime.InteropServices;
using DaxFs.Fuse.Interop;

namespace DaxFs.Fuse;

/// <summary>Fusermount -- mounting through the setuid helper fusermount3: it opens /dev/fuse, mounts, and passes
/// the descriptor back over the unix socket named by _FUSE_COMMFD (SCM_RIGHTS).</summary>
internal static unsafe class Fusermount
{
    private const string Helper = "fusermount3";
    private static readonly TimeSpan HelperTimeout = TimeSpan.FromSeconds(15);

    /// <summary>The helper's full path, or null if it is not installed.</summary>
    public static string? Locate()
    {
        var directories = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Concat(["/usr/bin", "/bin", "/usr/local/bin"]);
        return directories.Where(d => d.Length > 0).Select(d => Path.Combine(d, Helper)).FirstOrDefault(File.Exists);
    }

    /// <summary>Mounts <paramref name="path"/> with <paramref name="options"/>; returns the /dev/fuse descriptor.</summary>
    public static int Mount(string helper, string path, string options)
    {
        int* pair = stackalloc int[2];
        if (Libc.SocketPair(Libc.AF_UNIX, Libc.SOCK_STREAM, 0, pair) != 0)
            throw new FuseMountException($"socketpair: {Libc.Describe(Marshal.GetLastPInvokeError())}");
        int ours = pair[0], theirs = pair[1];
        try
        {
            // Our end must not leak into the helper (its EOF tells us the helper is done); theirs must be inherited.
            Libc.Fcntl(ours, Libc.F_SETFD, Libc.FD_CLOEXEC);
            var start = new ProcessStartInfo(helper)
            {
                UseShellExecute = false,
                RedirectStandardError = true,
            };
            foreach (string argument in new[] { "-o", options, "--", path })
                start.ArgumentList.Add(argument);
            start.Environment["_FUSE_COMMFD"] = theirs.ToString(System.Globalization.CultureInfo.InvariantCulture);
            using var process = Process.Start(start)
                ?? throw new FuseMountException($"{helper} could not be started");
            var stderr = process.StandardError.ReadToEndAsync();
            Libc.Close(theirs);
            theirs = -1;
            int fd = ReceiveDescriptor(ours);
            if (!process.WaitForExit(HelperTimeout))
            {
                process.Kill();
                throw new FuseMountException($"{helper} did not finish within {HelperTimeout.TotalSeconds} s");
            }
            string message = stderr.Result.Trim().ReplaceLineEndings(" ");
            if (fd < 0)
                throw new FuseMountException($"{helper} failed (exit {process.ExitCode}): {message}");
            return fd;
        }
        finally
        {
            Libc.Close(ours);
            if (theirs >= 0)
                Libc.Close(theirs);
        }
    }

    /// <summary>Unmounts with "fusermount3 -u" (then "-u -z" if busy); false if it was not mounted.</summary>
    public static bool Unmount(string path, TimeSpan timeout, FuseLog log, Action? beforeDetach = null)
    {
        string helper = Locate() ?? throw new FuseMountException(
            $"cannot unmount {path}: fusermount3 is not on PATH and this process is not root");
        var deadline = DateTime.UtcNow + timeout;
        string error;
        do
        {
            (int exit, error) = Run(helper, "-u", "-q", "--", path);
            if (exit == 0)
                return true;
            if (error.Contains("not mounted", StringComparison.OrdinalIgnoreCase) ||
                error.Contains("not found in", StringComparison.OrdinalIgnoreCase))
                return false;
            Thread.Sleep(50);
        }
        while (DateTime.UtcNow < deadline);
        log.Write($"{path} stays busy ({error}); detaching it (lazy unmount)");
        beforeDetach?.Invoke();
        (int lazyExit, string lazyError) = Run(helper, "-u", "-z", "-q", "--", path);
        if (lazyExit != 0)
            throw new FuseMountException($"cannot unmount {path}: {helper} -u -z: {lazyError}");
        return true;
    }

    private static (int Exit, string Error) Run(string helper, params string[] arguments)
    {
        var start = new ProcessStartInfo(helper, arguments)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start) ?? throw new FuseMountException($"{helper} could not be started");
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, error.Trim().ReplaceLineEndings(" "));
    }

    /// <summary>Waits for the helper's message and takes the descriptor from its SCM_RIGHTS control data; -1 if
    /// the helper closed the socket without sending one (it failed).</summary>
    private static int ReceiveDescriptor(int socket)
    {
        var poll = new Libc.PollFd { Fd = socket, Events = Libc.POLLIN };
        if (Libc.Poll(&poll, 1, (int)HelperTimeout.TotalMilliseconds) <= 0)
            return -1;
        byte data;
        var iov = new FuseIoVec((nint)(&data), 1);
        // CMSG_SPACE(sizeof(int)) = 16-byte header + 4 bytes of data, aligned to 8.
        const int ControlSize = 24;
        byte* control = stackalloc byte[ControlSize];
        new Span<byte>(control, ControlSize).Clear();
        var message = new Libc.MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = ControlSize };
        nint received;
        do
        {
            received = Libc.RecvMsg(socket, &message, 0);
        }
        while (received < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR);
        if (received <= 0 || message.ControlLen < (nuint)sizeof(Libc.CMsgHdr) + sizeof(int))
            return -1;
        var header = (Libc.CMsgHdr*)control;
        if (header->Level != Libc.SOL_SOCKET || header->Type != Libc.SCM_RIGHTS)
            return -1;
        return *(int*)(control + sizeof(Libc.CMsgHdr));
    }
}
