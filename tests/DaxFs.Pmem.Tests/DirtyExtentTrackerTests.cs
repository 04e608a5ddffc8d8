using DaxFs.Pmem;
using Xunit;

namespace DaxFs.Pmem.Tests;

/// <summary>FlushDirty touches only dirty extents: the number it flushes depends on what was marked, not on the
/// size of the device (counted, not timed).</summary>
public class DirtyExtentTrackerTests
{
    /// <summary>Counts write-backs the device reports.</summary>
    private sealed class FlushCounter : IPmemObserver
    {
        public long Flushes, FlushedBytes;
        public void OnStore(long offset, long length, bool nonTemporal) { }
        public void OnFlush(long offset, long length, bool invalidate) { Flushes++; FlushedBytes += length; }
        public void OnDrain() { }
    }

    [Theory]
    [InlineData(16L << 20)]
    [InlineData(256L << 20)]
    [InlineData(2L << 30)]
    public void FlushCostDependsOnDirtyExtentsNotDeviceSize(long deviceSize)
    {
        using var dev = Env.EmulatedMemory(deviceSize);
        var tracker = new DirtyExtentTracker(dev);
        Assert.Equal(2 << 20, tracker.ExtentSize);
        Assert.Equal(deviceSize / (2 << 20), tracker.ExtentCount);
        var counter = new FlushCounter();
        dev.Observer = counter;

        dev.Write(4096, new byte[4096]);
        tracker.MarkDirty(4096, 4096);                         // one extent
        dev.Write(deviceSize - 100, new byte[100]);
        tracker.MarkDirty(deviceSize - 100, 100);               // the last extent
        tracker.MarkDirty(4096 + 64, 64);                       // already dirty
        Assert.Equal(2, tracker.DirtyCount);
        Assert.Equal(2, tracker.FlushDirty(clean: true));
        Assert.Equal(2, counter.Flushes);
        Assert.Equal(2L * (2 << 20), counter.FlushedBytes);    // two extents, whatever the device size
        Assert.Equal(0, tracker.DirtyCount);
        Assert.Equal(0, tracker.FlushDirty(clean: true));      // nothing dirty: nothing touched
        Assert.Equal(2, counter.Flushes);
        Assert.Equal(2, tracker.ExtentsFlushed);
    }

    [Fact]
    public void ExtentsOfALiveMappingStayDirtyUntilMarkedClean()
    {
        using var dev = Env.EmulatedMemory(64 << 20);
        var tracker = new DirtyExtentTracker(dev);
        tracker.MarkDirty(3 << 20, 5 << 20);                   // extents 1..3
        Assert.Equal(3, tracker.DirtyCount);
        Assert.Equal(3, tracker.FlushDirty());                  // fsync: flush, keep
        Assert.Equal(3, tracker.FlushDirty());
        Assert.True(tracker.IsDirty(4 << 20));
        tracker.MarkClean(3 << 20, 5 << 20);                   // unmap
        Assert.Equal(0, tracker.DirtyCount);
        Assert.Equal(0, tracker.FlushDirty());
        Assert.False(tracker.IsDirty(4 << 20));
    }

    [Fact]
    public void ExtentCountIsConfigurable()
    {
        using var dev = Env.EmulatedMemory(64 << 20);
        var tracker = new DirtyExtentTracker(dev, extentCount: 16);
        Assert.Equal(16, tracker.ExtentCount);
        Assert.Equal(4 << 20, tracker.ExtentSize);
        tracker.MarkDirty(0, dev.Length);
        Assert.Equal(16, tracker.FlushDirty(clean: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DirtyExtentTracker(dev, 0));
    }

    [Fact]
    public void ConcurrentMarkingLosesNothing()
    {
        using var dev = Env.EmulatedMemory(256 << 20);
        var tracker = new DirtyExtentTracker(dev);
        Parallel.For(0, 128, i => tracker.MarkDirty(i * (2L << 20) + 17, 1));
        Assert.Equal(128, tracker.DirtyCount);
        Assert.Equal(128, tracker.FlushDirty(clean: true));
    }

    [Fact]
    public void PageDevicesFlushDirtyExtentsWithMsync()
    {
        using var dir = ScratchDir.RootFs();
        using var dev = PmemDevice.Create(dir.File("v"), 8 << 20, Env.With());
        var tracker = new DirtyExtentTracker(dev);
        dev.Write(5 << 20, "durable"u8);
        tracker.MarkDirty(5 << 20, 7);
        Assert.Equal(1, tracker.FlushDirty(clean: true));
    }

    [Fact]
    public void BadRangesAreRefused()
    {
        using var dev = Env.EmulatedMemory(4 << 20);
        var tracker = new DirtyExtentTracker(dev);
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.MarkDirty(-1, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.MarkDirty(0, -10));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.MarkDirty(long.MaxValue, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.MarkClean(4 << 20, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.IsDirty(4 << 20));
        tracker.MarkDirty(4 << 20, 0); // empty range at the end: nothing
        Assert.Equal(0, tracker.DirtyCount);
    }
}
