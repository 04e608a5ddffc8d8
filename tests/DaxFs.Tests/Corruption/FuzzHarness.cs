using System.Collections.Concurrent;
using System.Globalization;
using DaxFs.Check;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Support;

namespace DaxFs.Tests.Corruption;

/// <summary>What one bad image did to mount and to fsck.</summary>
internal sealed record CaseOutcome(string? Failure, bool Mounted, bool MountCorrupted, bool FsckThrew, bool FsckClean, int Visited)
{
    public bool Ok => Failure is null;
}

/// <summary>FuzzHarness -- runs one bad image through <see cref="DaxVolume.Mount"/> (then reads everything it can)
/// and through <see cref="Fsck.Check"/>, each on its own copy and under a timeout. A case fails on any exception that
/// is not a <see cref="DaxFsException"/>, on a timeout, and on fsck and mount disagreeing (fsck says clean while
/// mount refuses the volume as corrupted, or a repair claims a clean volume that then does not mount).</summary>
internal static class FuzzHarness
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>The base seed of the randomized tests: DAXFS_FUZZ_SEED (a number, or "random"), else a fixed one so
    /// CI runs the same cases every time.</summary>
    public static int BaseSeed()
    {
        string? s = Environment.GetEnvironmentVariable("DAXFS_FUZZ_SEED");
        if (string.IsNullOrEmpty(s))
            return 20_260_117;
        if (s == "random")
            return Random.Shared.Next();
        return int.Parse(s, CultureInfo.InvariantCulture);
    }

    /// <summary>A deterministic per-case seed (no HashCode: it is randomized per process).</summary>
    public static int CaseSeed(int baseSeed, int kind, int index) => unchecked((baseSeed * 7919) ^ (kind * 104_729) ^ (index * 1_299_709) + index);

    /// <summary>Runs the image through mount (+ walk), fsck, and optionally fsck --repair (+ mount); with
    /// <paramref name="writes"/>, an image fsck calls clean is also mounted and changed (create, write, mkdir, unlink,
    /// rename) and must still be clean after unmount.</summary>
    public static CaseOutcome Run(byte[] image, bool repair = false, bool writes = false)
    {
        bool mounted = false, mountCorrupted = false, fsckThrew = false, fsckClean = false;
        int visited = 0;
        string? failure = Guarded("mount", () =>
        {
            using Lease dev = Lease.Of(image);
            DaxVolume v;
            try
            {
                v = DaxVolume.Mount(dev.Device);
            }
            catch (DaxFsCorruptedException)
            {
                mountCorrupted = true;
                return;
            }
            catch (DaxFsException)
            {
                return;
            }
            mounted = true;
            try
            {
                visited = VolumeWalk.Exercise(v).Visited;
            }
            catch (DaxFsException)
            {
                // A clean refusal while reading.
            }
            finally
            {
                try
                {
                    v.Dispose();
                }
                catch (DaxFsException)
                {
                    // Unmount may refuse cleanly too.
                }
            }
        });
        failure ??= Guarded("fsck", () =>
        {
            using Lease dev = Lease.Of(image);
            try
            {
                fsckClean = Fsck.Check(dev.Device, repair: false).Clean;
            }
            catch (DaxFsException)
            {
                fsckThrew = true;
            }
        });
        if (failure is null && fsckClean && mountCorrupted)
            failure = "fsck reports the volume clean, but mount refuses it as corrupted";
        if (failure is null && writes && fsckClean)
            failure = Guarded("writes on a clean volume", () =>
            {
                using Lease dev = Lease.Of(image);
                using (var v = DaxVolume.Mount(dev.Device))
                {
                    var victim = v.List("/").FirstOrDefault(e => e.Type == FileModes.DirentType(FileModes.Regular));
                    using (var f = v.CreateFile("/fuzz-new"))
                    {
                        f.Write(0, new byte[20_000]);
                        f.Write(5000, new byte[3000]);
                    }
                    v.CreateDirectory("/fuzz-dir");
                    v.Rename("/fuzz-new", "/fuzz-dir/moved");
                    if (victim.Name is not null)
                        v.Unlink(DaxVolume.RootIno, victim.Name);
                }
                FsckReport after = Fsck.Check(dev.Device);
                if (!after.Clean)
                    throw new InvalidOperationException("fsck called the volume clean, but after ordinary writes it reports: " + string.Join("; ", after.Errors));
            });
        if (failure is null && repair && !fsckClean)
            failure = Guarded("fsck --repair", () =>
            {
                using Lease dev = Lease.Of(image);
                FsckReport r;
                try
                {
                    r = Fsck.Check(dev.Device, repair: true);
                }
                catch (DaxFsException)
                {
                    return;
                }
                if (!r.Clean)
                    return; // it says what is left: honest
                try
                {
                    using var v = DaxVolume.Mount(dev.Device);
                    VolumeWalk.Exercise(v);
                }
                catch (DaxFsException e)
                {
                    throw new InvalidOperationException($"fsck --repair reported the volume clean (repairs: {string.Join("; ", r.Repairs)}), but it does not mount: {e.Message}", e);
                }
            });
        return new CaseOutcome(failure, mounted, mountCorrupted, fsckThrew, fsckClean, visited);
    }

    /// <summary>Grace given to a case past <see cref="Timeout"/> before it is declared hung: a starved CI machine
    /// (two test hosts and a compiler on two cores) can stall a 300 ms case past 10 s; a hang never finishes.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(50);

    /// <summary>Bodies that finished, but only within the grace period (printed by the reports).</summary>
    public static readonly ConcurrentQueue<string> SlowCases = new();

    /// <summary>Runs <paramref name="body"/> under the timeout; a failure text, or null. A body that has not
    /// finished after <see cref="Timeout"/> gets the grace period: if it has still not finished it is a hang (its
    /// device is then left alone, never disposed under it); if it has, it is recorded in <see cref="SlowCases"/>.</summary>
    public static string? Guarded(string what, Action body)
    {
        // A dedicated thread: a test thread blocked in Wait must not starve the body of a pool thread.
        var task = Task.Factory.StartNew(body, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            if (task.Wait(Timeout))
                return null;
            if (!task.Wait(Grace))
            {
                Lease.AbandonCurrent(task);
                return $"{what} did not finish within {(Timeout + Grace).TotalSeconds} s (hang)";
            }
            SlowCases.Enqueue($"{what} took {clock.Elapsed.TotalSeconds:F1} s (more than the {Timeout.TotalSeconds} s timeout, but finished)");
            return null;
        }
        catch (AggregateException ae)
        {
            Exception e = ae.InnerException ?? ae;
            return $"{what} threw {e.GetType().FullName}: {e.Message}\n{e.StackTrace}";
        }
    }

    /// <summary>A device holding a copy of an image, taken from a pool of devices of that size (a fresh in-memory
    /// device costs its page faults, ~30 ms for 8 MiB; refilling a used one ~2 ms). A device whose case timed out is
    /// never returned: the hung body may still use it.</summary>
    internal sealed class Lease : IDisposable
    {
        private static readonly ConcurrentDictionary<long, ConcurrentBag<PmemDevice>> Pool = new();
        private static readonly ConcurrentDictionary<int, Lease> ByThread = new();
        private bool _abandoned;

        private Lease(PmemDevice device) => Device = device;

        public PmemDevice Device { get; }

        public static Lease Of(byte[] image)
        {
            ConcurrentBag<PmemDevice> bag = Pool.GetOrAdd(image.Length, _ => []);
            PmemDevice dev = bag.TryTake(out PmemDevice? d) ? d : PmemDevice.CreateInMemory(image.Length, TestVolumes.Options());
            dev.CopyPersist(0, image);
            var lease = new Lease(dev);
            ByThread[Environment.CurrentManagedThreadId] = lease;
            return lease;
        }

        /// <summary>Marks the lease of a hung body's thread as never to be reused.</summary>
        public static void AbandonCurrent(Task hung)
        {
            _ = hung;
            foreach (Lease l in ByThread.Values)
                l._abandoned = true; // conservative: any lease alive now stays out of the pool
        }

        public void Dispose()
        {
            ByThread.TryRemove(Environment.CurrentManagedThreadId, out _);
            if (!_abandoned)
                Pool[Device.Length].Add(Device);
        }
    }
}
