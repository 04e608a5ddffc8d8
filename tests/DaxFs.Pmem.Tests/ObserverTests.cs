using DaxFs.Pmem;
using Xunit;

namespace DaxFs.Pmem.Tests;

/// <summary>The observer hook sees every store, write-back and fence in order, and what it sees is enough to keep a
/// persisted image: after every persisting call, no stored byte is left undurable.</summary>
public class ObserverTests
{
    /// <summary>Tracks, per byte, whether it was stored and not yet made durable, as a crash simulator would.</summary>
    private sealed class Tracker(long length) : IPmemObserver
    {
        private readonly byte[] _state = new byte[length]; // 0 clean, 1 stored, 2 written back (pending fence), 3 streaming
        public List<string> Events { get; } = [];

        public void OnStore(long offset, long len, bool nonTemporal)
        {
            Events.Add($"store {offset} {len} {(nonTemporal ? "nt" : "t")}");
            _state.AsSpan((int)offset, (int)len).Fill(nonTemporal ? (byte)3 : (byte)1);
        }

        public void OnFlush(long offset, long len, bool invalidate)
        {
            Events.Add($"flush {offset} {len}");
            long start = offset & ~63L, end = Math.Min(_state.Length, (offset + len + 63) & ~63L);
            for (long i = start; i < end; i++)
                if (_state[i] == 1)
                    _state[i] = 2;
        }

        public void OnDrain()
        {
            Events.Add("drain");
            for (int i = 0; i < _state.Length; i++)
                if (_state[i] is 2 or 3)
                    _state[i] = 0;
        }

        public int Undurable => _state.Count(b => b != 0);
    }

    [Fact]
    public void EveryPersistingCallLeavesNothingUndurable()
    {
        using var dev = Env.EmulatedMemory(64 << 10, threshold: 256);
        var t = new Tracker(dev.Length);
        dev.Observer = t;
        var data = new byte[4160];
        for (int mis = 0; mis < 64; mis++)
        {
            for (int len = 0; len <= 4160; len += 13)
            {
                dev.CopyPersist(1024 + mis, data.AsSpan(0, len));
                Assert.Equal(0, t.Undurable);
                dev.FillPersist(20000 + mis, len, 1);
                Assert.Equal(0, t.Undurable);
                dev.Write(40000 + mis, data.AsSpan(0, len));
                dev.Persist(40000 + mis, len);
                Assert.Equal(0, t.Undurable);
            }
        }
    }

    [Fact]
    public void NoDrainAndNoFlushLeaveWorkForTheCaller()
    {
        using var dev = Env.EmulatedMemory(64 << 10, threshold: 256);
        var t = new Tracker(dev.Length);
        dev.Observer = t;
        dev.Copy(0, new byte[1000], PersistFlags.NoDrain);
        Assert.Equal(1000, t.Undurable);
        dev.Drain();
        Assert.Equal(0, t.Undurable);
        dev.Copy(0, new byte[100], PersistFlags.NoFlush);
        Assert.Equal(100, t.Undurable);
        dev.Drain();
        Assert.Equal(100, t.Undurable); // stored but never written back
        dev.Flush(0, 100);
        dev.Drain();
        Assert.Equal(0, t.Undurable);
    }

    [Fact]
    public void EventsArriveInProgramOrder()
    {
        using var dev = Env.EmulatedMemory(64 << 10, threshold: 256);
        var t = new Tracker(dev.Length);
        dev.Observer = t;
        dev.Write(10, new byte[5]);
        dev.Flush(10, 5);
        dev.Drain();
        dev.CopyPersist(128, new byte[512]);
        dev.CopyPersist(1000, new byte[16]);
        Assert.Equal(["store 10 5 t", "flush 10 5", "drain", "store 128 512 nt", "drain", "store 1000 16 t", "flush 1000 16", "drain"], t.Events);
    }

    /// <summary>An observer that fails, as a flaky device would: the error reaches the caller.</summary>
    private sealed class Failing : IPmemObserver
    {
        public void OnStore(long offset, long length, bool nonTemporal) { }
        public void OnFlush(long offset, long length, bool invalidate) => throw new IOException("injected write-back failure");
        public void OnDrain() { }
    }

    [Fact]
    public void ObserverFailuresReachTheCaller()
    {
        using var dev = Env.EmulatedMemory(64 << 10);
        dev.Observer = new Failing();
        Assert.Throws<IOException>(() => dev.Persist(0, 64));
        dev.Observer = null;
        dev.Persist(0, 64);
    }
}
