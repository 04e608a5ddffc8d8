using System.Text.Json;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>fio with verify=crc32c on the mount: sequential and random writes of 4 KiB and 1 MiB blocks (psync) and
/// 4 KiB random writes at queue depth 16 (libaio), 64 MiB each, every block read back and checked; fio exits 0 and
/// no job reports an error. After an unmount (fsck clean) and a remount, the same jobs in verify-only mode find
/// every block intact.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class FioTests(ITestOutputHelper output)
{
    private static readonly (string Name, string Rw, string Bs, string Engine, int Depth)[] Jobs =
    [
        ("seq-4k", "write", "4k", "psync", 1),
        ("rand-4k", "randwrite", "4k", "psync", 1),
        ("seq-1m", "write", "1m", "psync", 1),
        ("rand-1m", "randwrite", "1m", "psync", 1),
        ("rand-4k-qd16", "randwrite", "4k", "libaio", 16),
    ];

    private static string JobFile(string dir)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("[global]");
        sb.AppendLine($"directory={dir}");
        sb.AppendLine("size=64m");
        sb.AppendLine("verify=crc32c");
        sb.AppendLine("do_verify=1");
        sb.AppendLine("verify_fatal=1");
        sb.AppendLine("runtime=60");
        sb.AppendLine("randrepeat=1");
        foreach (var j in Jobs)
        {
            sb.AppendLine($"[{j.Name}]");
            sb.AppendLine($"rw={j.Rw}");
            sb.AppendLine($"bs={j.Bs}");
            sb.AppendLine($"ioengine={j.Engine}");
            sb.AppendLine($"iodepth={j.Depth}");
            sb.AppendLine("stonewall");
        }
        return sb.ToString();
    }

    private void RunFio(string jobFile, bool verifyOnly)
    {
        var args = new List<string> { "--output-format=json" };
        if (verifyOnly)
            args.Add("--verify_only");
        args.Add(jobFile);
        Proc.Result r = Proc.Run("fio", args, TimeSpan.FromSeconds(150));
        Assert.True(r.Exit == 0, r.Describe("fio" + (verifyOnly ? " --verify_only" : "")));
        using var doc = JsonDocument.Parse(r.Out[r.Out.IndexOf('{', StringComparison.Ordinal)..]);
        var jobs = doc.RootElement.GetProperty("jobs").EnumerateArray().ToList();
        Assert.Equal(Jobs.Length, jobs.Count);
        foreach (var j in jobs)
        {
            string name = j.GetProperty("jobname").GetString()!;
            Assert.True(j.GetProperty("error").GetInt32() == 0, $"fio job {name}: error {j.GetProperty("error").GetInt32()}\n{r.Err}");
            long written = j.GetProperty("write").GetProperty("io_bytes").GetInt64();
            long read = j.GetProperty("read").GetProperty("io_bytes").GetInt64();
            output.WriteLine($"{name}{(verifyOnly ? " (verify only)" : "")}: wrote {written >> 20} MiB at {j.GetProperty("write").GetProperty("iops").GetDouble():0} IOPS, verified {read >> 20} MiB");
            if (!verifyOnly)
                Assert.Equal(64L << 20, written);
            Assert.Equal(64L << 20, read);
        }
        Assert.DoesNotContain("verify", r.Err, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void VerifiedWritesAndReadsBack() => Hard.Run(TimeSpan.FromSeconds(240), () =>
    {
        using var v = new TestVolume("fio", output);
        v.MountInProcess();
        Directory.CreateDirectory(v.M("fio"));
        string jobFile = Path.Combine(v.Root, "verify.fio");
        File.WriteAllText(jobFile, JobFile(v.M("fio")));
        RunFio(jobFile, verifyOnly: false);
        v.UnmountInProcess();
        v.AssertFsckClean();
        v.MountInProcess();
        RunFio(jobFile, verifyOnly: true);
        v.UnmountInProcess();
    });
}
