using System.Collections.Concurrent;

namespace DaxFs.Fuse;

/// <summary>FuseLog -- the session's diagnostics on one writer (stderr by default): each distinct problem is
/// written once, so a misbehaving client cannot flood the log; counts keep the totals.</summary>
internal sealed class FuseLog(TextWriter writer)
{
    private readonly ConcurrentDictionary<string, byte> _seen = new();
    private long _unexpected;
    private long _malformed;

    /// <summary>Exceptions other than DaxFsException thrown by the file system (each answered EIO).</summary>
    public long UnexpectedExceptions => Interlocked.Read(ref _unexpected);

    /// <summary>Requests refused as malformed.</summary>
    public long MalformedRequests => Interlocked.Read(ref _malformed);

    public void Unexpected(string operation, Exception exception)
    {
        Interlocked.Increment(ref _unexpected);
        Once($"unexpected:{operation}:{exception.GetType().FullName}",
            $"{operation} failed with an unexpected exception, answered EIO " +
            $"(further ones of this kind are not logged): {exception}");
    }

    public void Malformed(string operation, string problem)
    {
        Interlocked.Increment(ref _malformed);
        Once($"malformed:{operation}", $"malformed {operation} request refused: {problem}");
    }

    public void Once(string key, string message)
    {
        if (_seen.TryAdd(key, 0))
            Write(message);
    }

    public void Write(string message)
    {
        try
        {
            writer.WriteLine($"daxfs-fuse: {message}");
            writer.Flush();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // Why swallowed: a closed stderr must not take the daemon down with it.
        }
    }
}
