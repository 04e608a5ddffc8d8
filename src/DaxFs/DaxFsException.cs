namespace DaxFs;

/// <summary>Errno -- the POSIX error numbers (Linux x86-64 values) the file system reports; the FUSE layer returns
/// them to the kernel unchanged.</summary>
public enum Errno
{
    /// <summary>Operation not permitted.</summary>
    EPERM = 1,
    /// <summary>No such file or directory.</summary>
    ENOENT = 2,
    /// <summary>I/O error (also: a device failure below the file system).</summary>
    EIO = 5,
    /// <summary>No such device or address (lseek past the end, SEEK_DATA with no data).</summary>
    ENXIO = 6,
    /// <summary>Bad file descriptor / handle.</summary>
    EBADF = 9,
    /// <summary>Out of memory.</summary>
    ENOMEM = 12,
    /// <summary>Permission denied.</summary>
    EACCES = 13,
    /// <summary>Device or resource busy (a live synchronous mapping, a mounted volume).</summary>
    EBUSY = 16,
    /// <summary>File exists.</summary>
    EEXIST = 17,
    /// <summary>Cross-device link.</summary>
    EXDEV = 18,
    /// <summary>No such device (fallocate on something that is not a regular file).</summary>
    ENODEV = 19,
    /// <summary>Not a directory.</summary>
    ENOTDIR = 20,
    /// <summary>Is a directory.</summary>
    EISDIR = 21,
    /// <summary>Invalid argument.</summary>
    EINVAL = 22,
    /// <summary>File too large.</summary>
    EFBIG = 27,
    /// <summary>No space left on device.</summary>
    ENOSPC = 28,
    /// <summary>Read-only file system.</summary>
    EROFS = 30,
    /// <summary>Too many links.</summary>
    EMLINK = 31,
    /// <summary>Result (or argument) out of range.</summary>
    ERANGE = 34,
    /// <summary>File name too long.</summary>
    ENAMETOOLONG = 36,
    /// <summary>Function not implemented.</summary>
    ENOSYS = 38,
    /// <summary>Directory not empty.</summary>
    ENOTEMPTY = 39,
    /// <summary>Too many levels of symbolic links.</summary>
    ELOOP = 40,
    /// <summary>No such extended attribute (ENODATA on Linux).</summary>
    ENODATA = 61,
    /// <summary>Value too large for defined data type.</summary>
    EOVERFLOW = 75,
    /// <summary>Operation not supported.</summary>
    EOPNOTSUPP = 95,
    /// <summary>Argument list too long (an extended attribute that does not fit).</summary>
    E2BIG = 7,
    /// <summary>Structure needs cleaning: the volume's metadata is corrupted.</summary>
    EUCLEAN = 117,
}

/// <summary>DaxFsException -- a file system call failed; <see cref="Errno"/> is what a POSIX call would have
/// returned. A failed call changes nothing on the volume.</summary>
public class DaxFsException : IOException
{
    /// <summary>The POSIX error of the failure.</summary>
    public Errno Errno { get; }

    /// <summary>A failure with its errno and a message naming the object and the reason.</summary>
    public DaxFsException(Errno errno, string message) : base($"{message} ({errno})") => Errno = errno;

    /// <summary>A failure caused by another exception (a device error, typically).</summary>
    public DaxFsException(Errno errno, string message, Exception inner) : base($"{message} ({errno})", inner) => Errno = errno;
}

/// <summary>DaxFsCorruptedException -- a structure read from the media failed validation (checksum, magic, a
/// bound); the message names the structure and its device offset. Nothing was read or written through the bad
/// value.</summary>
public sealed class DaxFsCorruptedException : DaxFsException
{
    /// <summary>The structure that failed, e.g. "superblock", "inode 17", "journal transaction 42".</summary>
    public string Structure { get; }

    /// <summary>Device byte offset of the structure.</summary>
    public long Offset { get; }

    /// <summary>A corrupted structure at <paramref name="offset"/>, and what was wrong with it.</summary>
    public DaxFsCorruptedException(string structure, long offset, string problem)
        : base(Errno.EUCLEAN, $"corrupted {structure} at device offset {offset}: {problem}")
    {
        Structure = structure;
        Offset = offset;
    }
}
