using DaxFs.Crash;
using DaxFs.Pmem;
using Xunit;

namespace DaxFs.Crash.Tests;

/// <summary>The device model: what is persisted after stores, write-backs, non-temporal stores and fences.</summary>
public class RecorderTests
{
    private static PmemDevice Device() =>
        PmemDevice.CreateInMemory(1 << 20, new PmemOpenOptions { EmulatePmem = true, Environment = _ => null });

    [Fact]
    public void CachedStoreIsInFlightUntilWrittenBackAndFenced()
    {
        using var dev = Device();
        var rec = new CrashRecorder(dev);
        dev.WriteUInt64(128, 0x1122334455667788);
        Assert.Equal([new InFlightWord(128, 0x1122334455667788)], rec.InFlightWords());
        dev.Flush(128, 8);
        Assert.Equal(0UL, BitConverter.ToUInt64(rec.Persisted.Slice(128, 8)));   // written back, not yet fenced
        dev.Drain();
        Assert.Equal(0x1122334455667788UL, BitConverter.ToUInt64(rec.Persisted.Slice(128, 8)));
        Assert.Empty(rec.InFlightWords());
    }

    [Fact]
    public void WriteBackTakesTheLineAsItWasThen()
    {
        using var dev = Device();
        var rec = new CrashRecorder(dev);
        dev.WriteUInt64(0, 1);
        dev.Flush(0, 8);
        dev.WriteUInt64(0, 2);          // a store after the write-back: not covered by the fence
        dev.Drain();
        Assert.Equal(1UL, BitConverter.ToUInt64(rec.Persisted[..8]));
        Assert.Equal([new InFlightWord(0, 2)], rec.InFlightWords());
    }

    [Fact]
    public void NonTemporalStoresPersistAtTheNextFence()
    {
        using var dev = Device();
        var rec = new CrashRecorder(dev);
        var data = Enumerable.Range(1, 4096).Select(i => (byte)i).ToArray();
        dev.Copy(8192, data, PersistFlags.NonTemporal | PersistFlags.NoDrain);
        Assert.Equal(512, rec.InFlightWords().Count);
        dev.Drain();
        Assert.True(rec.Persisted.Slice(8192, 4096).SequenceEqual(data));
    }

    [Fact]
    public void CrashPointsFireBeforeEachFenceWithTheWordsInFlight()
    {
        using var dev = Device();
        var rec = new CrashRecorder(dev);
        var seen = new List<int>();
        rec.CrashPointReached += p => seen.Add(rec.InFlightWords().Count);
        rec.BeginOperation(0, false);
        dev.WriteUInt64(0, 7);
        dev.WriteUInt64(64, 8);
        dev.Persist(0, 128);
        rec.EndOperation(lint: true);
        Assert.Equal([2, 0], seen);
        Assert.Empty(rec.Findings);
    }

    [Fact]
    public void LintReportsAStoreLeftUnflushedOrUnfencedWithItsStack()
    {
        using var dev = Device();
        var rec = new CrashRecorder(dev) { CaptureStacks = true };
        rec.BeginOperation(0, false);
        dev.WriteUInt64(4096, 1);
        rec.EndOperation(lint: true);
        var f = Assert.Single(rec.Findings);
        Assert.Equal("unflushed", f.Kind);
        Assert.Equal(4096, f.Offset);
        Assert.Contains(nameof(LintReportsAStoreLeftUnflushedOrUnfencedWithItsStack), f.Stack);

        rec.BeginOperation(1, false);
        dev.Flush(4096, 8);
        rec.EndOperation(lint: true);
        Assert.Equal("unfenced", rec.Findings[1].Kind);
    }

    [Fact]
    public void RedundantWriteBacksAreCounted()
    {
        using var dev = Device();
        var rec = new CrashRecorder(dev);
        dev.Flush(0, 64);                  // nothing stored there
        Assert.Equal(1, rec.RedundantFlushes);
        dev.WriteUInt64(64, 1);
        dev.Flush(64, 8);
        dev.Flush(64, 8);                  // twice, nothing stored between
        Assert.Equal(2, rec.RedundantFlushes);
    }

    [Fact]
    public void IgnoredFencesPersistNothing()
    {
        using var dev = Device();
        var rec = new CrashRecorder(dev) { IgnoreFences = true };
        dev.WriteUInt64(0, 5);
        dev.Persist(0, 8);
        Assert.Equal(0UL, BitConverter.ToUInt64(rec.Persisted[..8]));
        Assert.Single(rec.InFlightWords());
    }
}
