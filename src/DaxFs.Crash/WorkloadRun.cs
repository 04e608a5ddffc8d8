using System.Text;

namespace DaxFs.Crash;

/// <summary>WorkloadRun -- one workload on a recording device: runs its operations, recovers crash states at every
/// crash point, and judges them once the operation in flight has returned (its "after" state is known then).</summary>
internal sealed class WorkloadRun
{
    private readonly Workload _w;
    private readonly bool _page;
    private readonly CampaignOptions _o;
    private readonly Random _rng;
    private readonly Recovery _recovery;
    private readonly CampaignResult _result;
    private readonly List<VolumeState> _states = new();
    private readonly List<Outcome> _outcomes = new();
    private CrashRecorder? _recorder;
    private int _op;

    /// <summary>A recovered crash state waiting for its verdict.</summary>
    private sealed record Outcome(CrashPoint Point, int[] Subset, Recovered Recovered, PointImage? Image);

    /// <summary>What is needed to recompose a crash point's states: the pages in which the persisted image differs
    /// from the recording's initial image, and the in-flight words.</summary>
    private sealed record PointImage(Dictionary<int, byte[]> Pages, List<InFlightWord> Words);

    public WorkloadRun(Workload w, bool page, CampaignOptions o, Random rng, Recovery recovery, CampaignResult result)
    {
        _w = w;
        _page = page;
        _o = o;
        _rng = rng;
        _recovery = recovery;
        _result = result;
    }

    private string Device => _page ? "page" : "cacheline";

    /// <summary>The file whose bytes the current operation may leave mixed (its content is kept whole).</summary>
    private string? Keep => _op >= 0 && _op < _w.Ops.Count ? MixPath(_w.Ops[_op]) : null;

    /// <summary>The file <paramref name="op"/> may leave a word-wise mix of before and after if power fails during it:
    /// one it stores into through a mapping, or one it overwrites in place.</summary>
    private string? MixPath(CrashOp op) => op.MappedPath ?? (_o.AcceptTornWrites ?? _o.Data == DataMode.InPlace ? op.OverwritesPath : null);

    public void Run()
    {
        var (dev, v) = Campaign.Prepare(_w, _page, _o.DeviceBytes, _o.Data);
        using (dev)
        {
            try
            {
                _o.BeforeRecording?.Invoke(v);
                _states.Add(VolumeState.Capture(v, _w.Ops.Count > 0 ? MixPath(_w.Ops[0]) : null));
                _recorder = new CrashRecorder(dev) { IgnoreFences = _o.IgnoreFences };
                _recorder.CrashPointReached += OnCrashPoint;
                int durable = 0;
                for (_op = 0; _op < _w.Ops.Count; _op++)
                {
                    CrashOp op = _w.Ops[_op];
                    _recorder.BeginOperation(_op, op.MappedPath is not null);
                    int findings = _recorder.Findings.Count;
                    string? error = null;
                    try
                    {
                        if (_w.Ops.Count > 2)
                            OnThread(_op % Callers.Length, () => op.Run(v));
                        else
                            op.Run(v);
                    }
                    catch (DaxFsException e)
                    {
                        error = e.Errno.ToString();
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        error = e.GetType().Name;
                        Report(_op, -1, "unexpected exception", $"{op.Name} threw {e}", []);
                    }
                    _recorder.EndOperation(lint: true);
                    _result.Operations++;
                    var after = VolumeState.Capture(v, MixPath(op), _op + 1 < _w.Ops.Count ? MixPath(_w.Ops[_op + 1]) : null);
                    _states.Add(after);
                    if (error is not null && !after.SameAs(_states[_op]))
                        Report(_op, -1, "failed call changed the state", $"{op.Name} failed with {error} but changed:\n"
                            + after.DescribeDifferences(_states[_op]), []);
                    foreach (var f in _recorder.Findings.Skip(findings))
                        Report(_op, -1, "lint: " + f.Kind, $"{op.Name} returned with {f.Lines} line(s) {f.Kind}, the first at device "
                            + $"offset {f.Offset}" + (ExplainStore(f) is { } stack ? "; the store was made at:\n" + stack : ""), []);
                    Judge(durable);
                    if (!_page || (op.MakesDurable && error is null))
                        durable = _op + 1;
                }
                _result.RedundantFlushes += _recorder.RedundantFlushes;
                _result.LinesFlushed += _recorder.LinesFlushed;
            }
            finally
            {
                _recorder?.Detach();
                v.Dispose();
            }
        }
    }

    /// <summary>Two caller threads: long workloads alternate their calls between them (one call at a time, so the
    /// results serialize), as a program with several threads would make them.</summary>
    private static readonly Caller[] Callers = [new(), new()];

