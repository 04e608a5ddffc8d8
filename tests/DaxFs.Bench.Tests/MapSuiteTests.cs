using System.Text.Json;
using DaxFs.Bench;
using Xunit;

namespace DaxFs.Bench.Tests;

/// <summary>The map suite runs end to end (PMDK anchor built with gcc + libpmem, all three dirty-tracking policies, PMD and
/// PTE mappings) and reports every figure with its anchor, ratio and the backing it ran on. A smoke run: tiny files,
/// few iterations, no performance assertion.</summary>
public class MapSuiteTests
{
    [Fact]
    public void QuickRunReportsEveryFigure()
    {
        var o = new MapSuiteOptions(FileBytes: 8 << 20, MidFileBytes: 2 << 20, Rounds: 1, IterationPercent: 2);
        var report = MapSuite.Run(o);
        Assert.Equal("map", report.Suite);
        var expected = new List<string>();
        foreach (string p in new[] { "extent", "page", "pagefault" })
        {
            expected.AddRange([
                $"flush_whole_mapping_8MiB_{p}_volume", $"fsync_one_4KiB_{p}", $"fsync_one_4KiB_{p}_8MiB_vs_2MiB_mapping",
                $"fsync_nothing_dirty_{p}", $"first_store_clean_page_{p}", $"first_store_added_cost_{p}",
                $"fsync_one_4KiB_{p}_2MiB_window_of_8MiB_file_vs_2MiB_file",
            ]);
            expected.AddRange(MapSuite.CurveSizes.Where(s => s <= o.FileBytes).Select(s => $"fsync_dirty_{Timing.SizeName(s)}_{p}"));
        }
        expected.AddRange([
            "fsync_one_4KiB_page_vs_target", "fsync_one_4KiB_pagefault_vs_target",
            "random_load_8B_pmd", "random_load_8B_dependent_pmd", "random_load_8B_pmd_mapped_bytes_pmd", "random_load_8B_pmd_mapped_bytes_pte",
            "random_load_8B_pmd_vs_misaligned_file", "random_load_8B_dependent_pmd_vs_misaligned_file",
            "random_load_8B_pmd_mapped_bytes_misaligned_file",
            "map_write_persist_unmap_2MiB_pmd", "map_write_persist_unmap_2MiB_pmd_latency", "map_write_persist_unmap_2MiB_pte_latency",
            "map_write_persist_unmap_2MiB_pmd_mapped_bytes_pmd", "map_write_persist_unmap_2MiB_pmd_mapped_bytes_pte",
            "store_persist_64B", "copy_persist_64B", "store_persist_64B_pmd_mapped_bytes_daxfs", "store_persist_64B_pmd_mapped_bytes_pmdk",
            "store_persist_64B_vs_own_file",
        ]);
        foreach (string name in expected)
            Assert.Contains(report.Results, r => r.Name == name);
        Assert.Equal(expected.Count, report.Results.Count);
        foreach (var r in report.Results)
        {
            Assert.True(double.IsFinite(r.Value), $"{r.Name} = {r.Value}");
            if (r.Unit != "bytes" && !r.Name.StartsWith("first_store_added_cost_", StringComparison.Ordinal))
                Assert.True(r.Value > 0, $"{r.Name} = {r.Value}");
            if (r.Anchor is not null)
            {
                Assert.True(r.AnchorValue > 0, $"{r.Name}: anchor {r.AnchorValue}");
                // Values and ratios are rounded separately (to significant figures): equal within rounding.
                double expectedRatio = r.Value / r.AnchorValue!.Value;
                Assert.NotNull(r.Ratio);
                Assert.Equal(expectedRatio, r.Ratio!.Value, 0.002 + expectedRatio * 0.005);
            }
        }
        Assert.Contains("same mapping", report.Results.Single(r => r.Name == "store_persist_64B").Anchor);
        Assert.Contains("its own file", report.Results.Single(r => r.Name == "store_persist_64B_vs_own_file").Anchor);
        // Every target of the issue is judged.
        foreach (string name in new[] { "fsync_one_4KiB_page_vs_target", "fsync_one_4KiB_pagefault_vs_target",
                     "fsync_one_4KiB_extent_2MiB_window_of_8MiB_file_vs_2MiB_file", "fsync_one_4KiB_page_8MiB_vs_2MiB_mapping",
                     "fsync_one_4KiB_page_2MiB_window_of_8MiB_file_vs_2MiB_file", "fsync_one_4KiB_pagefault_2MiB_window_of_8MiB_file_vs_2MiB_file",
                     "fsync_one_4KiB_pagefault_8MiB_vs_2MiB_mapping", "random_load_8B_pmd", "map_write_persist_unmap_2MiB_pmd", "store_persist_64B" })
            Assert.NotNull(report.Results.Single(r => r.Name == name).Met);
        // The extent policy's fsync follows the mapping by construction: no target on that row.
        Assert.Null(report.Results.Single(r => r.Name == "fsync_one_4KiB_extent_8MiB_vs_2MiB_mapping").Target);
        // The small-pages mapping and the misaligned file really are PTE-mapped; on huge pages the aligned one is
        // PMD-mapped (read back from smaps).
        Assert.Equal(0, report.Results.Single(r => r.Name == "random_load_8B_pmd_mapped_bytes_pte").Value);
        Assert.Equal(0, report.Results.Single(r => r.Name == "random_load_8B_pmd_mapped_bytes_misaligned_file").Value);
        Assert.Equal(0, report.Results.Single(r => r.Name == "map_write_persist_unmap_2MiB_pmd_mapped_bytes_pte").Value);
        if (report.Environment["huge_pages"] == "yes")
            Assert.Equal(2 << 20, report.Results.Single(r => r.Name == "map_write_persist_unmap_2MiB_pmd_mapped_bytes_pmd").Value);

        using var doc = JsonDocument.Parse(report.ToJson());
        Assert.Equal("map", doc.RootElement.GetProperty("suite").GetString());
        var env = doc.RootElement.GetProperty("environment");
        foreach (string key in new[] { "backing", "huge_pages", "extent_policy", "page_policy", "pagefault_policy", "map_statistics", "file_bytes" })
            Assert.True(env.TryGetProperty(key, out _), $"JSON environment lacks '{key}'");
        foreach (var r in doc.RootElement.GetProperty("results").EnumerateArray())
            foreach (string key in new[] { "name", "unit", "value", "anchor", "anchor_value", "ratio", "target", "met" })
                Assert.True(r.TryGetProperty(key, out _), $"JSON result lacks '{key}'");
        // Nothing is left mounted or behind.
        Assert.DoesNotContain($"daxfs-bench-map-huge-{Environment.ProcessId}", File.ReadAllText("/proc/mounts"), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles("/dev/shm", $"daxfs-bench-map-*{Environment.ProcessId}*"));
    }
}
