using DaxFs.Pmem.Cpu;
using DaxFs.Pmem.Interop;

namespace DaxFs.Pmem;

public sealed unsafe partial class PmemDevice
{
    private const long HugePageSize = 2 << 20;

    /// <summary>Opens an existing device: a device-dax character device or a regular file.</summary>
    /// <exception cref="PmemException">The path is missing, empty, of the wrong kind, in use, or cannot be mapped;
    /// the message says which.</exception>
    public static PmemDevice Open(string path, PmemOpenOptions? options = null)
    {
        options ??= new PmemOpenOptions();
        ArgumentException.ThrowIfNullOrEmpty(path);
        int fd = Libc.Open(path, (options.ReadOnly ? Libc.O_RDONLY : Libc.O_RDWR) | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"cannot open device {path}: {text}", errno);
        }
        return FromDescriptor(fd, path, options, created: false);
    }

    /// <summary>Creates a new regular file of <paramref name="length"/> bytes (blocks reserved up front, so that a
    /// full file system cannot later turn a store into SIGBUS) and opens it as a device. Fails if it exists.</summary>
    public static PmemDevice Create(string path, long length, PmemOpenOptions? options = null)
    {
        options ??= new PmemOpenOptions();
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (length <= 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"a device needs a positive length, not {length}");
        int fd = Libc.Open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0x1B6 /* 0666 & umask */);
        if (fd < 0)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"cannot create device file {path}: {text}", errno);
        }
        try
        {
            int rc = Reserve(fd, length, options.CreateProgress);
            if (rc == Libc.EOPNOTSUPP || rc == Libc.EINVAL)
                rc = Libc.FTruncate(fd, length) == 0 ? 0 : System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (rc != 0)
                throw new PmemException($"cannot reserve {length} bytes for {path}: {Libc.ErrnoText(rc)}", rc);
        }
        catch
        {
            Libc.Close(fd);
            File.Delete(path);
            throw;
        }
        return FromDescriptor(fd, path, options, created: true);
    }

    /// <summary>posix_fallocate of [0, length): in one call, or in 256 MiB steps reporting the fraction done; 0 or an
    /// errno value.</summary>
    private static int Reserve(int fd, long length, IProgress<double>? progress)
    {
        if (progress is null)
            return Libc.PosixFAllocate(fd, 0, length);
        const long Step = 256L << 20;
        for (long off = 0; off < length; off += Step)
        {
            int rc = Libc.PosixFAllocate(fd, off, Math.Min(Step, length - off));
            if (rc != 0)
                return rc;
            progress.Report((double)Math.Min(length, off + Step) / length);
        }
        return 0;
    }

    /// <summary>Creates a volatile in-memory device (an anonymous memfd) of <paramref name="length"/> bytes, for
    /// tests. It is Page-granular unless pmem is emulated.</summary>
    public static PmemDevice CreateInMemory(long length, PmemOpenOptions? options = null)
    {
        options ??= new PmemOpenOptions();
        if (length <= 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"a device needs a positive length, not {length}");
        int fd = Libc.MemfdCreate("daxfs-memory", Libc.MFD_CLOEXEC);
        if (fd < 0)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"memfd_create failed: {text}", errno);
        }
        if (Libc.FTruncate(fd, length) != 0)
        {
            var (errno, text) = Libc.LastError();
            Libc.Close(fd);
            throw new PmemException($"cannot size an in-memory device to {length} bytes: {text}", errno);
        }
        return FromDescriptor(fd, "memfd", options with { Exclusive = false }, created: true, memory: true);
    }

    /// <summary>Identifies what <paramref name="fd"/> is, locks it, maps it and resolves its granularity. Closes the
    /// descriptor on any failure.</summary>
    private static PmemDevice FromDescriptor(int fd, string path, PmemOpenOptions options, bool created, bool memory = false)
    {
        try
        {
            if (Libc.FStat(fd, out Libc.Stat st) != 0)
            {
                var (errno, text) = Libc.LastError();
                throw new PmemException($"cannot stat {path}: {text}", errno);
            }
            int type = (int)st.Mode & Libc.S_IFMT;
            DeviceKind kind;
            long length;
            long align = HugePageSize;
            if (memory)
            {
                kind = DeviceKind.Memory;
                length = st.Size;
            }
            else if (type == Libc.S_IFREG)
            {
                kind = DeviceKind.File;
                length = st.Size;
            }
            else if (type == Libc.S_IFCHR)
            {
                kind = DeviceKind.DeviceDax;
                (length, align) = DeviceDaxGeometry(path, st.RDev);
            }
            else
            {
                string what = type switch { Libc.S_IFDIR => "a directory", Libc.S_IFBLK => "a block device", _ => "not a regular file" };
                throw new PmemException($"{path} is {what}: a device is a device-dax character device (/dev/daxX.Y) " +
                    "or a regular file (on an fsdax file system, or on tmpfs with --emulate-pmem)", Libc.ENODEV);
            }
            if (length <= 0)
                throw new PmemException($"{path} is empty (0 bytes): a device needs a length (daxfs mkfs --size)", Libc.EINVAL);
            if (options.Exclusive)
                Lock(fd, path, options.ReadOnly);
            return new PmemDevice(fd, path, kind, length, align, options);
        }
        catch
        {
            Libc.Close(fd);
            if (created && !memory)
                File.Delete(path);
            throw;
        }
    }

    /// <summary>Takes the advisory lock that makes one opener own the device (flock: per open file description,
    /// so a second open in the same process is refused too).</summary>
    private static void Lock(int fd, string path, bool shared)
    {
        if (Libc.FLock(fd, (shared ? Libc.LOCK_SH : Libc.LOCK_EX) | Libc.LOCK_NB) == 0)
            return;
        var (errno, text) = Libc.LastError();
        if (errno == Libc.EAGAIN)
            throw new DeviceInUseException(path);
        throw new PmemException($"cannot lock {path}: {text}", errno);
    }

    /// <summary>Size and mapping alignment of a device-dax device, from sysfs.</summary>
    private static (long Length, long Align) DeviceDaxGeometry(string path, ulong rdev)
    {
        string sys = $"/sys/dev/char/{Libc.Major(rdev)}:{Libc.Minor(rdev)}";
        string subsystem = Directory.Exists(sys + "/subsystem") ? Path.GetFileName(new DirectoryInfo(sys + "/subsystem").ResolveLinkTarget(true)?.FullName ?? "") : "";
        if (subsystem != "dax" || !File.Exists(sys + "/size"))
            throw new PmemException($"{path} is a character device but not a device-dax device ({sys}/subsystem is '{subsystem}')", Libc.ENODEV);
        long length = long.Parse(File.ReadAllText(sys + "/size").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        long align = HugePageSize;
        if (File.Exists(sys + "/align") && long.TryParse(File.ReadAllText(sys + "/align").Trim(), out long a) && a > 0)
            align = a;
        return (length, align);
    }

    /// <summary>Maps the descriptor at an <paramref name="align"/>-aligned address (so that 2 MiB pages can back it),
    /// resolves granularity and strategy, and builds the device.</summary>
    private PmemDevice(int fd, string path, DeviceKind kind, long length, long align, PmemOpenOptions options)
    {
        Func<string, string?> env = options.Env;
        _fd = fd;
        _pageSize = Libc.GetPageSize();
        _mappedLength = length;
        (nint address, bool mapSync, int mapErrno) = MapAligned(fd, path, length, align, options, kind == DeviceKind.DeviceDax);
        _base = (byte*)address;
        // Anything that fails from here on (a refused granularity, a bad flush or threshold setting) unmaps and leaves
        // the descriptor to the caller, which closes it: the finalizer must not run for this half-built device, or it
        // would unmap and close again -- by then, another mapping's memory and another file's descriptor.
        try
        {
            (Granularity granularity, string why) = ResolveGranularity(kind, mapSync, mapErrno, path, fd, options, env);
            if (options.RequiredGranularity is { } required && granularity > required)
                throw new GranularityMismatchException(required, granularity, why);

            var cpu = CpuFeatures.Detect(env);
            (FlushInstruction flush, FlushInstruction invalidate) = ChooseFlush(granularity, cpu, options, env);
            _flush = flush switch
            {
                FlushInstruction.Msync => &FlushMsync,
                FlushInstruction.None => &FlushNothing,
                _ => &FlushLines,
            };
            _invalidate = invalidate switch
            {
                FlushInstruction.Msync => &FlushMsync,
                FlushInstruction.None => &FlushNothing,
                _ => &EvictLines,
            };
            if (flush is not (FlushInstruction.Msync or FlushInstruction.None))
                _flushLines = FlushRoutines.Get(flush);
            if (invalidate is not (FlushInstruction.Msync or FlushInstruction.None))
                _evictLines = FlushRoutines.Get(invalidate);

            NonTemporal.Width width = NonTemporal.Best(cpu);
            _ntCopy = NonTemporal.Copier(width);
            _ntFill = NonTemporal.Filler(width);
            int threshold = granularity == Granularity.Page || CpuFeatures.Switch(env, "DAXFS_NO_MOVNT")
                ? int.MaxValue
                : options.NonTemporalThreshold ?? ParseThreshold(env("DAXFS_MOVNT_THRESHOLD")) ?? DefaultNonTemporalThreshold;
            _ntThreshold = (nuint)threshold;
            _ntAllowed = granularity != Granularity.Page;
            _page = granularity == Granularity.Page;

            _length = length;
            _writableLength = options.ReadOnly ? 0 : length;
            string ntName = width switch { NonTemporal.Width.Avx512 => "AVX-512", NonTemporal.Width.Avx => "AVX", _ => "SSE2" };
            _info = new DeviceInfo(kind, path, length, granularity, why, mapSync, flush, invalidate, ntName, threshold);
        }
        catch
        {
            Libc.MUnmap(address, (nuint)length);
            _base = null;
            GC.SuppressFinalize(this);
            throw;
        }
        if (CpuFeatures.Switch(env, "DAXFS_LOG"))
            Console.Error.WriteLine("daxfs: device " + _info);
    }

    /// <summary>Reserves length+align of address space, maps the file at the aligned address inside it (MAP_SYNC
    /// first, then plain MAP_SHARED), and returns the reservation's unused ends. Returns the errno MAP_SYNC was
    /// refused with (0 if accepted).</summary>
    private static (nint Address, bool MapSync, int MapSyncErrno) MapAligned(int fd, string path, long length, long align,
        PmemOpenOptions options, bool deviceDax)
    {
        nuint reserveLength = (nuint)(length + align);
        nint reserve = Libc.MMap(0, reserveLength, Libc.PROT_NONE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
        if (reserve == Libc.MAP_FAILED)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"cannot reserve {reserveLength} bytes of address space for {path}: {text}", errno);
        }
        nint aligned = (nint)(((long)reserve + align - 1) & ~(align - 1));
        int prot = options.ReadOnly ? Libc.PROT_READ : Libc.PROT_READ | Libc.PROT_WRITE;
        int extra = Libc.MAP_FIXED | (options.Prefault ? Libc.MAP_POPULATE : 0);
        nint p = Libc.MMap(aligned, (nuint)length, prot, Libc.MAP_SHARED_VALIDATE | Libc.MAP_SYNC | extra, fd, 0);
        bool mapSync = p != Libc.MAP_FAILED;
        int syncErrno = mapSync ? 0 : System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        if (!mapSync && !deviceDax)
            p = Libc.MMap(aligned, (nuint)length, prot, Libc.MAP_SHARED | extra, fd, 0);
        if (p == Libc.MAP_FAILED)
        {
            var (errno, text) = Libc.LastError();
            Libc.MUnmap(reserve, reserveLength);
            throw new PmemException(deviceDax
                ? $"cannot map device-dax {path} with MAP_SYNC: {Libc.ErrnoText(syncErrno)}"
                : $"cannot map {path} ({length} bytes): {text}", deviceDax ? syncErrno : errno);
        }
        if (aligned > reserve)
            Libc.MUnmap(reserve, (nuint)(aligned - reserve));
        nint end = aligned + (nint)length, reserveEnd = reserve + (nint)reserveLength;
        if (reserveEnd > end)
            Libc.MUnmap(end, (nuint)(reserveEnd - end));
        // Why: tmpfs and memfd back a mapping with 2 MiB pages only when asked (or mounted huge=always); this
        // matches what a DAX device gives with PMD mappings. EINVAL where THP is unavailable is harmless.
        Libc.MAdvise(aligned, (nuint)length, Libc.MADV_HUGEPAGE);
        return (aligned, mapSync, syncErrno);
    }

    /// <summary>The granularity the device offers (or that emulation forces), with the reason in words.</summary>
    private static (Granularity, string) ResolveGranularity(DeviceKind kind, bool mapSync, int mapErrno, string path, int fd,
        PmemOpenOptions options, Func<string, string?> env)
    {
        if (mapSync)
        {
            string source = kind == DeviceKind.DeviceDax ? "device-dax" : "MAP_SYNC accepted (fsdax)";
            string? domain = PersistenceDomain(kind, fd);
            if (domain == "cpu_cache")
                return (Granularity.Byte, source + ", persistence_domain cpu_cache (eADR)");
            return (Granularity.CacheLine, source + (domain is null ? "" : $", persistence_domain {domain}"));
        }
        bool emulate = options.EmulatePmem ?? CpuFeatures.Switch(env, "DAXFS_EMULATE_PMEM");
        string refused = $"MAP_SYNC refused with {Libc.ErrnoName(mapErrno)}: {(kind == DeviceKind.Memory ? "memfd memory" : path)} is not on a DAX file system";
        if (emulate)
            return (Granularity.CacheLine, $"emulated pmem ({(options.EmulatePmem is true ? "--emulate-pmem" : "DAXFS_EMULATE_PMEM=1")}); {refused}, " +
                "so nothing survives a power cut");
        return (Granularity.Page, refused + "; only msync makes stores durable (--emulate-pmem treats it as pmem)");
    }

    /// <summary>The nd region's persistence_domain ("cpu_cache" = eADR, "memory_controller" = ADR) for the device
    /// or the block device holding the file, found by walking up sysfs; null where none is reported.</summary>
    private static string? PersistenceDomain(DeviceKind kind, int fd)
    {
        try
        {
            if (Libc.FStat(fd, out Libc.Stat st) != 0)
                return null;
            string start = kind == DeviceKind.DeviceDax
                ? $"/sys/dev/char/{Libc.Major(st.RDev)}:{Libc.Minor(st.RDev)}"
                : $"/sys/dev/block/{Libc.Major(st.Dev)}:{Libc.Minor(st.Dev)}";
            var dir = new DirectoryInfo(start);
            string? real = dir.ResolveLinkTarget(true)?.FullName ?? (dir.Exists ? dir.FullName : null);
            for (var d = real is null ? null : new DirectoryInfo(real); d is not null && d.FullName != "/sys"; d = d.Parent)
            {
                string f = Path.Combine(d.FullName, "persistence_domain");
                if (File.Exists(f))
                    return File.ReadAllText(f).Trim();
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>The write-back and evict instructions: Msync on Page devices, none on Byte devices, else the
    /// override (DAXFS_FLUSH or the option) or the best the CPU has.</summary>
    private static (FlushInstruction Flush, FlushInstruction Invalidate) ChooseFlush(Granularity g, CpuFeatures cpu,
        PmemOpenOptions options, Func<string, string?> env)
    {
        if (g == Granularity.Page)
            return (FlushInstruction.Msync, FlushInstruction.Msync);
        FlushInstruction? forced = options.Flush ?? ParseFlush(env("DAXFS_FLUSH"));
        if (forced is { } f)
        {
            if (f == FlushInstruction.Msync)
                throw new PmemException("msync is the flush of Page devices only; choose clwb, clflushopt, clflush or none");
            if (!cpu.Supports(f))
                throw new PmemException($"{f.ToString().ToUpperInvariant()} was asked for (DAXFS_FLUSH or the flush option) " +
                    "but this CPU does not offer it, or a DAXFS_NO_* switch turned it off");
            FlushInstruction evict = f is FlushInstruction.Clflush or FlushInstruction.ClflushOpt or FlushInstruction.None ? f : cpu.BestInvalidate;
            return (f, evict);
        }
        if (g == Granularity.Byte)
            return (FlushInstruction.None, cpu.BestInvalidate);
        return (cpu.BestFlush, cpu.BestInvalidate);
    }

    /// <summary>DAXFS_FLUSH's value as an instruction; null when unset.</summary>
    internal static FlushInstruction? ParseFlush(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" => null,
        "clwb" => FlushInstruction.Clwb,
        "clflushopt" => FlushInstruction.ClflushOpt,
        "clflush" => FlushInstruction.Clflush,
        "none" => FlushInstruction.None,
        _ => throw new PmemException($"DAXFS_FLUSH must be one of clwb, clflushopt, clflush, none; it is '{value}'"),
    };

    /// <summary>DAXFS_MOVNT_THRESHOLD's value; null when unset.</summary>
    private static int? ParseThreshold(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        if (int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int t))
            return t;
        throw new PmemException($"DAXFS_MOVNT_THRESHOLD must be a byte count (0 or more); it is '{value}'");
    }
}
