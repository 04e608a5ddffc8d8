using DaxFs.Pmem;

namespace DaxFs.Pmem.Tests;

/// <summary>Scratch files for device tests, on tmpfs (/dev/shm) and on the root file system, removed on dispose.</summary>
public sealed class ScratchDir : IDisposable
{
    public string Path { get; }

    public ScratchDir(string root)
    {
        Path = System.IO.Path.Combine(root, "daxfs-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public static ScratchDir Tmpfs() => new("/dev/shm");

    public static ScratchDir RootFs() => new("/var/tmp");

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}

/// <summary>Options that read environment switches from a dictionary instead of the process.</summary>
public static class Env
{
    public static PmemOpenOptions With(params (string Key, string Value)[] vars)
    {
        var d = vars.ToDictionary(v => v.Key, v => v.Value);
        return new PmemOpenOptions { Environment = k => d.TryGetValue(k, out string? v) ? v : null };
    }

    /// <summary>An emulated-pmem in-memory device that ignores the process environment.</summary>
    public static PmemDevice EmulatedMemory(long length, FlushInstruction? flush = null, int? threshold = null) =>
        PmemDevice.CreateInMemory(length, With() with { EmulatePmem = true, Flush = flush, NonTemporalThreshold = threshold });
}
