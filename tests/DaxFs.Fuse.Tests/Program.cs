namespace DaxFs.Fuse.Tests;

/// <summary>Program -- run as "dotnet DaxFs.Fuse.Tests.dll daemon MOUNTPOINT [--fusermount]", the test assembly is
/// a foreground FUSE daemon serving a MemoryFileSystem until SIGINT/SIGTERM or an external unmount; the signal
/// and crash-recovery tests start it as a child process. Under the test runner this Main is not used.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length < 2 || args[0] != "daemon")
        {
            Console.Error.WriteLine("usage: DaxFs.Fuse.Tests daemon MOUNTPOINT [--fusermount]");
            return 2;
        }
        var options = new FuseMountOptions
        {
            Method = args.Contains("--fusermount") ? FuseMountMethod.Fusermount : FuseMountMethod.Auto,
        };
        using var fs = new MemoryFileSystem();
        try
        {
            using var mount = FuseMount.Mount(args[1], fs, options);
            using var signals = mount.HandleTerminationSignals();
            Console.WriteLine($"mounted {mount.MountPoint} threads={mount.WorkerCount} " +
                $"clones={mount.ClonedDescriptors} flags={mount.Connection.Flags}");
            mount.WaitForUnmount();
            Console.WriteLine($"unmounted destroy={fs.DestroyCalls}");
            return 0;
        }
        catch (FuseMountException e)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }
    }
}
