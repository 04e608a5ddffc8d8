namespace DaxFs.Fuse;

/// <summary>FuseMountMethod -- how the kernel mount is made.</summary>
public enum FuseMountMethod
{
    /// <summary>mount(2) when running as root, fusermount3 otherwise (and when mount(2) is refused).</summary>
    Auto,
    /// <summary>mount(2) only (needs CAP_SYS_ADMIN).</summary>
    Syscall,
    /// <summary>The setuid helper fusermount3 only.</summary>
    Fusermount,
}

/// <summary>FuseMountOptions -- how a volume is mounted and served.</summary>
public sealed class FuseMountOptions
{
    /// <summary>Worker threads, each with its own cloned /dev/fuse descriptor (default 4).</summary>
    public int Threads { get; init; } = 4;

    /// <summary>Let users other than the mounting one in (allow_other; off unless asked).</summary>
    public bool AllowOther { get; init; }

    /// <summary>Let the kernel check permissions from the modes (default_permissions; default on).</summary>
    public bool DefaultPermissions { get; init; } = true;

    /// <summary>Mount read-only (MS_RDONLY).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>The source shown in /proc/mounts (e.g. the volume path); default "daxfs".</summary>
    public string FsName { get; init; } = "daxfs";

    /// <summary>The subtype: the mount's type shows as "fuse.{Subtype}"; default "daxfs".</summary>
    public string Subtype { get; init; } = "daxfs";

    /// <summary>Largest read and write request, a multiple of 4 KiB (default 1 MiB = 256 pages, the kernel's
    /// default max_pages_limit).</summary>
    public int MaxWrite { get; init; } = 1 << 20;

    /// <summary>How long the kernel caches attributes from GETATTR/SETATTR (entries carry their own).</summary>
    public TimeSpan AttributeTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The file system's inode number of the root directory; the kernel calls it node 1.</summary>
    public ulong RootInode { get; init; } = 1;

    /// <summary>Offer FUSE_EXPORT_SUPPORT (the file system answers lookups of "." and ".."; default on).</summary>
    public bool ExportSupport { get; init; } = true;

    /// <summary>mount(2), fusermount3, or whichever works (default).</summary>
    public FuseMountMethod Method { get; init; } = FuseMountMethod.Auto;

    /// <summary>How long Mount waits for the kernel's INIT (default 10 s).</summary>
    public TimeSpan InitTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long Unmount retries a busy mount before detaching it lazily (default 5 s).</summary>
    public TimeSpan UnmountTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Where diagnostics go (default stderr).</summary>
    public TextWriter? Log { get; init; }

    internal void Validate()
    {
        if (Threads is < 1 or > 64)
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "between 1 and 64 worker threads");
        if (MaxWrite < 4096 || MaxWrite > (16 << 20) || MaxWrite % 4096 != 0)
            throw new ArgumentOutOfRangeException(nameof(MaxWrite), MaxWrite, "a multiple of 4 KiB up to 16 MiB");
        if (RootInode == 0)
            throw new ArgumentOutOfRangeException(nameof(RootInode), RootInode, "inode 0 is not a valid root");
        foreach (var (name, value) in new[] { ("FsName", FsName), ("Subtype", Subtype) })
        {
            if (string.IsNullOrEmpty(value) || value.IndexOfAny([',', '\0', ' ', '\t', '\n']) >= 0)
                throw new ArgumentException($"{name} '{value}' is empty or has a comma or white space", name);
        }
    }
}
