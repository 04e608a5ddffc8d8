using DaxFs.Check;
using DaxFs.Pmem;

namespace DaxFs.Crash;

/// <summary>What recovering one crash state gave: the state a program would see after mount, or why there is none.</summary>
/// <param name="State">The recovered volume's state; null when recovery failed.</param>
/// <param name="Error">What failed (mount, fsck, the usability check); null when all went well.</param>
public sealed record Recovered(VolumeState? State, string? Error);

/// <summary>Recovery -- mounts crash images on a scratch device and checks them: mount (journal replay), read the
/// whole state, unmount, fsck clean; then, when asked, use the volume (a file created and written in every directory,
/// then the whole tree deleted) and fsck again.</summary>
public sealed class Recovery : IDisposable
{
    private readonly PmemDevice _scratch;
    private readonly byte[] _shadow;                 // what the scratch device holds, except in the dirty pages
    private readonly StoreTracker _dirty = new();
    private object? _basisOwner;
    private long _basisGeneration = -1;

    /// <summary>A scratch device of <paramref name="length"/> bytes with the given granularity.</summary>
    public Recovery(long length, bool pageGranular)
    {
        _scratch = PmemDevice.CreateInMemory(length, new PmemOpenOptions { EmulatePmem = !pageGranular, Environment = _ => null });
        _shadow = new byte[length];
        _scratch.Observer = _dirty;
    }

    /// <summary>Records the 4 KiB pages a recovery stores into, so the next state rewrites only those.</summary>
    private sealed class StoreTracker : IPmemObserver
    {
        public readonly HashSet<int> Pages = new();

        public void OnStore(long offset, long length, bool nonTemporal)
        {
            for (long p = offset / 4096; p <= (offset + length - 1) / 4096; p++)
                Pages.Add((int)p);
        }

        public void OnFlush(long offset, long length, bool invalidate)
        {
        }

        public void OnDrain()
        {
        }
    }

    /// <summary>States recovered.</summary>
    public long Recoveries { get; private set; }

    /// <summary>Recovers the crash state "<paramref name="persisted"/> image + <paramref name="words"/>": mounts it,
    /// reads its state (keeping the bytes of <paramref name="keepContentOf"/>), fsck, and uses it when
    /// <paramref name="useIt"/>. The image changes only when <paramref name="owner"/> or <paramref name="generation"/>
    /// does: states of one crash point then rewrite only the pages the previous recovery stored into.</summary>
    public Recovered Check(object owner, long generation, ReadOnlySpan<byte> persisted, IEnumerable<InFlightWord> words, bool useIt,
        string? keepContentOf)
    {
        if (!ReferenceEquals(owner, _basisOwner) || generation != _basisGeneration)
        {
            SyncBasis(persisted);
            _basisOwner = owner;
            _basisGeneration = generation;
        }
        else
            RestoreDirty();
        return Recover(words, useIt, keepContentOf);
    }

    /// <summary>Makes the scratch device and the shadow hold <paramref name="basis"/>, copying only pages that differ.</summary>
    private void SyncBasis(ReadOnlySpan<byte> basis)
    {
        const int P = 4096;
        ReadOnlySpan<byte> live = _scratch.GetSpan(0, _shadow.Length);
        for (int off = 0; off < _shadow.Length; off += P)
        {
            int n = Math.Min(P, _shadow.Length - off);
            var want = basis.Slice(off, n);
            if (!want.SequenceEqual(live.Slice(off, n)))
                _scratch.Write(off, want);
            if (!want.SequenceEqual(_shadow.AsSpan(off, n)))
                want.CopyTo(_shadow.AsSpan(off, n));
        }
        _dirty.Pages.Clear();
    }

    /// <summary>Rewrites the pages the last recovery stored into from the shadow.</summary>
    private void RestoreDirty()
    {
        foreach (int p in _dirty.Pages)
        {
            int off = p * 4096, n = Math.Min(4096, _shadow.Length - off);
            _scratch.Write(off, _shadow.AsSpan(off, n));
        }
        _dirty.Pages.Clear();
    }

