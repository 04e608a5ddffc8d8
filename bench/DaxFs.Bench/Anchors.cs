using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;

namespace DaxFs.Bench;

/// <summary>Anchors -- the C programs a suite compares against: their sources are embedded in this assembly,
/// written out and compiled with gcc on first use (cached by source hash), then run.</summary>
public static class Anchors
{
    /// <summary>Compiles anchors/<paramref name="name"/>.c with <paramref name="libraries"/> and returns the binary's
    /// path. Throws <see cref="BenchException"/> with the package to install when gcc or a library is missing.</summary>
    public static string Build(string name, params string[] libraries) => Compile(name, shared: false, libraries);

    /// <summary>Compiles anchors/<paramref name="name"/>.c into a shared library (lib<paramref name="name"/>.so) for
    /// the suite to load into its own process; returns its path. Errors as <see cref="Build"/>.</summary>
    public static string BuildLibrary(string name, params string[] libraries) => Compile(name, shared: true, libraries);

    private static readonly Dictionary<string, nint> Loaded = [];

    /// <summary>The address of <paramref name="symbol"/> in the shared library at <paramref name="library"/> (built by
    /// <see cref="BuildLibrary"/>), loaded into this process once.</summary>
    public static nint Export(string library, string symbol)
    {
        nint handle;
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(library, out handle))
                Loaded[library] = handle = System.Runtime.InteropServices.NativeLibrary.Load(library);
        }
        return System.Runtime.InteropServices.NativeLibrary.GetExport(handle, symbol);
    }

    private static string Compile(string name, bool shared, string[] libraries)
    {
        string resource = $"anchors/{name}.c";
        using Stream? s = typeof(Anchors).Assembly.GetManifestResourceStream(resource)
            ?? throw new BenchException($"anchor source {resource} is not embedded in {typeof(Anchors).Assembly.GetName().Name}");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        byte[] source = ms.ToArray();
        string hash = Convert.ToHexString(SHA256.HashData(source))[..16].ToLowerInvariant();
        string dir = Path.Combine(Path.GetTempPath(), "daxfs-anchors", hash);
        string binary = Path.Combine(dir, shared ? $"lib{name}.so" : name);
        if (File.Exists(binary))
            return binary;
        Directory.CreateDirectory(dir);
        string src = Path.Combine(dir, name + ".c");
        File.WriteAllBytes(src, source);
        string libs = string.Join(' ', libraries.Select(l => "-l" + l));
        var (code, output) = Run("gcc", $"-O2 -Wall {(shared ? "-shared -fPIC " : "")}-o {binary}.tmp {src} {libs}", null, TimeSpan.FromMinutes(2));
        if (code != 0)
        {
            string hint = libraries.Contains("pmem") && output.Contains("libpmem.h", StringComparison.Ordinal)
                ? " (install PMDK's headers: apt-get install -y libpmem-dev)" : "";
            throw new BenchException($"cannot build anchor {name}{hint}: gcc said: {output.Trim()}");
        }
        File.Move(binary + ".tmp", binary, overwrite: true);
        return binary;
    }

    /// <summary>Runs the PMDK anchor <paramref name="binary"/> on its own file <paramref name="path"/> (deleted before
    /// and after) with <paramref name="args"/> after the path and <c>PMEM_IS_PMEM_FORCE=1</c>; returns its
    /// "metric size value" lines as "metric size" to value. A failed run throws <see cref="BenchException"/>.</summary>
    public static Dictionary<string, double> RunPmdk(string binary, string path, string args, TimeSpan timeout)
    {
        File.Delete(path);
        try
        {
            return RunPmdkOn(binary, path, args, timeout);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>As <see cref="RunPmdk"/>, on a file that exists and is left in place (`bench fs` runs the anchor's
    /// <c>existing</c> mode over the volume it has just measured DaxFS on).</summary>
    public static Dictionary<string, double> RunPmdkOn(string binary, string path, string args, TimeSpan timeout)
    {
        var (code, output) = Run(binary, $"{path} {args}", new Dictionary<string, string> { ["PMEM_IS_PMEM_FORCE"] = "1" }, timeout);
        if (code != 0)
            throw new BenchException($"the PMDK anchor failed (exit {code}): {output.Trim()}");
        var d = new Dictionary<string, double>();
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] f = line.Split(' ');
            if (f.Length == 3)
                d[$"{f[0]} {f[1]}"] = double.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture);
        }
        return d;
    }

    /// <summary>Runs a program to completion and returns its exit code and combined output.</summary>
    public static (int Code, string Output) Run(string file, string args, IDictionary<string, string>? env, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (env is not null)
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new BenchException($"cannot start {file}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BenchException($"cannot start {file}: {e.Message}" + (file == "gcc" ? " (apt-get install -y gcc)" : ""));
        }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(true);
                throw new BenchException($"{file} did not finish within {timeout}");
            }
            return (p.ExitCode, stdout + stderr.Result);
        }
    }
}

/// <summary>BenchException -- a benchmark could not run (missing tool, anchor failure); the message says what to do.</summary>
public sealed class BenchException(string message) : Exception(message);
