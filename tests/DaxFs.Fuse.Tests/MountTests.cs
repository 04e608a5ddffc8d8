using System.Text;

namespace DaxFs.Fuse.Tests;

/// <summary>Real mounts (run as root in CI): the in-memory file system mounted on a temp directory, used through
/// System.IO and the coreutils, then unmounted.</summary>
[Collection("mount")]
public class MountTests
{
    [Fact]
    public void NegotiatesAndMountsWithTheRequestedOptions() => MountHarness.Run((mount, fs, dir) =>
    {
        Assert.True(mount.IsMounted);
        Assert.Equal(dir, mount.MountPoint);
        Assert.Equal(FuseMountMethod.Syscall, mount.Method); // root
        Assert.Equal(4, mount.WorkerCount);
        Assert.Equal(3, mount.ClonedDescriptors); // FUSE_DEV_IOC_CLONE worked for every extra worker
        var flags = mount.Connection.Flags;
        foreach (var wanted in new[] { FuseInitFlags.AsyncRead, FuseInitFlags.BigWrites, FuseInitFlags.DoReaddirplus,
                     FuseInitFlags.ParallelDirops, FuseInitFlags.ExportSupport, FuseInitFlags.MaxPages })
            Assert.True(flags.HasFlag(wanted), $"{wanted} not negotiated ({flags})");
        Assert.False(flags.HasFlag(FuseInitFlags.WritebackCache));
        Assert.Equal((1u << 20, (ushort)256), (mount.Connection.MaxWrite, mount.Connection.MaxPages));
        string[] line = MountHarness.MountLine(dir).Split(' ');
        Assert.Equal(("daxfs", "fuse.daxfs"), (line[0], line[2]));
        Assert.Contains("default_permissions", line[3], StringComparison.Ordinal);
        Assert.Contains("max_read=1048576", line[3], StringComparison.Ordinal);
        Assert.DoesNotContain("allow_other", line[3], StringComparison.Ordinal);
        Assert.True(fs.InitCalled);
    });

