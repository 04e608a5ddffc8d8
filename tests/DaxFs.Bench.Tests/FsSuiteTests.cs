using System.Text.Json;
using DaxFs.Bench;
using Xunit;

namespace DaxFs.Bench.Tests;

/// <summary>The fs suite runs end to end (kernel and PMDK anchors built with gcc, DaxFS on emulated pmem) and reports
/// every figure with its anchor and ratio, the targets judged. A smoke run: few iterations, no performance
/// assertion.</summary>
public class FsSuiteTests
{
    [Fact]
    public void QuickRunReportsEveryFigure()
    {
        var report = FsSuite.Run(new FsSuiteOptions(Rounds: 1, IterationPercent: 2));
        Assert.Equal("fs", report.Suite);
        string[] expected =
        [
            "overwrite_4KiB", "overwrite_4KiB_inplace", "append_4KiB", "create", "unlink", "rename", "sequential_write",
            "overwrite_4KiB_vs_kernel", "append_4KiB_vs_kernel", "sequential_write_vs_kernel", "cow_floor_4KiB",
            "cow_floor_line_4KiB", "overwrite_4KiB_vs_cow_floor", "persist_then_locked_op_4KiB",
            "overwrite_4KiB_inplace_vs_locked_persist", "append_floor_locked_4KiB", "append_4KiB_vs_locked_floor",
            "overwrite_4KiB_vs_pmdk_process", "append_4KiB_vs_pmdk_process",
        ];
        Assert.Equal(expected.Order(), report.Results.Select(r => r.Name).Order());
        foreach (BenchResult r in report.Results)
        {
            Assert.True(r.Value > 0 && double.IsFinite(r.Value), $"{r.Name} = {r.Value}");
            Assert.True(r.AnchorValue > 0, $"{r.Name}: anchor {r.AnchorValue}");
            double ratio = r.Value / r.AnchorValue!.Value;
            Assert.Equal(ratio, r.Ratio!.Value, 0.002 + ratio * 0.005);
        }
        foreach (string name in new[] { "overwrite_4KiB", "overwrite_4KiB_inplace", "append_4KiB", "create", "unlink", "sequential_write" })
            Assert.NotNull(report.Results.Single(r => r.Name == name).Met);
        // The floor is at least the raw persist it contains.
        Assert.True(report.Results.Single(r => r.Name == "cow_floor_4KiB").Ratio > 0.8);
        Assert.True(report.Results.Single(r => r.Name == "cow_floor_line_4KiB").Ratio > 0.8);
        // The targets are judged against PMDK running in this process, call by call with DaxFS.
        Assert.Contains("in this process", report.Results.Single(r => r.Name == "overwrite_4KiB").Anchor);
        Assert.Contains("in this process", report.Results.Single(r => r.Name == "append_4KiB").Anchor);
        Assert.Contains("in this process", report.Results.Single(r => r.Name == "overwrite_4KiB_inplace").Anchor);
        using var doc = JsonDocument.Parse(report.ToJson());
        Assert.Equal("fs", doc.RootElement.GetProperty("suite").GetString());
        Assert.Empty(Directory.GetFiles("/dev/shm", $"daxfs-bench-fs-{Environment.ProcessId}*"));
    }
}
