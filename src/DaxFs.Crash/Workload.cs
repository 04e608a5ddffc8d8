namespace DaxFs.Crash;

/// <summary>One step of a workload: a call (or a short fixed sequence, such as map + store + persist + unmap) on a
/// volume, by path.</summary>
/// <param name="Name">What it does, precisely enough to reproduce it by hand.</param>
/// <param name="Run">The call. A <see cref="DaxFsException"/> is a result (the call failed and must change nothing).</param>
/// <param name="MakesDurable">Whether, on Page devices, everything before it is durable once it returns (fsync, sync).</param>
/// <param name="MappedPath">The file it stores into through a mapping, whose bytes may be a word-wise mix of before
/// and after when power fails in the middle; null otherwise.</param>
/// <param name="OverwritesPath">The file a write stores into: with <see cref="DataMode.InPlace"/> its bytes may be a
/// word-wise mix too.</param>
public sealed record CrashOp(string Name, Action<DaxVolume> Run, bool MakesDurable = false, string? MappedPath = null,
    string? OverwritesPath = null)
{
    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>A workload: setup steps (run before recording starts, made durable) and the recorded operations.</summary>
/// <param name="Id">Stable name ("ace1/17", "ace2/17+3", "random/seed").</param>
/// <param name="Setup">Steps run before recording.</param>
/// <param name="Ops">The recorded operations.</param>
public sealed record Workload(string Id, IReadOnlyList<CrashOp> Setup, IReadOnlyList<CrashOp> Ops)
{
    /// <summary>The operations, one per line, for a reproducer.</summary>
    public string Describe() =>
        string.Join("\n", Setup.Select(o => "  setup: " + o.Name).Concat(Ops.Select((o, i) => $"  op {i}: {o.Name}")));
}

/// <summary>Ops -- the core operations the workloads are made of.</summary>
public static class Ops
{
    /// <summary>A deterministic byte pattern for writes, different for each <paramref name="tag"/> and never all zero.</summary>
    public static byte[] Pattern(int length, int tag) =>
        s_patterns.GetOrAdd((length, tag), k => MakePattern(k.Length, k.Tag));

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int Length, int Tag), byte[]> s_patterns = new();

    private static byte[] MakePattern(int length, int tag)
    {
        var b = new byte[length];
        uint x = 0x9E3779B9u ^ (uint)tag * 0x85EBCA6Bu;
        for (int i = 0; i < length; i++)
        {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b[i] = (byte)(x | 1);
        }
        return b;
    }

    /// <summary>create(2) of an empty file.</summary>
    public static CrashOp Create(string path) => new($"create {path}", v => v.CreateFile(path, exclusive: true).Dispose());

    /// <summary>mkdir(2).</summary>
    public static CrashOp Mkdir(string path) => new($"mkdir {path}", v => v.CreateDirectory(path));

    /// <summary>pwrite(2) of a pattern.</summary>
    public static CrashOp Write(string path, long offset, int length, int tag) =>
        new($"write {path} [{offset}, +{length}) pattern {tag}", v =>
        {
            using var f = v.OpenFile(path);
            f.Write(offset, Pattern(length, tag));
        }, OverwritesPath: path);

    /// <summary>Append a pattern at the size.</summary>
    public static CrashOp Append(string path, int length, int tag) =>
        new($"append {path} +{length} pattern {tag}", v =>
        {
            using var f = v.OpenFile(path);
            f.Append(Pattern(length, tag));
        });

    /// <summary>truncate(2).</summary>
    public static CrashOp Truncate(string path, long size) =>
        new($"truncate {path} to {size}", v =>
        {
            using var f = v.OpenFile(path);
            f.SetLength(size);
        });

    /// <summary>fallocate(2) with a mode.</summary>
    public static CrashOp Fallocate(string path, FallocateMode mode, long offset, long length) =>
        new($"fallocate {path} {mode} [{offset}, +{length})", v =>
        {
            using var f = v.OpenFile(path);
            f.Fallocate(mode, offset, length);
        });

    /// <summary>link(2).</summary>
    public static CrashOp Link(string from, string to) => new($"link {from} {to}", v => v.Link(from, to));

    /// <summary>unlink(2).</summary>
    public static CrashOp Unlink(string path) => new($"unlink {path}", v => v.Delete(path));

    /// <summary>rmdir(2).</summary>
    public static CrashOp Rmdir(string path) => new($"rmdir {path}", v => v.DeleteDirectory(path));

    /// <summary>rename(2) / renameat2(2).</summary>
    public static CrashOp Rename(string from, string to, RenameFlags flags = RenameFlags.None) =>
        new($"rename {from} {to}" + (flags == RenameFlags.None ? "" : $" {flags}"), v => v.Rename(from, to, flags));

    /// <summary>symlink(2).</summary>
    public static CrashOp Symlink(string path, string target) =>
        new($"symlink {path} -> {(target.Length > 40 ? target[..20] + $"...({target.Length} bytes)" : target)}", v => v.Symlink(path, target));

    /// <summary>chmod/chown/utimens.</summary>
    public static CrashOp SetAttr(string path, SetAttributes changes, string what) =>
        new($"setattr {path} {what}", v => v.SetAttributes(v.Resolve(path), changes));

    /// <summary>setxattr(2).</summary>
    public static CrashOp SetXattr(string path, string name, int length, int tag) =>
        new($"setxattr {path} {name} ({length} bytes, pattern {tag})", v => v.SetXattr(v.Resolve(path), name, Pattern(length, tag)));

    /// <summary>removexattr(2).</summary>
    public static CrashOp RemoveXattr(string path, string name) =>
        new($"removexattr {path} {name}", v => v.RemoveXattr(v.Resolve(path), name));

    /// <summary>fsync(2).</summary>
    public static CrashOp Fsync(string path) =>
        new($"fsync {path}", v =>
        {
            using var f = v.OpenFile(path);
            f.Flush();
        }, MakesDurable: true);

    /// <summary>sync(2).</summary>
    public static CrashOp Sync() => new("sync", v => v.Sync(), MakesDurable: true);

    /// <summary>Map [offset, +length) in Sync mode (MAP_SYNC), store a pattern at [storeAt, +storeLength) through the
    /// mapping with plain stores, Persist it, unmap.</summary>
    public static CrashOp SyncMapStore(string path, long offset, long length, int storeAt, int storeLength, int tag) =>
        new($"map-sync {path} [{offset}, +{length}) store [{storeAt}, +{storeLength}) pattern {tag} + persist", v =>
        {
            using var f = v.OpenFile(path);
            using var m = f.Map(offset, length, MapAccess.ReadWrite, MapMode.Sync);
            Pattern(storeLength, tag).CopyTo(m.GetSpan(storeAt, storeLength));
            m.Persist(storeAt, storeLength);
        }, MappedPath: path);

    /// <summary>Map [offset, +length) in Async mode, store a pattern through it, fsync, unmap.</summary>
    public static CrashOp AsyncMapStore(string path, long offset, long length, int storeAt, int storeLength, int tag) =>
        new($"map-async {path} [{offset}, +{length}) store [{storeAt}, +{storeLength}) pattern {tag} + fsync", v =>
        {
            using var f = v.OpenFile(path);
            using var m = f.Map(offset, length, MapAccess.ReadWrite, MapMode.Async);
            Pattern(storeLength, tag).CopyTo(m.GetSpan(storeAt, storeLength));
            f.Flush();
        }, MakesDurable: true, MappedPath: path);

    /// <summary>A symlink target longer than the inode's inline area (stored in a block).</summary>
    public static string LongTarget => "../" + string.Concat(Enumerable.Repeat("long-target/", 30)) + "end";
}
