namespace DaxFs.Fuse;

/// <summary>FuseMountException -- a mount could not be made (or unmade); the message is one line that says what
/// was tried and why it failed.</summary>
public sealed class FuseMountException : Exception
{
    /// <summary>A failure described by <paramref name="message"/>.</summary>
    public FuseMountException(string message) : base(message)
    {
    }

    /// <summary>A failure caused by <paramref name="inner"/>.</summary>
    public FuseMountException(string message, Exception inner) : base(message, inner)
    {
    }
}
