using System.Diagnostics;
using System.Runtime.InteropServices;
using DaxFs.Pmem;

namespace DaxFs.Crash;

/// <summary>One 8-byte word in which the live image differs from the persisted one at a crash point: eviction may
/// persist it (its live value) or not (its persisted value).</summary>
/// <param name="Offset">Device offset, 8-aligned.</param>
/// <param name="Live">The value in the live image (what persisting it would leave).</param>
public readonly record struct InFlightWord(long Offset, ulong Live);

/// <summary>A point at which a power cut is simulated: just before a fence executes (or at an operation's end).</summary>
/// <param name="Index">Counts crash points from 0 over the whole recording.</param>
/// <param name="Operation">The operation in flight (0-based); -1 before the first.</param>
/// <param name="AtFence">True at a fence, false at an operation's end.</param>
public readonly record struct CrashPoint(int Index, int Operation, bool AtFence);

/// <summary>A problem the persistence lint found when an operation returned.</summary>
/// <param name="Operation">The operation (0-based).</param>
/// <param name="Kind">"unflushed" (a store never written back) or "unfenced" (written back, no fence after).</param>
/// <param name="Offset">Device offset of the first such cache line.</param>
/// <param name="Lines">How many lines are affected.</param>
/// <param name="Stack">The stack of the store, when stacks were captured.</param>
public sealed record LintFinding(int Operation, string Kind, long Offset, int Lines, string? Stack);

/// <summary>CrashRecorder -- the crash simulator's device model. Attached as a <see cref="PmemDevice"/>'s observer, it
/// keeps a persisted image beside the live one: a write-back (<c>Flush</c>) takes a copy of the line as it is then,
/// a non-temporal store the lines it wrote, and a fence (<c>Drain</c>) moves every such copy into the persisted image.
/// At each fence, before it executes, <see cref="CrashPointReached"/> fires: a crash state there is the persisted image
/// plus any subset of the words in which live and persisted differ (<see cref="InFlightWords"/>), because a line not
/// yet written back may still be evicted at any moment and a line can tear at 8-byte granularity. On Page devices a
/// write-back is an msync, durable when it returns. Single-threaded: the workload runs one call at a time.</summary>
public sealed class CrashRecorder : IPmemObserver
{
    private const int Line = PmemDevice.CacheLineSize;
    private readonly PmemDevice _device;
    private readonly byte[] _persisted;
    private readonly byte[] _initial;
    private readonly HashSet<int> _changedPages = new();           // 4 KiB pages of the persisted image changed since the start
    private readonly bool _page;
    private readonly Dictionary<long, byte[]> _pending = new();     // line -> copy taken at write-back / NT store
    private readonly HashSet<long> _touched = new();                // lines whose live bytes may differ from persisted
    private readonly Dictionary<long, string?> _unflushed = new();  // lines stored with cached stores, not written back
    private bool _scanAll;
    private int _operation = -1;
    private int _points;

    /// <summary>Starts recording <paramref name="device"/>: its current bytes are taken as persisted (the caller made
    /// them durable), and the recorder becomes the device's observer.</summary>
    public CrashRecorder(PmemDevice device)
    {
        _device = device;
        if (device.Length > int.MaxValue)
            throw new ArgumentException("the crash simulator records devices under 2 GiB", nameof(device));
        _persisted = device.GetSpan(0, (int)device.Length).ToArray();
        _initial = _persisted.ToArray();
        _page = device.Granularity == Granularity.Page;
        device.Observer = this;
    }

    /// <summary>Fires at every crash point, before the fence: the persisted image and the in-flight words are those a
    /// power cut there would leave to choose from.</summary>
    public event Action<CrashPoint>? CrashPointReached;

    /// <summary>Capture the stack of every cached store, so that the lint can say where an unflushed store was made.
    /// Slow; a campaign turns it on only to explain a finding.</summary>
    public bool CaptureStacks { get; set; }

    /// <summary>When set, fences are ignored (write-backs stay pending across them): a deliberately broken device
    /// that proves the checker catches missing ordering.</summary>
    public bool IgnoreFences { get; set; }

    /// <summary>The persisted image (read-only for callers).</summary>
    public ReadOnlySpan<byte> Persisted => _persisted;

    /// <summary>Changes whenever the persisted image does.</summary>
    public long PersistedGeneration { get; private set; }

    /// <summary>The image when recording started.</summary>
    public ReadOnlySpan<byte> Initial => _initial;

    /// <summary>Copies of the 4 KiB pages in which the persisted image differs from <see cref="Initial"/>: with it, a
    /// compact copy of the persisted image.</summary>
    public Dictionary<int, byte[]> ChangedPages() =>
        _changedPages.ToDictionary(p => p, p => _persisted.AsSpan(p * PageSize, Math.Min(PageSize, _persisted.Length - p * PageSize)).ToArray());

    private const int PageSize = 4096;

    /// <summary>Fences seen.</summary>
    public long Fences { get; private set; }

    /// <summary>Write-backs of lines that held nothing new (already persisted, or written back and not stored since):
    /// a performance bug, not a correctness one.</summary>
    public long RedundantFlushes { get; private set; }

    /// <summary>Lines written back in all.</summary>
    public long LinesFlushed { get; private set; }

    /// <summary>Lint findings so far.</summary>
    public List<LintFinding> Findings { get; } = new();