    [Fact]
    public void FilesDirectoriesAndLinksThroughTheKernel() => MountHarness.Run((mount, fs, dir) =>
    {
        // A 3 MiB file written in one go, read back through a new open (which drops the page cache).
        byte[] data = new byte[3 << 20];
        new Random(42).NextBytes(data);
        string big = Path.Combine(dir, "big.bin");
        File.WriteAllBytes(big, data);
        long segmentsBefore = fs.SegmentsServed;
        Assert.Equal(data, File.ReadAllBytes(big));
        Assert.True(fs.SegmentsServed - segmentsBefore >= 768, "reads were not served from page segments");
        Assert.Equal(data.Length, new FileInfo(big).Length);

        Directory.CreateDirectory(Path.Combine(dir, "a", "b"));
        File.WriteAllText(Path.Combine(dir, "a", "b", "note.txt"), "hello");
        File.Move(Path.Combine(dir, "a", "b", "note.txt"), Path.Combine(dir, "a", "moved.txt"));
        Assert.Equal("hello", File.ReadAllText(Path.Combine(dir, "a", "moved.txt")));
        Directory.Move(Path.Combine(dir, "a", "b"), Path.Combine(dir, "c"));
        MountHarness.Sh("mv", Path.Combine(dir, "c"), Path.Combine(dir, "d"));

        File.CreateSymbolicLink(Path.Combine(dir, "link"), "a/moved.txt");
        Assert.Equal("a/moved.txt", new FileInfo(Path.Combine(dir, "link")).LinkTarget);
        Assert.Equal("hello", File.ReadAllText(Path.Combine(dir, "link")));
        MountHarness.Sh("ln", "-s", "big.bin", Path.Combine(dir, "biglink"));
        MountHarness.Sh("ln", Path.Combine(dir, "a", "moved.txt"), Path.Combine(dir, "hard"));
        Assert.Equal("2", MountHarness.Sh("stat", "-c", "%h", Path.Combine(dir, "hard")).Trim());

        var names = Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(["a", "big.bin", "biglink", "d", "hard", "link"], names);
        string ls = MountHarness.Sh("ls", "-la", dir);
        Assert.Contains("biglink -> big.bin", ls, StringComparison.Ordinal);
        Assert.Contains(" .." + Environment.NewLine, ls, StringComparison.Ordinal);
        Assert.Equal("3145728 regular file 0 0", MountHarness.Sh("stat", "-c", "%s %F %u %g", big).Trim());
        Assert.Equal("hello", MountHarness.Sh("cat", Path.Combine(dir, "hard")));

        File.SetUnixFileMode(big, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal("600", MountHarness.Sh("stat", "-c", "%a", big).Trim());
        var when = new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(big, when);
        Assert.Equal(when, File.GetLastWriteTimeUtc(big));
        using (var stream = new FileStream(big, FileMode.Open))
            stream.SetLength(1000);
        Assert.Equal(data[..1000], File.ReadAllBytes(big));

        File.Delete(Path.Combine(dir, "hard"));
        Assert.Throws<IOException>(() => Directory.Delete(Path.Combine(dir, "a")));
        Directory.Delete(Path.Combine(dir, "a"), recursive: true);
        Assert.False(Directory.Exists(Path.Combine(dir, "a")));
        Assert.Contains("daxfs", MountHarness.Sh("df", dir), StringComparison.Ordinal);

        mount.Unmount();
        Assert.False(mount.IsMounted);
        Assert.False(MountHarness.IsMounted(dir));
        Assert.Equal(1, fs.DestroyCalls);
        Assert.Equal(0, mount.UnexpectedExceptions);
    });

    [Fact]
    public void XattrsFallocateSeekDataHoleAndCopyFileRange() => MountHarness.Run((mount, fs, dir) =>
    {
        string file = Path.Combine(dir, "sparse");
        File.WriteAllBytes(file, Enumerable.Repeat((byte)0xAB, 64 * 1024).ToArray());

        byte[] value = Encoding.UTF8.GetBytes("blue");
        TestLibc.Check(TestLibc.SetXattr(file, "user.color", value, (nuint)value.Length, 0), "setxattr");
        Assert.Equal(4, TestLibc.GetXattr(file, "user.color", null, 0));
        var buffer = new byte[16];
        Assert.Equal(4, TestLibc.GetXattr(file, "user.color", buffer, 16));
        Assert.Equal("blue", Encoding.UTF8.GetString(buffer, 0, 4));
        var list = new byte[64];
        int listed = (int)TestLibc.Check(TestLibc.ListXattr(file, list, 64), "listxattr");
        Assert.Equal("user.color\0", Encoding.UTF8.GetString(list, 0, listed));
        Assert.Equal(-1, TestLibc.GetXattr(file, "user.color", buffer, 2));
        Assert.Equal(34, TestLibc.Errno); // ERANGE
        TestLibc.Check(TestLibc.RemoveXattr(file, "user.color"), "removexattr");
        Assert.Equal(-1, TestLibc.GetXattr(file, "user.color", buffer, 16));
        Assert.Equal(61, TestLibc.Errno); // ENODATA
        byte[] largest = new byte[65536]; // XATTR_SIZE_MAX
        new Random(3).NextBytes(largest);
        TestLibc.Check(TestLibc.SetXattr(file, "user.big", largest, (nuint)largest.Length, 0), "setxattr 64 KiB");
        var back = new byte[65536];
        Assert.Equal(65536, TestLibc.GetXattr(file, "user.big", back, 65536));
        Assert.Equal(largest, back);

        int fd = TestLibc.Check(TestLibc.Open(file, TestLibc.O_RDWR, 0), "open");
        try
        {
            TestLibc.Check(TestLibc.Fallocate(fd, TestLibc.FALLOC_FL_PUNCH_HOLE | TestLibc.FALLOC_FL_KEEP_SIZE,
                16384, 16384), "fallocate punch");
            Assert.Equal(16384, TestLibc.Lseek(fd, 0, TestLibc.SEEK_HOLE));
            Assert.Equal(32768, TestLibc.Lseek(fd, 16384, TestLibc.SEEK_DATA));
            Assert.Equal(65536, TestLibc.Lseek(fd, 32768, TestLibc.SEEK_HOLE)); // the implicit hole at the end
            Assert.Equal(-1, TestLibc.Lseek(fd, 70000, TestLibc.SEEK_DATA));
            Assert.Equal(TestLibc.ENXIO, TestLibc.Errno);
            TestLibc.Check(TestLibc.Fallocate(fd, TestLibc.FALLOC_FL_ZERO_RANGE, 0, 4096), "fallocate zero");
            TestLibc.Check(TestLibc.Fallocate(fd, 0, 65536, 65536), "fallocate extend");
            Assert.Equal(131072, new FileInfo(file).Length);
        }
        finally
        {
            TestLibc.Close(fd);
        }
        byte[] content = File.ReadAllBytes(file);
        Assert.All(content[..4096], b => Assert.Equal(0, b));
        Assert.All(content[4096..16384], b => Assert.Equal(0xAB, b));
        Assert.All(content[16384..32768], b => Assert.Equal(0, b));
        Assert.All(content[32768..65536], b => Assert.Equal(0xAB, b));
        Assert.All(content[65536..], b => Assert.Equal(0, b));

        string copy = Path.Combine(dir, "copy");
        File.WriteAllBytes(copy, []);
        CopyRange(file, copy, 4096, 8192);
        Assert.Equal(content[4096..12288], File.ReadAllBytes(copy));
    });

    [Fact]
    public void OwnershipFollowsTheCallerAndAllowOtherOnlyWhenAsked()
    {
        MountHarness.Run((mount, fs, dir) =>
        {
            var (exit, _, error) = MountHarness.Run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "touch", Path.Combine(dir, "x"));
            Assert.NotEqual(0, exit); // without allow_other only the mounting user (root) gets in
            Assert.Contains("Permission denied", error, StringComparison.Ordinal);
        });
        MountHarness.Run((mount, fs, dir) =>
        {
            Assert.Contains("allow_other", MountHarness.MountLine(dir), StringComparison.Ordinal);
            File.WriteAllText(Path.Combine(dir, "roots"), "root's");
            MountHarness.Sh("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "mkdir",
                Path.Combine(dir, "mine"));
            MountHarness.Sh("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "touch",
                Path.Combine(dir, "mine", "f"));
            Assert.Equal("65534 65534", MountHarness.Sh("stat", "-c", "%u %g", Path.Combine(dir, "mine", "f")).Trim());
            Assert.Equal("65534 65534", MountHarness.Sh("stat", "-c", "%u %g", Path.Combine(dir, "mine")).Trim());
            // default_permissions: the kernel checks the mode bits (0644, owned by root) before asking us.
            var (exit, _, error) = MountHarness.Run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "sh", "-c", $"echo x > {Path.Combine(dir, "roots")}");
            Assert.NotEqual(0, exit);
            Assert.Contains("Permission denied", error, StringComparison.Ordinal);
            Assert.Equal("root's", File.ReadAllText(Path.Combine(dir, "roots")));
        }, new FuseMountOptions { AllowOther = true, Log = TestLog.Writer });
    }

    [Fact]
    public void MountsThroughFusermount3()
    {
        Assert.True(File.Exists("/usr/bin/fusermount3") || File.Exists("/bin/fusermount3"),
            "fusermount3 is not installed: the test script must install Debian's fuse3 package");
        MountThroughFusermount3();
    }

    private static void MountThroughFusermount3() => MountHarness.Run((mount, fs, dir) =>
    {
        Assert.Equal(FuseMountMethod.Fusermount, mount.Method);
        Assert.True(mount.ClonedDescriptors > 0);
        File.WriteAllText(Path.Combine(dir, "f"), "via fusermount3");
        Assert.Equal("via fusermount3", File.ReadAllText(Path.Combine(dir, "f")));
        Assert.Equal("fuse.daxfs", MountHarness.MountLine(dir).Split(' ')[2]);
        mount.Unmount();
        Assert.False(MountHarness.IsMounted(dir));
    }, new FuseMountOptions { Method = FuseMountMethod.Fusermount, Log = TestLog.Writer });

    [Fact]
    public void ReadsAndWritesOfDifferentFilesRunInParallel() => MountHarness.Run((mount, fs, dir) =>
    {
        string a = Path.Combine(dir, "a"), b = Path.Combine(dir, "b");
        File.WriteAllBytes(a, new byte[8192]);
        File.WriteAllBytes(b, new byte[8192]);
        // Each request waits until the other file's request is also being served: with requests served one at a
        // time the barrier would time out and the operation fail.
        using var reads = new Barrier(2);
        fs.BeforeRead = _ => Assert.True(reads.SignalAndWait(TimeSpan.FromSeconds(10)), "reads were serialized");
        var readTasks = new[] { a, b }.Select(p => Task.Run(() => File.ReadAllBytes(p))).ToArray();
        Assert.True(Task.WaitAll(readTasks, TimeSpan.FromSeconds(30)));
        fs.BeforeRead = null;
        using var writes = new Barrier(2);
        fs.BeforeWrite = _ => Assert.True(writes.SignalAndWait(TimeSpan.FromSeconds(10)), "writes were serialized");
        var writeTasks = new[] { a, b }.Select(p => Task.Run(() => File.WriteAllBytes(p, [1, 2, 3]))).ToArray();
        Assert.True(Task.WaitAll(writeTasks, TimeSpan.FromSeconds(30)));
        fs.BeforeWrite = null;
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(a));
        Assert.Equal(0, mount.UnexpectedExceptions);
    });

    [Fact]
    public void ConcurrentWritersAndReadersSeeTheirOwnData() => MountHarness.Run((mount, fs, dir) =>
    {
        var tasks = Enumerable.Range(0, 6).Select(i => Task.Run(() =>
        {
            byte[] data = new byte[(2 << 20) + i * 4099];
            new Random(i).NextBytes(data);
            string path = Path.Combine(dir, $"f{i}");
            for (int round = 0; round < 2; round++)
            {
                File.WriteAllBytes(path, data);
                Assert.Equal(data, File.ReadAllBytes(path));
            }
        })).ToArray();
        Task.WaitAll(tasks);
        Assert.Equal(6, Directory.GetFiles(dir).Length);
    });

    [Fact]
    public void AnExternalUnmountEndsTheSession() => MountHarness.Run((mount, fs, dir) =>
    {
        File.WriteAllText(Path.Combine(dir, "f"), "x");
        MountHarness.Sh("umount", dir);
        Assert.True(mount.WaitForUnmount(TimeSpan.FromSeconds(10)));
        Assert.False(mount.IsMounted);
        Assert.Equal(1, fs.DestroyCalls);
        mount.Unmount(); // nothing left to do, and no error
        Assert.False(MountHarness.IsMounted(dir));
    });

    [Fact]
    public void ABusyMountIsDetachedLazilyAfterTheTimeout() => MountHarness.Run((mount, fs, dir) =>
    {
        string file = Path.Combine(dir, "held");
        File.WriteAllText(file, "open while unmounting");
        using var held = new FileStream(file, FileMode.Open, FileAccess.Read);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        mount.Unmount(); // EBUSY while the file is open: retried for UnmountTimeout, then MNT_DETACH
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(10));
        Assert.False(MountHarness.IsMounted(dir));
        Assert.False(mount.IsMounted);
        Assert.Equal(1, fs.DestroyCalls);
        var e = Assert.ThrowsAny<IOException>(() => held.ReadByte()); // the connection is gone
        Assert.Contains("not connected", e.Message, StringComparison.OrdinalIgnoreCase);
    }, new FuseMountOptions { UnmountTimeout = TimeSpan.FromMilliseconds(500), Log = TestLog.Writer });

    [Fact]
    public void ReadOnlyMountRefusesWrites() => MountHarness.Run((mount, fs, dir) =>
    {
        Assert.StartsWith("ro,", MountHarness.MountLine(dir).Split(' ')[3], StringComparison.Ordinal);
        var (exit, _, error) = MountHarness.Run("touch", Path.Combine(dir, "f"));
        Assert.NotEqual(0, exit);
        Assert.Contains("Read-only file system", error, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }, new FuseMountOptions { ReadOnly = true, Log = TestLog.Writer });

    [Fact]
    public void MountOnAMissingDirectoryFailsWithAClearMessage()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"daxfs-missing-{Guid.NewGuid():N}");
        using var fs = new MemoryFileSystem();
        var e = Assert.Throws<FuseMountException>(() => FuseMount.Mount(missing, fs));
        Assert.Equal($"cannot mount {missing}: no such directory", e.Message);
    }

    private static unsafe void CopyRange(string from, string to, long offset, int length)
    {
        int fdIn = TestLibc.Check(TestLibc.Open(from, TestLibc.O_RDONLY, 0), "open source");
        int fdOut = TestLibc.Check(TestLibc.Open(to, TestLibc.O_RDWR, 0), "open target");
        try
        {
            long offIn = offset, offOut = 0;
            Assert.Equal(length, (int)TestLibc.Check(
                TestLibc.CopyFileRange(fdIn, &offIn, fdOut, &offOut, (nuint)length, 0), "copy_file_range"));
        }
        finally
        {
            TestLibc.Close(fdIn);
            TestLibc.Close(fdOut);
        }
    }
}
