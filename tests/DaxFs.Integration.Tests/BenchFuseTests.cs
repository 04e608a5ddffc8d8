using System.Text.Json;
using DaxFs.Bench;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Integration.Tests;

/// <summary>`daxfs bench fuse --quick` runs end to end through the CLI (in-process mount on emulated pmem, fio on the
/// mount and on tmpfs) and reports every figure with its tmpfs anchor and the ratio, in the JSON shape of the other
/// suites; the 1 MiB sequential rows carry the ">= 0.5" target. A smoke run: no performance assertion.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class BenchFuseTests(ITestOutputHelper output)
{
    private static readonly string[] Expected =
    [
        "randwrite_4KiB_qd1", "randread_4KiB_qd1", "randwrite_4KiB_qd16x4", "randread_4KiB_qd16x4", "seqwrite_1MiB", "seqread_1MiB",
        "randread_4KiB_qd1_direct", "seqread_1MiB_direct", "create_500_files", "stat_500_files", "unlink_500_files",
    ];

    [Fact]
    public void QuickRunThroughTheCliReportsEveryFigureAgainstTmpfs() => Hard.Run(TimeSpan.FromSeconds(150), () =>
    {
        string json = Path.Combine(Path.GetTempPath(), $"daxfs-it-bench-fuse-{Environment.ProcessId}.json");
        try
        {
            Proc.Result r = Cli.Run(TimeSpan.FromSeconds(140), "bench", "fuse", "--quick", "--json", json);
            output.WriteLine(r.Out);
            Assert.True(r.Exit == 0, r.Describe("daxfs bench fuse --quick"));
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            JsonElement root = doc.RootElement;
            Assert.Equal("fuse", root.GetProperty("suite").GetString());
            var results = root.GetProperty("results").EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!);
            Assert.Equal(Expected.Order(), results.Keys.Order());
            foreach (var (name, e) in results)
            {
                foreach (string key in new[] { "name", "unit", "value", "anchor", "anchor_value", "ratio", "target" })
                    Assert.True(e.TryGetProperty(key, out _), $"{name} lacks '{key}'");
                double value = e.GetProperty("value").GetDouble(), anchor = e.GetProperty("anchor_value").GetDouble();
                Assert.True(value > 0 && anchor > 0, $"{name}: {value} vs {anchor}");
                Assert.Equal(Math.Round(value / anchor, 3), e.GetProperty("ratio").GetDouble(), 3);
                Assert.StartsWith("kernel tmpfs", e.GetProperty("anchor").GetString(), StringComparison.Ordinal);
            }
            Assert.Equal(">= 0.5", results["seqread_1MiB"].GetProperty("target").GetString());
            Assert.Equal(">= 0.5", results["seqwrite_1MiB"].GetProperty("target").GetString());
            Assert.Equal("MiB/s", results["seqwrite_1MiB"].GetProperty("unit").GetString());
            Assert.Equal("IOPS", results["randwrite_4KiB_qd16x4"].GetProperty("unit").GetString());
            Assert.Equal(JsonValueKind.Null, results["randread_4KiB_qd1"].GetProperty("target").ValueKind);
            Assert.Contains("fio-", root.GetProperty("environment").GetProperty("fio").GetString(), StringComparison.Ordinal);
            Assert.Contains("file data by direct I/O", root.GetProperty("environment").GetProperty("mount").GetString(), StringComparison.Ordinal);
            // Nothing left behind: no mount, no volume, no tmpfs directory.
            Assert.DoesNotContain(File.ReadLines("/proc/self/mounts"), l => l.Contains("daxfs-bench", StringComparison.Ordinal));
            Assert.Empty(Directory.EnumerateFileSystemEntries("/dev/shm", "daxfs-bench-fuse-*"));
        }
        finally
        {
            File.Delete(json);
        }
    });

    [Fact]
    public void TheSuiteRefusesADirectoryThatIsNotTmpfs()
    {
        var e = Assert.Throws<BenchException>(() => FuseSuite.Run(new FuseSuiteOptions((_, _) => throw new InvalidOperationException("not reached"),
            Directory: "/proc", Quick: true)));
        Assert.Contains("not tmpfs", e.Message, StringComparison.Ordinal);
    }
}
