using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DaxFs.Pmem;

namespace DaxFs.Bench;

/// <summary>Settings of `daxfs bench fuse`.</summary>
/// <param name="Mount">Mounts a volume on a directory and returns the mount (disposing it unmounts) and how it serves
/// file data (direct I/O or the kernel's page cache). The bench project does not reference the FUSE layer;
/// `daxfs bench fuse` passes FuseMount + DaxVolumeFileSystem.</param>
/// <param name="Directory">tmpfs directory for the emulated-pmem volume and for the kernel side's files.</param>
/// <param name="Rounds">DaxFS/tmpfs alternations; figures are medians over rounds.</param>
/// <param name="Quick">A smoke run: small files, 1 s jobs, 500 files for the metadata jobs.</param>
public sealed record FuseSuiteOptions(Func<string, DaxVolume, (IDisposable Mount, string DataPath)> Mount, string Directory = "/dev/shm", int Rounds = 3, bool Quick = false)
{
    /// <summary>Bytes of each job's file (each of the 4 jobs of a queue-depth-16 job has its own).</summary>
    public long FileBytes => Quick ? 16L << 20 : 256L << 20;

    /// <summary>Seconds each throughput job runs (after a ramp of 1 s in a full run).</summary>
    public int RuntimeSeconds => Quick ? 1 : 4;

    /// <summary>Files created, stat'ed and unlinked by the metadata jobs.</summary>
    public int MetadataFiles => Quick ? 500 : 10_000;
}

/// <summary>FuseSuite -- the same fio jobs through a DaxFS FUSE mount (mounted in this process on an emulated-pmem
/// volume) and on a kernel tmpfs directory, alternating in one run: 4 KiB random read and write at queue depth 1
/// (psync) and 16 x 4 jobs (io_uring, or libaio where io_uring is refused), 1 MiB sequential read and write, and
/// create/stat/unlink of 10,000 files (fio's filecreate/filestat/filedelete engines, per-call latency). Ratios are
/// DaxFS / tmpfs: higher is better.</summary>
public static class FuseSuite
{
    /// <summary>A throughput job; jobs of one <paramref name="File"/> shape share their files (reads find them laid out).</summary>
    private sealed record Job(string Name, string File, string Unit, string Rw, int BlockSize, string Engine, int Depth, int Jobs, string? Target,
        bool Direct = false);

