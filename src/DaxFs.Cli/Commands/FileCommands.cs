using System.Buffers.Binary;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using DaxFs.Format;
using DaxFs.Pmem;
using Spectre.Console;

namespace DaxFs.Cli.Commands;

/// <summary>FileCommands -- `daxfs ls`, `cat`, `cp`, `stat`: use a volume that is not mounted, through the library.
/// A path on a volume is written VOLUME:/path (VOLUME an existing volume file or device); a plain path is a path of
/// the host. The volume is opened with its lock, so a mounted volume is refused with an "in use" error.</summary>
public static class FileCommands
{
    /// <summary>Adds the file commands to <paramref name="root"/>.</summary>
    public static void Register(Command root)
    {
        ArgumentNullException.ThrowIfNull(root);
        root.Subcommands.Add(Ls());
        root.Subcommands.Add(Cat());
        root.Subcommands.Add(Cp());
        root.Subcommands.Add(StatCommand());
    }

    /// <summary>`daxfs ls VOLUME[:PATH] [-l] [--json]`.</summary>
    public static Command Ls()
    {
        var target = new Argument<string>("VOLUME[:PATH]") { Description = "volume, optionally with a directory or file on it (default: its root)" };
        var longFormat = new Option<bool>("-l") { Description = "long listing: mode, links, owner, group, size, mtime, name (-> target)" };
        var json = new Option<bool>("--json") { Description = "print the entries as a JSON array (every stat field)" };
        var cmd = new Command("ls", "list a directory of an unmounted volume") { target, longFormat, json };
        cmd.SetAction(r =>
        {
            var loc = ParseVolumeArgument(r.GetValue(target)!, pathRequired: false);
            using DaxVolume v = OpenVolume(loc.Volume, write: false);
            InodeAttributes a = Guard(loc, () => v.Stat(loc.Path, followLinks: false));
            var rows = new List<(string Name, InodeAttributes Attr, string? Target)>();
            if (a.IsDirectory)
            {
                foreach (DirEntry e in Guard(loc, () => v.List(loc.Path)).OrderBy(e => e.NameString, StringComparer.Ordinal))
                {
                    InodeAttributes ea = v.GetAttributes(e.Ino);
                    rows.Add((e.NameString, ea, ea.IsSymlink ? Encoding.UTF8.GetString(v.ReadLink(e.Ino)) : null));
                }
            }
            else
            {
                rows.Add((loc.Path, a, a.IsSymlink ? v.ReadLink(loc.Path) : null));
            }
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(rows.Select(x => StatJson(x.Name, x.Attr, x.Target)).ToList(), JsonOptions));
                return ExitCodes.Ok;
            }
            var sb = new StringBuilder();
            foreach (var (name, attr, link) in rows)
            {
                if (!r.GetValue(longFormat))
                {
                    sb.Append(name).Append('\n');
                    continue;
                }
                sb.Append(CultureInfo.InvariantCulture, $"{ModeString(attr.Mode)} {attr.Nlink,3} {attr.Uid,5} {attr.Gid,5} {attr.Size,12} ")
                    .Append(TimeString(attr.MtimeNs, seconds: false)).Append(' ').Append(name);
                if (link is not null)
                    sb.Append(" -> ").Append(link);
                sb.Append('\n');
            }
            Console.Out.Write(sb.ToString());
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>`daxfs cat VOLUME:PATH...`.</summary>
    public static Command Cat()
    {
        var targets = new Argument<string[]>("VOLUME:PATH") { Description = "files on a volume, written to stdout one after another", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("cat", "write files of an unmounted volume to stdout") { targets };
        cmd.SetAction(r =>
        {
            var locs = r.GetValue(targets)!.Select(t => ParseVolumeArgument(t, pathRequired: true)).ToList();
            using Stream stdout = Console.OpenStandardOutput();
            byte[] buf = new byte[1 << 20];
            foreach (var group in locs.GroupBy(l => l.Volume))
            {
                using DaxVolume v = OpenVolume(group.Key, write: false);
                foreach (var loc in group)
                {
                    using DaxFile f = Guard(loc, () => v.OpenFile(loc.Path));
                    for (long off = 0; ;)
                    {
                        int n = f.Read(off, buf);
                        if (n == 0)
                            break;
                        stdout.Write(buf, 0, n);
                        off += n;
                    }
                }
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>`daxfs stat VOLUME:PATH [--json]`.</summary>
    public static Command StatCommand()
    {
        var target = new Argument<string>("VOLUME:PATH") { Description = "a file, directory or symbolic link on a volume (links are not followed)" };
        var json = new Option<bool>("--json") { Description = "print as JSON" };
        var cmd = new Command("stat", "show the inode of a path on an unmounted volume") { target, json };
        cmd.SetAction(r =>
        {
            var loc = ParseVolumeArgument(r.GetValue(target)!, pathRequired: true);
            using DaxVolume v = OpenVolume(loc.Volume, write: false);
            InodeAttributes a = Guard(loc, () => v.Stat(loc.Path, followLinks: false));
            string? link = a.IsSymlink ? v.ReadLink(loc.Path) : null;
            var xattrs = v.ListXattrs(a.Ino).Select(n => Encoding.UTF8.GetString(n)).ToList();
            if (r.GetValue(json))
            {
                var o = StatJson(loc.Path, a, link);
                o["xattrs"] = xattrs;
                Console.WriteLine(JsonSerializer.Serialize(o, JsonOptions));
                return ExitCodes.Ok;
            }
            var sb = new StringBuilder();
            sb.Append("  File: ").Append(loc.Path).Append(link is null ? "" : " -> " + link).Append('\n');
            sb.Append(CultureInfo.InvariantCulture, $"  Type: {TypeName(a.Mode)}\n");
            sb.Append(CultureInfo.InvariantCulture, $"  Size: {a.Size}  Blocks: {a.Blocks}  IO Block: {a.BlockSize}\n");
            sb.Append(CultureInfo.InvariantCulture, $" Inode: {a.Ino}  Generation: {a.Generation}  Links: {a.Nlink}\n");
            sb.Append(CultureInfo.InvariantCulture, $"Access: ({Octal(a.Mode)}/{ModeString(a.Mode)})  Uid: {a.Uid}  Gid: {a.Gid}\n");
            sb.Append("Access: ").Append(TimeString(a.AtimeNs, seconds: true)).Append('\n');
            sb.Append("Modify: ").Append(TimeString(a.MtimeNs, seconds: true)).Append('\n');
            sb.Append("Change: ").Append(TimeString(a.CtimeNs, seconds: true)).Append('\n');
            sb.Append(" Birth: ").Append(TimeString(a.BtimeNs, seconds: true)).Append('\n');
            if (xattrs.Count > 0)
                sb.Append("Xattrs: ").Append(string.Join(", ", xattrs)).Append('\n');
            Console.Out.Write(sb.ToString());
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>`daxfs cp SRC DST [-r]`.</summary>
    public static Command Cp()
    {
        var src = new Argument<string>("SRC") { Description = "what to copy: VOLUME:/path or a host path" };
        var dst = new Argument<string>("DST") { Description = "where to: VOLUME:/path or a host path (an existing directory receives SRC under its name)" };
        var recursive = new Option<bool>("--recursive", "-r", "-R") { Description = "copy directories and everything under them (symbolic links are copied as links)" };
        var cmd = new Command("cp", "copy files into, out of or within unmounted volumes, keeping modes, symbolic links and times") { src, dst, recursive };
        cmd.SetAction(r =>
        {
            var from = ParseLocation(r.GetValue(src)!);
            var to = ParseLocation(r.GetValue(dst)!);
            if (from.Volume is null && to.Volume is null)
                throw new UsageException($"cp needs a volume on at least one side (VOLUME:/path); neither '{r.GetValue(src)}' nor '{r.GetValue(dst)}' names an existing volume");
            return Copy(from, to, r.GetValue(recursive));
        });
        return cmd;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Locations and volumes

    /// <summary>A path on a volume (Volume set) or on the host (Volume null).</summary>
    internal readonly record struct Location(string? Volume, string Path, string Text);

    /// <summary>VOLUME:PATH where VOLUME is an existing file or device; anything else is a host path.</summary>
    internal static Location ParseLocation(string text)
    {
        for (int i = text.IndexOf(':', StringComparison.Ordinal); i > 0; i = text.IndexOf(':', i + 1))
        {
            string vol = text[..i];
            if (File.Exists(vol))
                return new Location(System.IO.Path.GetFullPath(vol), NormalizeVolumePath(text[(i + 1)..]), text);
        }
        return new Location(null, text, text);
    }

    /// <summary>The argument of ls/cat/stat: a volume (with an optional :PATH).</summary>
    private static (string Volume, string Path, string Text) ParseVolumeArgument(string text, bool pathRequired)
    {
        Location loc = ParseLocation(text);
        if (loc.Volume is not null)
            return (loc.Volume, loc.Path, text);
        if (!pathRequired && File.Exists(text))
            return (System.IO.Path.GetFullPath(text), "/", text);
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        string vol = colon > 0 ? text[..colon] : text;
        if (pathRequired && colon < 0 && File.Exists(text))
            throw new UsageException($"'{text}' names a volume but no path on it: write {text}:/path");
        if (colon <= 0 && pathRequired)
            throw new UsageException($"'{text}' is not VOLUME:PATH");
        throw new IOException($"{vol}: no such volume (no such file or device)");
    }

    private static string NormalizeVolumePath(string p)
    {
        var parts = p.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(s => s != ".").ToList();
        return "/" + string.Join('/', parts);
    }

    /// <summary>Opens a volume with its lock: read-only (shared lock) unless <paramref name="write"/>, or writable when
    /// its journal needs a replay. A mounted volume (the daemon holds the lock) is refused in one clear line.</summary>
    internal static DaxVolume OpenVolume(string path, bool write)
    {
        var opts = new PmemOpenOptions
        {
            ReadOnly = !write,
            EmulatePmem = path.StartsWith("/dev/shm/", StringComparison.Ordinal) ? true : null,
        };
        try
        {
            return DaxVolume.Open(path, opts);
        }
        catch (DeviceInUseException)
        {
            string? mp = MountPointOf(path);
            throw new IOException(mp is null
                ? $"{path} is in use by another process (mounted, or opened by another daxfs command)"
                : $"{path} is in use: it is mounted on {mp} (use the mount, or daxfs umount {mp} first)");
        }
        catch (DaxFsException e) when (!write && e.Errno == Errno.EROFS)
        {
            return OpenVolume(path, write: true); // the journal must be replayed first, as a mount would
        }
        catch (DaxFsCorruptedException e)
        {
            throw new IOException($"{path} is not a usable DaxFS volume: {e.Message} (daxfs fsck {path})", e);
        }
    }

    /// <summary>Where the DaxFS mount of <paramref name="volume"/> is, if it is mounted.</summary>
    private static string? MountPointOf(string volume)
    {
        foreach (string line in File.ReadLines("/proc/self/mounts"))
        {
            string[] f = line.Split(' ');
            if (f.Length >= 3 && f[2].StartsWith("fuse", StringComparison.Ordinal) && f[0].Replace("\\040", " ", StringComparison.Ordinal) == volume)
                return f[1].Replace("\\040", " ", StringComparison.Ordinal);
        }
        return null;
    }

    /// <summary>Runs <paramref name="f"/>; a file system error becomes one line naming the path.</summary>
    private static T Guard<T>((string Volume, string Path, string Text) loc, Func<T> f)
    {
        try
        {
            return f();
        }
        catch (DaxFsException e) when (e is not DaxFsCorruptedException)
        {
            throw new IOException($"{loc.Volume}:{loc.Path}: {Strerror(e.Errno)}", e);
        }
    }

    internal static string Strerror(Errno errno) => $"{Marshal.GetPInvokeErrorMessage((int)errno)} ({errno})";

    // ---------------------------------------------------------------------------------------------------------
    // Formatting

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private static Dictionary<string, object?> StatJson(string name, InodeAttributes a, string? target) => new()
    {
        ["name"] = name,
        ["ino"] = a.Ino,
        ["type"] = TypeName(a.Mode),
        ["mode"] = a.Mode & 0xFFF,
        ["mode_octal"] = Octal(a.Mode),
        ["mode_string"] = ModeString(a.Mode),
        ["nlink"] = a.Nlink,
        ["uid"] = a.Uid,
        ["gid"] = a.Gid,
        ["size"] = a.Size,
        ["blocks"] = a.Blocks,
        ["atime_ns"] = a.AtimeNs,
        ["mtime_ns"] = a.MtimeNs,
        ["ctime_ns"] = a.CtimeNs,
        ["btime_ns"] = a.BtimeNs,
        ["mtime"] = TimeString(a.MtimeNs, seconds: true),
        ["generation"] = a.Generation,
        ["rdev"] = a.Rdev,
        ["target"] = target,
    };

    private static string Octal(uint mode) => "0" + Convert.ToString(mode & 0xFFF, 8).PadLeft(3, '0');

    private static string TypeName(uint mode) => (mode & FileModes.TypeMask) switch
    {
        FileModes.Regular => "file",
        FileModes.Directory => "directory",
        FileModes.Symlink => "symlink",
        0x2000 => "char",
        0x6000 => "block",
        0x1000 => "fifo",
        0xC000 => "socket",
        _ => "unknown",
    };

    /// <summary>"drwxr-xr-x" as ls shows it (with s/S, t/T).</summary>
    internal static string ModeString(uint mode)
    {
        char type = (mode & FileModes.TypeMask) switch
        {
            FileModes.Directory => 'd', FileModes.Symlink => 'l', 0x2000 => 'c', 0x6000 => 'b', 0x1000 => 'p', 0xC000 => 's', _ => '-',
        };
        var c = new char[10];
        c[0] = type;
        string rwx = "rwxrwxrwx";
        for (int i = 0; i < 9; i++)
            c[i + 1] = (mode & (1u << (8 - i))) != 0 ? rwx[i] : '-';
        if ((mode & 0x800) != 0)
            c[3] = c[3] == 'x' ? 's' : 'S';
        if ((mode & 0x400) != 0)
            c[6] = c[6] == 'x' ? 's' : 'S';
        if ((mode & 0x200) != 0)
            c[9] = c[9] == 'x' ? 't' : 'T';
        return new string(c);
    }

    private static string TimeString(long ns, bool seconds)
    {
        var t = DateTime.UnixEpoch.AddTicks(ns / 100);
        return seconds
            ? t.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + "." + (ns % 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture) + " UTC"
            : t.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
    }

    // ---------------------------------------------------------------------------------------------------------
    // cp

    private static int Copy(Location from, Location to, bool recursive)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("daxfs cp runs on Linux only");
        var volumes = new Dictionary<string, DaxVolume>(StringComparer.Ordinal);
        try
        {
            // The source only reads, but a volume on both sides is opened once (writable if it is written).
            foreach (var (vol, write) in new[] { (to.Volume, true), (from.Volume, false) })
                if (vol is not null && !volumes.ContainsKey(vol))
                    volumes[vol] = OpenVolume(vol, write);
            ISide s = from.Volume is null ? new HostSide() : new VolumeSide(volumes[from.Volume], from.Volume);
            ISide d = to.Volume is null ? new HostSide() : new VolumeSide(volumes[to.Volume], to.Volume);

            Node top = s.Lstat(from.Path) ?? throw new IOException($"{from.Text}: {Strerror(Errno.ENOENT)}");
            if (top.IsSymlink && !recursive)
                top = s.Stat(from.Path) ?? throw new IOException($"{from.Text}: dangling symbolic link"); // like cp: a named link is followed unless copying recursively
            if (top.IsDirectory && !recursive)
                throw new IOException($"{from.Text} is a directory (use -r)");
            string dest = to.Path;
            Node? existing = d.Stat(dest);
            if (existing is { IsDirectory: true })
                dest = d.Join(dest, BaseName(from.Path));
            if (from.Volume == to.Volume && top.IsDirectory && (Normalize(dest) + "/").StartsWith(Normalize(from.Path) + "/", StringComparison.Ordinal))
                throw new IOException($"cannot copy {from.Text} into itself ({to.Text})");

            var job = new CopyJob(s, d);
            job.Scan(from.Path, top);
            var sw = Stopwatch.StartNew();
            var task = Task.Run(() => job.Run(from.Path, dest, top, recursive));
            if (!task.Wait(ProgressDelay()))
                ShowProgress(job, task, ShortName(from.Path));
            task.GetAwaiter().GetResult();
            if (job.Shown)
                Console.Error.WriteLine($"daxfs cp: copied {job.Files} file{(job.Files == 1 ? "" : "s")}, {Sizes.Format(job.DoneBytes)} in {sw.Elapsed.TotalSeconds:0.0} s");
            return ExitCodes.Ok;
        }
        finally
        {
            foreach (DaxVolume v in volumes.Values)
                v.Dispose();
        }
    }

    private static string Normalize(string p) => p.TrimEnd('/');

    /// <summary>The source's name, at most 32 characters: the bar, percentage, speed and time must fit an 80-column
    /// terminal next to it.</summary>
    private static string ShortName(string path)
    {
        string t = path.TrimEnd('/');
        string name = t.Length == 0 ? "/" : t[(t.LastIndexOf('/') + 1)..];
        return name.Length <= 32 ? name : name[..15] + "..." + name[^14..];
    }

    /// <summary>How long a copy runs before progress is shown: 1 s, or DAXFS_PROGRESS_AFTER_MS (0: at once).</summary>
    private static TimeSpan ProgressDelay() =>
        int.TryParse(Environment.GetEnvironmentVariable("DAXFS_PROGRESS_AFTER_MS"), NumberStyles.None, CultureInfo.InvariantCulture, out int ms)
            ? TimeSpan.FromMilliseconds(ms) : TimeSpan.FromSeconds(1);

    private static string BaseName(string p)
    {
        string t = p.TrimEnd('/');
        int i = t.LastIndexOf('/');
        string b = i >= 0 ? t[(i + 1)..] : t;
        return b.Length == 0 ? throw new UsageException($"'{p}' has no name to copy under") : b;
    }

    /// <summary>A progress bar (on a terminal) or a plain line a second (otherwise) until the copy ends.</summary>
    private static void ShowProgress(CopyJob job, Task copy, string what)
    {
        job.Shown = true;
        if (AnsiConsole.Profile.Capabilities.Interactive)
        {
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(),
                new RemainingTimeColumn()).Start(ctx =>
            {
                var t = ctx.AddTask(Markup.Escape($"cp {what}"), maxValue: Math.Max(1, job.TotalBytes));
                while (!copy.Wait(100))
                    t.Value = Interlocked.Read(ref job.DoneBytesField);
                t.Value = t.MaxValue;
            });
            return;
        }
        do
        {
            long done = Interlocked.Read(ref job.DoneBytesField);
            Console.Error.WriteLine($"daxfs cp: {Sizes.Format(done)} of {Sizes.Format(job.TotalBytes)} " +
                $"({(job.TotalBytes > 0 ? 100.0 * done / job.TotalBytes : 100):0}%)");
        }
        while (!copy.Wait(1000));
    }

    /// <summary>What a copy needs to know of a node.</summary>
    internal readonly record struct Node(uint Mode, long Size, long AtimeNs, long MtimeNs)
    {
        public bool IsDirectory => (Mode & FileModes.TypeMask) == FileModes.Directory;
        public bool IsSymlink => (Mode & FileModes.TypeMask) == FileModes.Symlink;
        public bool IsRegular => (Mode & FileModes.TypeMask) == FileModes.Regular;
    }

    /// <summary>One side of a copy: the host or a volume.</summary>
    internal interface ISide
    {
        Node? Lstat(string path);
        Node? Stat(string path);
        IEnumerable<string> List(string dir);
        string Join(string dir, string name);
        IFileReader OpenRead(string path);
        IFileWriter Create(string path);
        void MakeDirectory(string path);
        void Symlink(string path, string target);
        string ReadLink(string path);
        void SetMode(string path, uint mode);
        void SetTimes(string path, long atimeNs, long mtimeNs);
        string Show(string path);
    }

    internal interface IFileReader : IDisposable
    {
        int Read(long offset, Span<byte> buffer);
    }

    internal interface IFileWriter : IDisposable
    {
        void Write(long offset, ReadOnlySpan<byte> data);
        void SetLength(long length);
    }

    /// <summary>Copies a tree from one side to the other, counting bytes for the progress display.</summary>
    private sealed class CopyJob(ISide s, ISide d)
    {
        public long DoneBytesField;
        public long TotalBytes;
        public int Files;
        public bool Shown;

        public long DoneBytes => Interlocked.Read(ref DoneBytesField);

        public void Scan(string path, Node n)
        {
            if (n.IsRegular)
                TotalBytes += n.Size;
            else if (n.IsDirectory)
                foreach (string name in s.List(path))
                {
                    string p = s.Join(path, name);
                    if (s.Lstat(p) is { } c)
                        Scan(p, c);
                }
        }

        public void Run(string from, string to, Node n, bool recursive)
        {
            if (n.IsDirectory)
            {
                d.MakeDirectory(to);
                d.SetMode(to, (n.Mode & 0xFFF) | 0x1C0); // writable by us while it is filled
                foreach (string name in s.List(from))
                {
                    string p = s.Join(from, name);
                    if (s.Lstat(p) is { } c)
                        Run(p, d.Join(to, name), c, recursive);
                }
                d.SetMode(to, n.Mode & 0xFFF);
                d.SetTimes(to, n.AtimeNs, n.MtimeNs);
                return;
            }
            if (n.IsSymlink)
            {
                d.Symlink(to, s.ReadLink(from));
                d.SetTimes(to, n.AtimeNs, n.MtimeNs);
                return;
            }
            if (!n.IsRegular)
                throw new IOException($"{s.Show(from)}: only regular files, directories and symbolic links are copied");
            using (IFileReader r = s.OpenRead(from))
            using (IFileWriter w = d.Create(to))
            {
                byte[] buf = new byte[1 << 20];
                long off = 0;
                while (true)
                {
                    int got = r.Read(off, buf);
                    if (got == 0)
                        break;
                    if (buf.AsSpan(0, got).ContainsAnyExcept((byte)0))
                        w.Write(off, buf.AsSpan(0, got));
                    off += got;
                    Interlocked.Add(ref DoneBytesField, got);
                }
                w.SetLength(off); // trailing zeros were skipped: the file stays sparse there
            }
            d.SetMode(to, n.Mode & 0xFFF);
            d.SetTimes(to, n.AtimeNs, n.MtimeNs);
            Files++;
        }
    }

    /// <summary>The volume side, by path through the library; new nodes belong to the caller.</summary>
    private sealed class VolumeSide(DaxVolume v, string volume) : ISide
    {
        private readonly uint _uid = Native.geteuid();
        private readonly uint _gid = Native.getegid();

        public string Show(string path) => $"{volume}:{path}";

        private T Do<T>(string path, Func<T> f)
        {
            try
            {
                return f();
            }
            catch (DaxFsException e) when (e is not DaxFsCorruptedException)
            {
                throw new IOException($"{Show(path)}: {Strerror(e.Errno)}", e);
            }
        }

        private void Do(string path, Action f) => Do(path, () =>
        {
            f();
            return 0;
        });

        private static Node ToNode(InodeAttributes a) => new(a.Mode, a.Size, a.AtimeNs, a.MtimeNs);

        public Node? Lstat(string path) => Find(path, follow: false);

        public Node? Stat(string path) => Find(path, follow: true);

        private Node? Find(string path, bool follow)
        {
            try
            {
                return ToNode(v.Stat(path, follow));
            }
            catch (DaxFsException e) when (e.Errno is Errno.ENOENT)
            {
                return null;
            }
            catch (DaxFsException e) when (e is not DaxFsCorruptedException)
            {
                throw new IOException($"{Show(path)}: {Strerror(e.Errno)}", e);
            }
        }

        public IEnumerable<string> List(string dir) => Do(dir, () => v.List(dir).Select(e => e.NameString).OrderBy(n => n, StringComparer.Ordinal).ToList());

        public string Join(string dir, string name) => dir.EndsWith('/') ? dir + name : dir + "/" + name;

        public IFileReader OpenRead(string path) => Do(path, () => new VolumeFile(v.OpenFile(path)));

        public IFileWriter Create(string path) => Do(path, () =>
        {
            if (Lstat(path) is { } n && !n.IsRegular)
            {
                if (n.IsDirectory)
                    throw new DaxFsException(Errno.EISDIR, "is a directory");
                v.Delete(path);
            }
            var (parent, name) = v.ResolveParent(path);
            bool created = true;
            try
            {
                v.CreateFile(parent, name, 0x180, _uid, _gid);
            }
            catch (DaxFsException e) when (e.Errno == Errno.EEXIST)
            {
                created = false;
            }
            DaxFile f = v.OpenFile(path);
            if (!created)
                f.SetLength(0);
            return new VolumeFile(f);
        });

        public void MakeDirectory(string path) => Do(path, () =>
        {
            if (Lstat(path) is { IsDirectory: true })
                return;
            var (parent, name) = v.ResolveParent(path);
            v.MakeDirectory(parent, name, 0x1C0, _uid, _gid);
        });

        public void Symlink(string path, string target) => Do(path, () =>
        {
            if (Lstat(path) is { } n)
            {
                if (n.IsDirectory)
                    throw new DaxFsException(Errno.EISDIR, "is a directory");
                v.Delete(path);
            }
            var (parent, name) = v.ResolveParent(path);
            v.CreateSymlink(parent, name, Encoding.UTF8.GetBytes(target), _uid, _gid);
        });

        public string ReadLink(string path) => Do(path, () => v.ReadLink(path));

        public void SetMode(string path, uint mode) => Do(path, () => v.SetAttributes(v.Resolve(path, followLast: false), new SetAttributes { Mode = mode }));

        public void SetTimes(string path, long atimeNs, long mtimeNs) =>
            Do(path, () => v.SetAttributes(v.Resolve(path, followLast: false), new SetAttributes { AtimeNs = atimeNs, MtimeNs = mtimeNs }));
    }

    private sealed class VolumeFile(DaxFile f) : IFileReader, IFileWriter
    {
        public int Read(long offset, Span<byte> buffer) => f.Read(offset, buffer);

        public void Write(long offset, ReadOnlySpan<byte> data) => f.Write(offset, data);

        public void SetLength(long length) => f.SetLength(length);

        public void Dispose() => f.Dispose();
    }

    /// <summary>The host side, through the kernel; times with nanoseconds (statx, utimensat).</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private sealed class HostSide : ISide
    {
        public string Show(string path) => path;

        public Node? Lstat(string path) => Native.Stat(path, follow: false);

        public Node? Stat(string path) => Native.Stat(path, follow: true);

        public IEnumerable<string> List(string dir)
        {
            try
            {
                return new DirectoryInfo(dir).EnumerateFileSystemInfos().Select(i => i.Name).OrderBy(n => n, StringComparer.Ordinal).ToList();
            }
            catch (UnauthorizedAccessException e)
            {
                throw new IOException($"{dir}: {e.Message}", e);
            }
        }

        public string Join(string dir, string name) => System.IO.Path.Join(dir, name);

        public IFileReader OpenRead(string path) => new HostFile(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None));

        public IFileWriter Create(string path)
        {
            if (Native.Stat(path, follow: false) is { IsSymlink: true })
                File.Delete(path);
            return new HostFile(new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 1,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }));
        }

        public void MakeDirectory(string path)
        {
            if (Native.Stat(path, follow: false) is { IsDirectory: true })
                return;
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        public void Symlink(string path, string target)
        {
            if (Native.Stat(path, follow: false) is { } n)
            {
                if (n.IsDirectory)
                    throw new IOException($"{path}: {Strerror(Errno.EISDIR)}");
                File.Delete(path);
            }
            File.CreateSymbolicLink(path, target);
        }

        public string ReadLink(string path) => new FileInfo(path).LinkTarget ?? throw new IOException($"{path}: {Strerror(Errno.EINVAL)}");

        public void SetMode(string path, uint mode) => Native.Check(Native.fchmodat(Native.AtFdCwd, path, mode, 0), path);

        public void SetTimes(string path, long atimeNs, long mtimeNs) =>
            Native.Check(Native.utimensat(Native.AtFdCwd, path,
                [atimeNs / 1_000_000_000, atimeNs % 1_000_000_000, mtimeNs / 1_000_000_000, mtimeNs % 1_000_000_000], Native.AtSymlinkNoFollow), path);
    }

    private sealed class HostFile(FileStream s) : IFileReader, IFileWriter
    {
        public int Read(long offset, Span<byte> buffer) => RandomAccess.Read(s.SafeFileHandle, buffer, offset);

        public void Write(long offset, ReadOnlySpan<byte> data) => RandomAccess.Write(s.SafeFileHandle, data, offset);

        public void SetLength(long length) => s.SetLength(length);

        public void Dispose() => s.Dispose();
    }

    /// <summary>The few libc calls the host side needs with nanosecond times and no symlink following.</summary>
    private static class Native
    {
        public const int AtFdCwd = -100;
        public const int AtSymlinkNoFollow = 0x100;

        [DllImport("libc", SetLastError = true)]
        public static extern uint geteuid();

        [DllImport("libc", SetLastError = true)]
        public static extern uint getegid();

        [DllImport("libc", SetLastError = true)]
        public static extern int fchmodat(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int utimensat(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, long[] times, int flags);

        [DllImport("libc", SetLastError = true)]
        private static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

        public static void Check(int rc, string path)
        {
            if (rc != 0)
                throw new IOException($"{path}: {Strerror((Errno)Marshal.GetLastPInvokeError())}");
        }

        /// <summary>lstat/stat with nanosecond times; null when the path does not exist.</summary>
        public static Node? Stat(string path, bool follow)
        {
            byte[] b = new byte[256];
            if (statx(AtFdCwd, path, follow ? 0 : AtSymlinkNoFollow, 0x7FF, b) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is 2 or 20)
                    return null;
                throw new IOException($"{path}: {Strerror((Errno)errno)}");
            }
            static long Time(byte[] b, int at) => BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(at)) * 1_000_000_000 + BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at + 8));
            return new Node(BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(28)), BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(40)), Time(b, 64), Time(b, 112));
        }
    }
}
