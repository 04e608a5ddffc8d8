using System.Collections.Concurrent;

namespace DaxFs.Fuse;

/// <summary>FuseInterruptTracker -- the INTERRUPTs received for requests still being served. Requests are not
/// cancelled: the interrupt is recorded so that an operation can look at
/// <see cref="FuseRequestContext.IsInterrupted"/>, and forgotten when the request's reply is sent.</summary>
internal sealed class FuseInterruptTracker
{
    // An INTERRUPT for a request already answered is never cleared by a completion; the bound keeps such strays
    // from accumulating.
    private const int MaxRecorded = 4096;
    private readonly ConcurrentDictionary<ulong, byte> _interrupted = new();
    private long _received;

    /// <summary>INTERRUPTs received since the mount.</summary>
    public long Received => Interlocked.Read(ref _received);

    public void Record(ulong unique)
    {
        Interlocked.Increment(ref _received);
        if (_interrupted.Count >= MaxRecorded)
            _interrupted.Clear();
        _interrupted[unique] = 0;
    }

    public bool IsInterrupted(ulong unique) => !_interrupted.IsEmpty && _interrupted.ContainsKey(unique);

    public void Completed(ulong unique)
    {
        if (!_interrupted.IsEmpty)
            _interrupted.TryRemove(unique, out _);
    }
}