    /// <summary>Recovers "<paramref name="basis"/> with <paramref name="pages"/> (4 KiB page index to bytes) laid over
    /// it, + <paramref name="words"/>".</summary>
    public Recovered Check(ReadOnlySpan<byte> basis, IReadOnlyDictionary<int, byte[]>? pages, IEnumerable<InFlightWord> words, bool useIt,
        string? keepContentOf)
    {
        _basisOwner = null;
        _scratch.Write(0, basis);
        if (pages is not null)
            foreach (var (p, bytes) in pages)
                _scratch.Write((long)p * 4096, bytes);
        _scratch.GetSpan(0, _shadow.Length).CopyTo(_shadow);
        _dirty.Pages.Clear();
        return Recover(words, useIt, keepContentOf);
    }

    private Recovered Recover(IEnumerable<InFlightWord> words, bool useIt, string? keepContentOf)
    {
        Recoveries++;
        foreach (var w in words)
            _scratch.WriteUInt64(w.Offset, w.Live);
        VolumeState state;
        try
        {
            using var v = DaxVolume.Mount(_scratch);
            state = VolumeState.Capture(v, keepContentOf);
        }
        catch (Exception e)
        {
            return new Recovered(null, $"mount after the crash failed: {e.GetType().Name}: {e.Message}");
        }
        string? problem = Fsck(_scratch, "after recovery");
        if (problem is not null)
            return new Recovered(state, problem);
        if (useIt)
        {
            try
            {
                using var v = DaxVolume.Mount(_scratch);
                Use(v);
            }
            catch (Exception e)
            {
                return new Recovered(state, $"the recovered volume is not usable: {e.GetType().Name}: {e.Message}");
            }
            problem = Fsck(_scratch, "after using the recovered volume");
            if (problem is not null)
                return new Recovered(state, problem);
        }
        return new Recovered(state, null);
    }

    private static string? Fsck(PmemDevice device, string when)
    {
        try
        {
            var r = DaxFs.Check.Fsck.Check(device);
            return r.Clean ? null : $"fsck {when}: " + string.Join("; ", r.Errors.Take(4)) + (r.Errors.Count > 4 ? $" (+{r.Errors.Count - 4} more)" : "");
        }
        catch (Exception e)
        {
            return $"fsck {when} threw {e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>Creates and writes a file in every directory, then deletes the whole tree.</summary>
    private static void Use(DaxVolume v)
    {
        var dirs = new List<string>();
        Collect(v, "/", dirs);
        byte[] data = Ops.Pattern(5000, 77);
        foreach (var d in dirs)
        {
            string p = (d == "/" ? "" : d) + "/.recovery-probe";
            using var f = v.CreateFile(p, exclusive: true);
            f.Write(0, data);
            var back = new byte[data.Length];
            if (f.Read(0, back) != data.Length || !back.AsSpan().SequenceEqual(data))
                throw new InvalidOperationException($"{p} did not read back what was written");
        }
        DeleteTree(v, "/");
        if (v.List("/").Count != 0)
            throw new InvalidOperationException("the root is not empty after deleting everything");
    }

    private static void Collect(DaxVolume v, string dir, List<string> dirs)
    {
        dirs.Add(dir);
        foreach (var e in v.List(dir))
        {
            string p = (dir == "/" ? "/" : dir + "/") + e.NameString;
            if (v.Stat(p, followLinks: false).IsDirectory)
                Collect(v, p, dirs);
        }
    }

    private static void DeleteTree(DaxVolume v, string dir)
    {
        foreach (var e in v.List(dir))
        {
            string p = (dir == "/" ? "/" : dir + "/") + e.NameString;
            if (v.Stat(p, followLinks: false).IsDirectory)
            {
                DeleteTree(v, p);
                v.DeleteDirectory(p);
            }
            else
                v.Delete(p);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _scratch.Dispose();
}