    /// <summary>Runs the suite.</summary>
    public static BenchReport Run(FuseSuiteOptions o, IProgress<(string Step, double Fraction)>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Rounds < 1)
            throw new ArgumentOutOfRangeException(nameof(o), o.Rounds, "at least one round");
        string fioVersion = FioVersion();
        string tmpfsType = FsType(o.Directory);
        if (tmpfsType != "tmpfs")
            throw new BenchException($"{o.Directory} is {tmpfsType}, not tmpfs: the anchor is the kernel's tmpfs (use --dir)");
        string id = $"{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
        string image = Path.Combine(o.Directory, $"daxfs-bench-fuse-{id}.img");
        string kernelDir = Path.Combine(o.Directory, $"daxfs-bench-fuse-tmpfs-{id}");
        string mountPoint = System.IO.Directory.CreateTempSubdirectory("daxfs-bench-fuse-").FullName;
        System.IO.Directory.CreateDirectory(kernelDir);
        string engine = ProbeEngine(kernelDir);
        Job[] jobs =
        [
            new("randwrite_4KiB_qd1", "qd1", "IOPS", "randwrite", 4096, "psync", 1, 1, null),
            new("randread_4KiB_qd1", "qd1", "IOPS", "randread", 4096, "psync", 1, 1, null),
            new("randwrite_4KiB_qd16x4", "qd16", "IOPS", "randwrite", 4096, engine, 16, 4, null),
            new("randread_4KiB_qd16x4", "qd16", "IOPS", "randread", 4096, engine, 16, 4, null),
            new("seqwrite_1MiB", "seq", "MiB/s", "write", 1 << 20, "psync", 1, 1, ">= 0.5"),
            new("seqread_1MiB", "seq", "MiB/s", "read", 1 << 20, "psync", 1, 1, ">= 0.5"),
            // With direct=0 a warm page cache serves reads on both sides; O_DIRECT makes every read reach the daemon.
            new("randread_4KiB_qd1_direct", "qd1", "IOPS", "randread", 4096, "psync", 1, 1, null, Direct: true),
            new("seqread_1MiB_direct", "seq", "MiB/s", "read", 1 << 20, "psync", 1, 1, null, Direct: true),
        ];
        string[] meta = ["filecreate", "filestat", "filedelete"];
        var dax = new Dictionary<string, List<double>>();
        var kernel = new Dictionary<string, List<double>>();
        long volumeBytes = o.FileBytes * 6 + (512L << 20);
        string device, dataPath;
        try
        {
            using var volume = DaxVolume.Create(image, volumeBytes, new PmemOpenOptions { EmulatePmem = true, Prefault = true });
            device = volume.Device.Info.ToString() ?? "";
            var (mount, path) = o.Mount(mountPoint, volume);
            dataPath = path;
            using (mount)
            {
                int steps = o.Rounds * (jobs.Length + 1) * 2, step = 0;
                for (int r = 0; r < o.Rounds; r++)
                {
                    for (int j = 0; j < jobs.Length; j++)
                    {
                        // Alternate which side goes first, so that neither always runs on a warmer machine.
                        bool daxFirst = (r + j) % 2 == 0;
                        foreach (bool onDax in daxFirst ? new[] { true, false } : [false, true])
                        {
                            progress?.Report(($"round {r + 1}/{o.Rounds}: {jobs[j].Name} on {(onDax ? "DaxFS" : "tmpfs")}", (double)step++ / steps));
                            double v = RunJob(jobs[j], onDax ? mountPoint : kernelDir, o);
                            Add(onDax ? dax : kernel, jobs[j].Name, v);
                        }
                    }
                    foreach (bool onDax in r % 2 == 0 ? new[] { true, false } : [false, true])
                    {
                        progress?.Report(($"round {r + 1}/{o.Rounds}: create/stat/unlink of {o.MetadataFiles} files on {(onDax ? "DaxFS" : "tmpfs")}", (double)step++ / steps));
                        string dir = Path.Combine(onDax ? mountPoint : kernelDir, $"meta-{r}");
                        System.IO.Directory.CreateDirectory(dir);
                        foreach (string e in meta)
                            Add(onDax ? dax : kernel, e, RunMetadata(e, dir, o));
                        System.IO.Directory.Delete(dir, recursive: true);
                    }
                }
                progress?.Report(("done", 1));
            }
        }
        finally
        {
            TryDelete(() => System.IO.Directory.Delete(kernelDir, recursive: true));
            TryDelete(() => File.Delete(image));
            TryDelete(() => System.IO.Directory.Delete(mountPoint, recursive: true));
        }
        const string anchor = "kernel tmpfs, same fio job";
        var results = new List<BenchResult>();
        foreach (Job j in jobs)
            results.Add(BenchResult.Compared(j.Name, j.Unit, Timing.Median(dax[j.Name]), anchor, Timing.Median(kernel[j.Name]), j.Target));
        string n = o.MetadataFiles.ToString(CultureInfo.InvariantCulture);
        results.Add(BenchResult.Compared($"create_{n}_files", "ops/s", Timing.Median(dax["filecreate"]), anchor + " (filecreate)", Timing.Median(kernel["filecreate"]), null));
        results.Add(BenchResult.Compared($"stat_{n}_files", "ops/s", Timing.Median(dax["filestat"]), anchor + " (filestat)", Timing.Median(kernel["filestat"]), null));
        results.Add(BenchResult.Compared($"unlink_{n}_files", "ops/s", Timing.Median(dax["filedelete"]), anchor + " (filedelete)", Timing.Median(kernel["filedelete"]), null));
        var env = new Dictionary<string, string>
        {
            ["device"] = device,
            ["mount"] = $"in-process FUSE mount (FuseMount + DaxVolumeFileSystem), file data by {dataPath}, emulated pmem on {o.Directory}",
            ["fio"] = $"{fioVersion}; {Sizes(o.FileBytes)} per job file, {o.RuntimeSeconds} s per job{(o.Quick ? "" : " after a 1 s ramp")}, " +
                $"queue-depth jobs with ioengine={engine}; direct=0 as for any program (reads on tmpfs, and through a " +
                "kernel-cached mount, then mostly hit the page cache) except the *_direct rows (O_DIRECT); metadata ops/s = 1e9 / mean latency of the call",
            ["rounds"] = o.Rounds.ToString(CultureInfo.InvariantCulture),
            ["ratio"] = "DaxFS / tmpfs (higher is better)",
            ["kernel"] = Environment.OSVersion.VersionString,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
        };
        return new BenchReport("fuse", results, env);
    }

    private static void Add(Dictionary<string, List<double>> d, string key, double v)
    {
        if (!d.TryGetValue(key, out var list))
            d[key] = list = [];
        list.Add(v);
    }

    private static string Sizes(long bytes) => bytes >= 1 << 20 ? $"{bytes >> 20} MiB" : $"{bytes} B";

    private static void TryDelete(Action a)
    {
        try
        {
            a();
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>One throughput job; IOPS or MiB/s of its direction.</summary>
    private static double RunJob(Job j, string dir, FuseSuiteOptions o)
    {
        var args = new List<string>
        {
            $"--name={j.Name}", $"--directory={dir}", $"--filename_format={j.File}.$jobnum", $"--rw={j.Rw}", $"--bs={j.BlockSize}", $"--ioengine={j.Engine}",
            $"--iodepth={j.Depth}", $"--numjobs={j.Jobs}", $"--size={o.FileBytes}", "--time_based", $"--runtime={o.RuntimeSeconds}",
            "--group_reporting", "--randrepeat=0", "--norandommap", j.Direct ? "--direct=1" : "--direct=0", "--output-format=json",
        };
        if (!o.Quick)
            args.Add("--ramp_time=1");
        JsonElement job = Fio(args);
        JsonElement side = job.GetProperty(j.Rw.Contains("read", StringComparison.Ordinal) ? "read" : "write");
        double v = j.Unit == "IOPS" ? side.GetProperty("iops").GetDouble() : side.GetProperty("bw_bytes").GetDouble() / (1 << 20);
        if (!(v > 0))
            throw new BenchException($"fio job {j.Name} in {dir} reported no {j.Unit}");
        return v;
    }

    /// <summary>create, stat or unlink of the metadata files; operations per second from the mean call latency.</summary>
    private static double RunMetadata(string engine, string dir, FuseSuiteOptions o)
    {
        JsonElement job = Fio([
            $"--name={engine}", $"--directory={dir}", "--filename_format=f.$filenum", $"--ioengine={engine}",
            $"--nrfiles={o.MetadataFiles}", "--filesize=4k", "--openfiles=1", "--create_on_open=1", "--fallocate=none",
            "--output-format=json",
        ]);
        JsonElement read = job.GetProperty("read");
        long ios = read.GetProperty("total_ios").GetInt64();
        if (ios != o.MetadataFiles)
            throw new BenchException($"fio {engine} in {dir} did {ios} operations, not {o.MetadataFiles}");
        double meanNs = read.GetProperty("clat_ns").GetProperty("mean").GetDouble();
        return meanNs > 0 ? 1e9 / meanNs : throw new BenchException($"fio {engine} in {dir} reported no latency");
    }

    private static JsonElement Fio(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("fio") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new BenchException("cannot start fio");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BenchException($"cannot start fio: {e.Message} (apt-get install -y fio)");
        }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
            {
                p.Kill(true);
                throw new BenchException($"fio {string.Join(' ', args)} did not finish within 5 minutes");
            }
            int start = stdout.IndexOf('{', StringComparison.Ordinal);
            if (p.ExitCode != 0 || start < 0)
                throw new BenchException($"fio {string.Join(' ', args)} failed (exit {p.ExitCode}): {stderr.Result.Trim()} {stdout.Trim()}".Trim());
            using var doc = JsonDocument.Parse(stdout[start..]);
            JsonElement job = doc.RootElement.GetProperty("jobs")[0].Clone();
            if (job.GetProperty("error").GetInt32() != 0)
                throw new BenchException($"fio {string.Join(' ', args)}: job error {job.GetProperty("error").GetInt32()}: {stderr.Result.Trim()}");
            return job;
        }
    }

    private static string FioVersion()
    {
        try
        {
            var (code, output) = Anchors.Run("fio", "--version", null, TimeSpan.FromSeconds(30));
            return code == 0 ? output.Trim() : throw new BenchException($"fio --version failed: {output.Trim()}");
        }
        catch (BenchException e) when (e.Message.StartsWith("cannot start", StringComparison.Ordinal))
        {
            throw new BenchException("fio is not installed (apt-get install -y fio)");
        }
    }

    /// <summary>io_uring when the kernel lets this process use it, libaio otherwise.</summary>
    private static string ProbeEngine(string dir)
    {
        try
        {
            Fio([$"--name=probe", $"--directory={dir}", "--rw=read", "--bs=4k", "--size=64k", "--ioengine=io_uring", "--iodepth=2",
                "--output-format=json"]);
            return "io_uring";
        }
        catch (BenchException)
        {
            return "libaio";
        }
        finally
        {
            foreach (string f in System.IO.Directory.EnumerateFiles(dir, "probe*"))
                File.Delete(f);
        }
    }

    private static string FsType(string dir)
    {
        var (code, output) = Anchors.Run("stat", $"-f -c %T {dir}", null, TimeSpan.FromSeconds(10));
        return code == 0 ? output.Trim() : throw new BenchException($"cannot stat {dir}: {output.Trim()}");
    }
}
