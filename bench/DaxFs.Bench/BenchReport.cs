using System.Text.Json;
using System.Text.Json.Serialization;

namespace DaxFs.Bench;

/// <summary>One measured figure, beside the anchor it is compared with in the same run.</summary>
/// <param name="Name">What was measured, e.g. "copy_persist_4KiB".</param>
/// <param name="Unit">"ns", "us", "GiB/s", "bytes".</param>
/// <param name="Value">The DaxFS figure.</param>
/// <param name="Anchor">What it is compared with, e.g. "pmem_memcpy_persist"; null when nothing is.</param>
/// <param name="AnchorValue">The anchor's figure in the same unit.</param>
/// <param name="Ratio">Value / AnchorValue.</param>
/// <param name="Target">The target for the ratio, e.g. "&lt;= 1.2"; null when none.</param>
public sealed record BenchResult(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("unit")] string Unit,
    [property: JsonPropertyName("value")] double Value,
    [property: JsonPropertyName("anchor")] string? Anchor,
    [property: JsonPropertyName("anchor_value")] double? AnchorValue,
    [property: JsonPropertyName("ratio")] double? Ratio,
    [property: JsonPropertyName("target")] string? Target)
{
    /// <summary>A figure with an anchor; the ratio is computed.</summary>
    public static BenchResult Compared(string name, string unit, double value, string anchor, double anchorValue, string? target) =>
        new(name, unit, Math.Round(value, 3), anchor, Math.Round(anchorValue, 3),
            anchorValue > 0 ? Math.Round(value / anchorValue, 3) : null, target);

    /// <summary>A figure without an anchor.</summary>
    public static BenchResult Alone(string name, string unit, double value) => new(name, unit, Math.Round(value, 3), null, null, null, null);

    /// <summary>A figure measured in rounds, each beside its anchor's: the medians are compared, the rounds kept.</summary>
    public static BenchResult Compared(string name, string unit, IReadOnlyList<double> rounds, string anchor, IReadOnlyList<double> anchorRounds,
        string? target) =>
        Compared(name, unit, Timing.Median(rounds), anchor, Timing.Median(anchorRounds), target) with
        {
            RoundValues = Rounded(rounds),
            AnchorRoundValues = Rounded(anchorRounds),
        };

    /// <summary>A figure measured in rounds, without an anchor: the median, the rounds kept.</summary>
    public static BenchResult Alone(string name, string unit, IReadOnlyList<double> rounds) =>
        Alone(name, unit, Timing.Median(rounds)) with { RoundValues = Rounded(rounds) };

    private static double[] Rounded(IReadOnlyList<double> values) => values.Select(x => Math.Round(x, 3)).ToArray();

    /// <summary>The figure of each round, when the suite keeps them (the value is their median).</summary>
    [JsonPropertyName("round_values")]
    public IReadOnlyList<double>? RoundValues { get; init; }

    /// <summary>The anchor's figure of each round, when the suite keeps them.</summary>
    [JsonPropertyName("anchor_round_values")]
    public IReadOnlyList<double>? AnchorRoundValues { get; init; }

    /// <summary>Spread of the rounds: (max - min) / 2 / |median| of <see cref="RoundValues"/> (0.05 = ±5%); null without
    /// round values.</summary>
    [JsonPropertyName("spread")]
    public double? Spread => RoundValues is not { Count: > 0 } v || Value == 0 ? null : Math.Round((v.Max() - v.Min()) / 2 / Math.Abs(Value), 3);

    /// <summary>Whether the ratio meets the target ("&lt;= x" or "&gt;= x"); null when there is no target.</summary>
    [JsonPropertyName("met")]
    public bool? Met => Target is null || Ratio is null ? null
        : Target.StartsWith("<=", StringComparison.Ordinal) ? Ratio <= double.Parse(Target[2..], System.Globalization.CultureInfo.InvariantCulture)
        : Ratio >= double.Parse(Target[2..], System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A suite's results and the facts of the run (device, CPU choices, what backs the anchor).</summary>
/// <param name="Suite">"pmem", "fs", "map", "fuse".</param>
/// <param name="Results">Every figure.</param>
/// <param name="Environment">Facts of the run: device line, kernel, date.</param>
public sealed record BenchReport(
    [property: JsonPropertyName("suite")] string Suite,
    [property: JsonPropertyName("results")] IReadOnlyList<BenchResult> Results,
    [property: JsonPropertyName("environment")] IReadOnlyDictionary<string, string> Environment)
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    /// <summary>The report as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Options);
}