    /// <summary>Marks the start of operation <paramref name="index"/>. <paramref name="storesOutsideTheDevice"/> when the
    /// operation stores through a mapping (which the device does not see): crash points then compare whole images.</summary>
    public void BeginOperation(int index, bool storesOutsideTheDevice)
    {
        _operation = index;
        _scanAll = storesOutsideTheDevice;
    }

    /// <summary>Marks the end of the current operation: a crash point (nothing of the call is left to do), then, on
    /// byte-addressable devices when <paramref name="lint"/>, the persistence lint.</summary>
    public void EndOperation(bool lint)
    {
        RaisePoint(atFence: false);
        if (lint && !_page)
        {
            if (_unflushed.Count > 0)
            {
                var first = _unflushed.OrderBy(kv => kv.Key).First();
                Findings.Add(new LintFinding(_operation, "unflushed", first.Key * Line, _unflushed.Count, first.Value));
            }
            if (_pending.Count > 0)
                Findings.Add(new LintFinding(_operation, "unfenced", _pending.Keys.Min() * Line, _pending.Count, null));
        }
        if (_scanAll)
            ScanAll();
        _scanAll = false;
    }

    /// <inheritdoc/>
    public void OnStore(long offset, long length, bool nonTemporal)
    {
        long first = offset / Line, last = (offset + length - 1) / Line;
        for (long l = first; l <= last; l++)
        {
            _touched.Add(l);
            if (nonTemporal)
            {
                _pending[l] = LiveLine(l);
                _unflushed.Remove(l);
            }
            else
                _unflushed[l] = CaptureStacks ? new StackTrace(1, true).ToString() : null;
        }
    }

    /// <inheritdoc/>
    public void OnFlush(long offset, long length, bool invalidate)
    {
        long first = offset / Line, last = (offset + length - 1) / Line;
        for (long l = first; l <= last; l++)
        {
            LinesFlushed++;
            bool stored = _unflushed.Remove(l);
            if (_page)
            {
                // msync: the page is durable when the call returns.
                LiveSpan(l).CopyTo(_persisted.AsSpan((int)(l * Line), Line));
                _changedPages.Add((int)(l * Line / PageSize));
                PersistedGeneration++;
                continue;
            }
            if (_scanAll)
            {
                // Stores through a mapping are not seen: whether this write-back was needed is unknown.
            }
            else if (!stored && !_touched.Contains(l))
                RedundantFlushes++;
            else if (!stored && _pending.TryGetValue(l, out var copy) && LiveSpan(l).SequenceEqual(copy))
                RedundantFlushes++;
            _pending[l] = LiveLine(l);
        }
    }

    /// <inheritdoc/>
    public void OnDrain()
    {
        Fences++;
        RaisePoint(atFence: true);
        if (IgnoreFences)
            return;
        foreach (var (l, copy) in _pending)
        {
            copy.CopyTo(_persisted.AsSpan((int)(l * Line), Line));
            _changedPages.Add((int)(l * Line / PageSize));
        }
        if (_pending.Count > 0)
            PersistedGeneration++;
        _pending.Clear();
    }

    /// <summary>The words in which live and persisted differ now, by offset.</summary>
    public List<InFlightWord> InFlightWords()
    {
        var words = new List<InFlightWord>();
        var clean = new List<long>();
        foreach (long l in _touched)
        {
            ReadOnlySpan<ulong> live = MemoryMarshal.Cast<byte, ulong>(LiveSpan(l));
            ReadOnlySpan<ulong> pers = MemoryMarshal.Cast<byte, ulong>(_persisted.AsSpan((int)(l * Line), Line));
            bool any = false;
            for (int w = 0; w < live.Length; w++)
                if (live[w] != pers[w])
                {
                    words.Add(new InFlightWord(l * Line + w * 8, live[w]));
                    any = true;
                }
            if (!any && !_pending.ContainsKey(l) && !_unflushed.ContainsKey(l))
                clean.Add(l);
        }
        foreach (long l in clean)
            _touched.Remove(l);
        words.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        return words;
    }

    /// <summary>Stops observing the device.</summary>
    public void Detach()
    {
        if (ReferenceEquals(_device.Observer, this))
            _device.Observer = null;
    }

    private void RaisePoint(bool atFence)
    {
        if (_scanAll)
            ScanAll();
        CrashPointReached?.Invoke(new CrashPoint(_points++, _operation, atFence));
    }

    /// <summary>Adds every line in which live and persisted differ to the touched set (stores the device did not see).</summary>
    private void ScanAll()
    {
        ReadOnlySpan<byte> live = _device.GetSpan(0, _persisted.Length);
        const int Chunk = 4096;
        for (int off = 0; off < _persisted.Length; off += Chunk)
        {
            int n = Math.Min(Chunk, _persisted.Length - off);
            if (live.Slice(off, n).SequenceEqual(_persisted.AsSpan(off, n)))
                continue;
            for (int l = off; l < off + n; l += Line)
                if (!live.Slice(l, Line).SequenceEqual(_persisted.AsSpan(l, Line)))
                    _touched.Add(l / Line);
        }
    }

    private ReadOnlySpan<byte> LiveSpan(long line) => _device.GetSpan(line * Line, Line);

    private byte[] LiveLine(long line) => LiveSpan(line).ToArray();
}
