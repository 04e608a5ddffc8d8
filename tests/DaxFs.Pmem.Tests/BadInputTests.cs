using DaxFs.Pmem;
using Xunit;

namespace DaxFs.Pmem.Tests;

/// <summary>Bad arguments, paths and devices give a clear exception, never a crash.</summary>
public class BadInputTests
{
    public static TheoryData<long, long> BadRanges => new()
    {
        { -1, 10 }, { 0, -1 }, { long.MinValue, 1 }, { 10, long.MaxValue }, { long.MaxValue, 10 },
        { 4096, 1 }, { 4000, 97 }, { 4097, 0 },
    };

    [Theory]
    [MemberData(nameof(BadRanges))]
    public void OutOfDeviceRangesAreRefused(long offset, long length)
    {
        using var dev = Env.EmulatedMemory(4096);
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.Flush(offset, length));
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.Invalidate(offset, length));
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.Persist(offset, length));
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.Fill(offset, length, 0));
        if (length is >= 0 and <= int.MaxValue)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => dev.GetSpan(offset, (int)length).Length);
            Assert.Throws<ArgumentOutOfRangeException>(() => dev.Copy(offset, new byte[length]));
            Assert.Throws<ArgumentOutOfRangeException>(() => dev.Read(offset, new byte[length]));
        }
    }

    [Fact]
    public void RangeEndingExactlyAtTheEndIsFine()
    {
        using var dev = Env.EmulatedMemory(4096);
        dev.CopyPersist(4000, new byte[96]);
        dev.Persist(4096, 0);
        Assert.Equal(96, dev.GetSpan(4000, 96).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.ReadUInt64(4089));
        Assert.Throws<ArgumentOutOfRangeException>(() => dev.WriteUInt64(4090, 1));
    }

    [Fact]
    public void MissingPathIsAClearError()
    {
        var ex = Assert.Throws<PmemException>(() => PmemDevice.Open("/nonexistent/daxfs/volume", Env.With()));
        Assert.Equal(2, ex.Errno);
        Assert.Contains("ENOENT", ex.Message);
        Assert.Contains("/nonexistent/daxfs/volume", ex.Message);
    }

    [Fact]
    public void CreateReportsTheSpaceReservedInSteps()
    {
        using var dir = ScratchDir.Tmpfs();
        var seen = new List<double>();
        var progress = new Sync(seen.Add);
        using (var dev = PmemDevice.Create(dir.File("p"), (600L << 20) + 4096, Env.With() with { CreateProgress = progress }))
            Assert.Equal((600L << 20) + 4096, dev.Length);
        Assert.Equal(3, seen.Count); // 256 MiB steps
        Assert.True(seen.SequenceEqual(seen.Order()), string.Join(", ", seen));
        Assert.Equal(1.0, seen[^1]);
    }

    private sealed class Sync(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }

    [Fact]
    public void ZeroLengthDeviceIsAClearError()
    {
        using var dir = ScratchDir.Tmpfs();
        string path = dir.File("empty");
        File.WriteAllBytes(path, []);
        var ex = Assert.Throws<PmemException>(() => PmemDevice.Open(path, Env.With()));
        Assert.Contains("empty", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => PmemDevice.Create(dir.File("z"), 0, Env.With()));
        Assert.Throws<ArgumentOutOfRangeException>(() => PmemDevice.CreateInMemory(-5, Env.With()));
        Assert.False(File.Exists(dir.File("z")));
    }

    [Fact]
    public void DirectoryAndNonDaxCharacterDeviceAreRefused()
    {
        using var dir = ScratchDir.Tmpfs();
        Assert.Contains("directory", Assert.Throws<PmemException>(() => PmemDevice.Open(dir.Path, Env.With() with { ReadOnly = true })).Message);
        Assert.Contains("not a device-dax", Assert.Throws<PmemException>(() => PmemDevice.Open("/dev/null", Env.With())).Message);
    }

    [Fact]
    public void CreateOverAnExistingFileIsRefused()
    {
        using var dir = ScratchDir.Tmpfs();
        string path = dir.File("v");
        File.WriteAllBytes(path, [1, 2, 3]);
        var ex = Assert.Throws<PmemException>(() => PmemDevice.Create(path, 4096, Env.With()));
        Assert.Contains("EEXIST", ex.Message);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
    }

    [Fact]
    public void SecondOpenIsInUse()
    {
        using var dir = ScratchDir.Tmpfs();
        string path = dir.File("v");
        using (var first = PmemDevice.Create(path, 1 << 20, Env.With()))
        {
            var ex = Assert.Throws<DeviceInUseException>(() => PmemDevice.Open(path, Env.With()));
            Assert.Contains("in use", ex.Message);
        }
        using var again = PmemDevice.Open(path, Env.With()); // lock released with the first
    }

    [Fact]
    public void UseAfterDisposeIsObjectDisposed()
    {
        var dev = Env.EmulatedMemory(4096);
        dev.Dispose();
        dev.Dispose();
        Assert.Throws<ObjectDisposedException>(() => dev.Persist(0, 64));
        Assert.Throws<ObjectDisposedException>(() => dev.CopyPersist(0, new byte[10]));
        Assert.Throws<ObjectDisposedException>(() => dev.GetSpan(0, 1).Length);
    }

    [Fact]
    public void ReadOnlyDeviceRefusesStores()
    {
        using var dir = ScratchDir.Tmpfs();
        string path = dir.File("v");
        File.WriteAllBytes(path, new byte[8192]);
        using var dev = PmemDevice.Open(path, Env.With() with { ReadOnly = true });
        Assert.True(dev.IsReadOnly);
        Assert.Equal(0, dev.GetSpan(0, 8192).IndexOfAnyExcept((byte)0) < 0 ? 0 : 1);
        Assert.Contains("read-only", Assert.Throws<InvalidOperationException>(() => dev.CopyPersist(0, new byte[1])).Message);
        Assert.Throws<InvalidOperationException>(() => dev.WriteUInt64(0, 1));
        dev.Persist(0, 64); // write-back of clean lines is allowed
    }
}