    /// <summary>Runs <paramref name="call"/> on caller thread <paramref name="k"/> and waits; rethrows what it threw.</summary>
    private static void OnThread(int k, Action call)
    {
        Exception? thrown = Callers[k].Run(call);
        if (thrown is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(thrown).Throw();
    }

    /// <summary>A dedicated thread that runs one call at a time for the workload's thread.</summary>
    private sealed class Caller
    {
        private readonly SemaphoreSlim _go = new(0), _done = new(0);
        private Action? _call;
        private Exception? _thrown;

        public Caller()
        {
            var t = new Thread(Loop) { IsBackground = true, Name = "crash-caller" };
            t.Start();
        }

        public Exception? Run(Action call)
        {
            lock (this)
            {
                _call = call;
                _thrown = null;
                _go.Release();
                _done.Wait();
                return _thrown;
            }
        }

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                try
                {
                    _call!();
                }
                catch (Exception e)
                {
                    _thrown = e;
                }
                _done.Release();
            }
        }
    }

    private void OnCrashPoint(CrashPoint p)
    {
        if (_op < 0 || _op >= _w.Ops.Count)
            return;
        _result.CrashPoints++;
        var words = _recorder!.InFlightWords();
        PointImage? image = null;
        foreach (int[] subset in Subsets(words))
        {
            Recovered r = _recovery.Check(_recorder, _recorder.PersistedGeneration, _recorder.Persisted, subset.Select(i => words[i]),
                _o.UseRecovered, Keep);
            _result.States++;
            // Keep what recomposes the state unless it already is allowed whatever the call in flight turns out to do.
            bool settled = r.Error is null && p.AtFence && r.State!.SameAs(_states[_op]) && !_page;
            if (!settled)
                image ??= new PointImage(_recorder.ChangedPages(), words);
            _outcomes.Add(new Outcome(p, subset, r, settled ? null : image));
        }
    }

    /// <summary>The subsets of the in-flight words checked at a point: none, all, every one and every two when there
    /// are few; by region (runs of in-flight words less than a line apart: a journal record, a log record, a data
    /// extent), each region alone and all but each region when there are few regions -- the states where one
    /// structure reached the media and another did not; and random ones (independent halves, contiguous runs, random
    /// sets of regions).</summary>
    private IEnumerable<int[]> Subsets(IReadOnlyList<InFlightWord> words)
    {
        int n = words.Count;
        var seen = new HashSet<string>();
        var regions = new List<(int Start, int End)>();
        for (int i = 0; i < n;)
        {
            int j = i + 1;
            while (j < n && words[j].Offset - words[j - 1].Offset <= 64)
                j++;
            regions.Add((i, j));
            i = j;
        }
        int[] Regions(Func<int, bool> take)
        {
            var list = new List<int>();
            for (int r = 0; r < regions.Count; r++)
                if (take(r))
                    for (int k = regions[r].Start; k < regions[r].End; k++)
                        list.Add(k);
            return list.ToArray();
        }
        IEnumerable<int[]> All()
        {
            yield return [];
            if (n == 0)
                yield break;
            yield return Enumerable.Range(0, n).ToArray();
            if (n <= _o.ExhaustiveWords)
            {
                for (int i = 0; i < n; i++)
                    yield return [i];
                for (int i = 0; i < n; i++)
                    for (int j = i + 1; j < n; j++)
                        yield return [i, j];
            }
            if (regions.Count > 1 && regions.Count <= _o.ExhaustiveRegions)
                for (int r = 0; r < regions.Count; r++)
                {
                    int only = r;
                    yield return Regions(x => x == only);
                    yield return Regions(x => x != only);
                }
            for (int k = 0; k < _o.StatesPerPoint; k++)
            {
                switch (k % 3)
                {
                    case 0:
                        yield return Enumerable.Range(0, n).Where(_ => _rng.Next(2) == 0).ToArray();
                        break;
                    case 1:
                        int a = _rng.Next(n), b = _rng.Next(a, n + 1);
                        yield return Enumerable.Range(a, b - a).ToArray();
                        break;
                    default:
                        yield return Regions(_ => _rng.Next(2) == 0);
                        break;
                }
            }
        }
        foreach (var s in All())
            if (seen.Add(string.Join(',', s)))
                yield return s;
    }

    /// <summary>Judges the outcomes of the operation that just returned.</summary>
    private void Judge(int durable)
    {
        CrashOp op = _w.Ops[_op];
        foreach (var o in _outcomes)
        {
            string? why = Verdict(o.Recovered, o.Point.AtFence, durable, op);
            if (why is null)
                continue;
            var (subset, detail) = Minimize(o, durable, op, why);
            var persisted = subset.Select(i => o.Image!.Words[i].Offset).ToList();
            Report(_op, o.Point.Index, o.Recovered.Error is null ? "recovered state not allowed" : "recovery failed", detail, persisted);
            if (_o.StopAtFirstViolation)
                break;
        }
        _outcomes.Clear();
    }

    /// <summary>Null when <paramref name="r"/> is what the contract allows for a crash during (or, when not
    /// <paramref name="atFence"/>, right after) the current operation; otherwise why not.</summary>
    private string? Verdict(Recovered r, bool atFence, int durable, CrashOp op)
    {
        if (r.Error is not null)
            return r.Error;
        VolumeState s = r.State!;
        int lo = _page ? durable : (atFence ? _op : _op + 1), hi = _op + 1;
        for (int j = hi; j >= lo; j--)
            if (s.SameAs(_states[j]))
                return null;
        if (MixPath(op) is { } path && atFence)
            for (int j = hi; j >= lo; j--)
                if (s.IsWordMixOf(_states[j], _states[_op + 1], path))
                    return null;
        string expected = lo == hi ? $"the state after op {_op}" : $"one of the states after op {lo - 1} .. op {hi - 1}";
        int closest = hi;
        int Distance(VolumeState t) => s.DescribeDifferences(t, int.MaxValue).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        for (int j = hi - 1; j >= lo; j--)
            if (Distance(_states[j]) < Distance(_states[closest]))
                closest = j;
        return $"recovered a state that is not {expected}; against the state after op {_op}:\n"
            + s.DescribeDifferences(_states[hi]) + (lo < hi ? $"\nagainst the state before op {_op}:\n" + s.DescribeDifferences(_states[hi - 1]) : "")
            + (closest < hi - 1 ? $"\nagainst the closest allowed state, after op {closest - 1}:\n" + s.DescribeDifferences(_states[closest]) : "");
    }

    /// <summary>Shrinks the set of persisted in-flight words while the violation stays (delta debugging).</summary>
    private (int[] Subset, string Detail) Minimize(Outcome o, int durable, CrashOp op, string why)
    {
        if (o.Image is null)
            return (o.Subset, why);
        int[] current = o.Subset;
        int budget = 200;
        Recovered Recover(int[] s) => _recovery.Check(_recorder!.Initial, o.Image.Pages, s.Select(i => o.Image.Words[i]), _o.UseRecovered, Keep);
        bool Fails(int[] s)
        {
            budget--;
            return Verdict(Recover(s), o.Point.AtFence, durable, op) is not null;
        }
        int chunks = 2;
        while (current.Length > 0 && budget > 0)
        {
            int size = (current.Length + chunks - 1) / chunks;
            bool reduced = false;
            for (int c = 0; c < current.Length && budget > 0; c += size)
            {
                int end = Math.Min(current.Length, c + size);
                int[] without = new int[current.Length - (end - c)];
                Array.Copy(current, 0, without, 0, c);
                Array.Copy(current, end, without, c, current.Length - end);
                if (Fails(without))
                {
                    current = without;
                    chunks = Math.Max(chunks - 1, 2);
                    reduced = true;
                    break;
                }
            }
            if (!reduced)
            {
                if (size == 1)
                    break;
                chunks = Math.Min(chunks * 2, current.Length);
            }
        }
        // The detail of the minimized state.
        string? detail = Verdict(Recover(current), o.Point.AtFence, durable, op);
        return detail is null ? (o.Subset, why) : (current, detail);
    }

    private void Report(int op, int point, string kind, string detail, IReadOnlyList<long> persisted)
    {
        var r = new StringBuilder();
        r.AppendLine($"workload {_w.Id} on a {Device} device{(_o.Data == DataMode.InPlace ? " mounted with data in place" : "")} "
            + $"(campaign seed {_o.Seed}), crash point {point} during op {op}:");
        r.AppendLine(_w.Describe());
        r.Append(persisted.Count == 0
            ? "in-flight words persisted: none (the persisted image alone)"
            : $"in-flight words persisted ({persisted.Count}): " + string.Join(' ', persisted.Take(32).Select(x => "0x" + x.ToString("x")))
              + (persisted.Count > 32 ? " ..." : ""));
        _result.Violations.Add(new Violation(_w.Id, Device, op, point, kind, detail, persisted, r.ToString()));
    }

    /// <summary>Reruns the workload with store stacks captured, up to the operation of <paramref name="f"/>, to say
    /// where its unflushed store was made.</summary>
    private string? ExplainStore(LintFinding f)
    {
        if (f.Kind != "unflushed")
            return null;
        try
        {
            var (dev, v) = Campaign.Prepare(_w, _page, _o.DeviceBytes, _o.Data);
            using (dev)
            using (v)
            {
                var rec = new CrashRecorder(dev) { CaptureStacks = true };
                for (int i = 0; i <= f.Operation; i++)
                {
                    rec.BeginOperation(i, false);
                    try
                    {
                        _w.Ops[i].Run(v);
                    }
                    catch (DaxFsException)
                    {
                    }
                    rec.EndOperation(lint: true);
                }
                rec.Detach();
                return rec.Findings.FirstOrDefault(x => x.Operation == f.Operation && x.Kind == f.Kind)?.Stack;
            }
        }
        catch (Exception e)
        {
            return $"(rerun to capture the stack failed: {e.Message})";
        }
    }
}
