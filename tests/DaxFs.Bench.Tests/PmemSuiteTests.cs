using System.Text.Json;
using DaxFs.Bench;
using Xunit;

namespace DaxFs.Bench.Tests;

/// <summary>The pmem suite runs end to end (anchor built with gcc + libpmem, both sides measured) and reports every
/// figure with its anchor and ratio. A smoke run: small device, few iterations, no performance assertion.</summary>
public class PmemSuiteTests
{
    [Fact]
    public void QuickRunReportsEveryFigureAgainstItsAnchor()
    {
        var report = PmemSuite.Run(new PmemSuiteOptions(DeviceBytes: 64L << 20, Rounds: 1, IterationPercent: 2));
        Assert.Equal("pmem", report.Suite);
        string[] expected =
        [
            "copy_persist_64B", "copy_persist_256B", "copy_persist_4KiB", "copy_persist_64KiB", "copy_persist_2MiB",
            "persist_64B", "persist_256B", "persist_4KiB", "persist_64KiB", "persist_2MiB",
            "copy_persist_stream", "persist_whole_device", "flush_dirty_one_4KiB", "nontemporal_crossover",
        ];
        foreach (string name in expected)
            Assert.Contains(report.Results, r => r.Name == name);
        foreach (var r in report.Results)
            Assert.True(r.Value > 0, $"{r.Name} = {r.Value}");
        foreach (var r in report.Results.Where(r => r.Name.StartsWith("copy_persist_", StringComparison.Ordinal)))
        {
            Assert.NotNull(r.AnchorValue);
            Assert.True(r.AnchorValue > 0);
            // Values and ratios are rounded separately (to significant figures): equal within rounding.
            double expectedRatio = r.Value / r.AnchorValue!.Value;
            Assert.NotNull(r.Ratio);
            Assert.Equal(expectedRatio, r.Ratio!.Value, 0.002 + expectedRatio * 0.005);
        }
        // Only a dirty 2 MiB extent is flushed, never the whole device.
        var dirty = report.Results.Single(r => r.Name == "flush_dirty_one_4KiB");
        Assert.Equal("DaxFS whole-device flush", dirty.Anchor);

        using var doc = JsonDocument.Parse(report.ToJson());
        Assert.Equal("pmem", doc.RootElement.GetProperty("suite").GetString());
        var first = doc.RootElement.GetProperty("results")[0];
        foreach (string key in new[] { "name", "unit", "value", "anchor", "anchor_value", "ratio" })
            Assert.True(first.TryGetProperty(key, out _), $"JSON result lacks '{key}'");
    }

    [Fact]
    public void TargetsAreJudged()
    {
        Assert.True(BenchResult.Compared("x", "ns", 110, "a", 100, "<= 1.2").Met);
        Assert.False(BenchResult.Compared("x", "ns", 130, "a", 100, "<= 1.2").Met);
        Assert.True(BenchResult.Compared("x", "GiB/s", 96, "a", 100, ">= 0.95").Met);
        Assert.False(BenchResult.Compared("x", "GiB/s", 90, "a", 100, ">= 0.95").Met);
        Assert.Null(BenchResult.Alone("x", "ns", 1).Met);
    }
}
