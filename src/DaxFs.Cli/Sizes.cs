using System.Globalization;

namespace DaxFs.Cli;

/// <summary>Sizes -- "64M", "1GiB", "4096", "2g" to bytes, and bytes to "1.0 GiB".</summary>
public static class Sizes
{
    /// <summary>Parses a size with an optional K/M/G/T suffix (powers of 1024, "iB"/"B" optional).</summary>
    public static long Parse(string text)
    {
        var m = System.Text.RegularExpressions.Regex.Match(text.Trim(), @"^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?$",
            System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        if (!m.Success)
            throw new UsageException($"'{text}' is not a size (examples: 64M, 1G, 2GiB, 1048576)");
        double v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        long mult = m.Groups[2].Value.ToUpperInvariant() switch { "K" => 1L << 10, "M" => 1L << 20, "G" => 1L << 30, "T" => 1L << 40, _ => 1 };
        double bytes = v * mult;
        if (bytes < 1 || bytes > long.MaxValue / 2)
            throw new UsageException($"size '{text}' is out of range");
        return (long)bytes;
    }

    /// <summary>Bytes as a short human string.</summary>
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? $"{bytes} B" : v.ToString(v >= 100 ? "0" : "0.0", CultureInfo.InvariantCulture) + " " + units[u];
    }
}

/// <summary>UsageException -- the command line was wrong (exit code 2).</summary>
public sealed class UsageException(string message) : Exception(message);
