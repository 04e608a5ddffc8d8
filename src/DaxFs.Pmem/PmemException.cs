namespace DaxFs.Pmem;

/// <summary>PmemException -- a device could not be opened, mapped or synchronized. Carries the errno when a
/// syscall failed (0 otherwise) so that upper layers can return it.</summary>
public class PmemException : IOException
{
    /// <summary>The errno of the failed syscall, or 0 when the failure was not a syscall's.</summary>
    public int Errno { get; }

    /// <summary>A failure with a message and no errno.</summary>
    public PmemException(string message) : base(message) { }

    /// <summary>A failure with a message and the errno that caused it.</summary>
    public PmemException(string message, int errno) : base(message) => Errno = errno;

    /// <summary>A failure wrapping another exception.</summary>
    public PmemException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>GranularityMismatchException -- the caller required a finer persistence granularity than the device
/// offers. The message says which was asked, which is available and why.</summary>
public sealed class GranularityMismatchException : PmemException
{
    /// <summary>The granularity the caller required.</summary>
    public Granularity Requested { get; }

    /// <summary>The granularity the device offers.</summary>
    public Granularity Available { get; }

    /// <summary>A mismatch between what was required and what is available.</summary>
    public GranularityMismatchException(Granularity requested, Granularity available, string why)
        : base($"{requested} persistence granularity was required but only {available} is available: {why}")
    {
        Requested = requested;
        Available = available;
    }
}

/// <summary>DeviceInUseException -- another open file description holds the device's exclusive lock.</summary>
public sealed class DeviceInUseException : PmemException
{
    /// <summary>The device path that is in use.</summary>
    public string Path { get; }

    /// <summary>The device at <paramref name="path"/> is in use.</summary>
    public DeviceInUseException(string path)
        : base($"{path} is in use: another process (or another open in this one) holds its lock", 16) => Path = path;
}
