using System.Text;
using DaxFs.Format;
using DaxFs.Pmem;
using DaxFs.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests.Corruption;

/// <summary>Collects the outcomes of a randomized corruption test, prints its seed and a summary, and fails with
/// every failing case (seed, offset, value) so that it can be reproduced.</summary>
internal sealed class FuzzReport(ITestOutputHelper output, string name, int baseSeed)
{
    private readonly List<string> _failures = [];
    private readonly List<(double Ms, string Case)> _slowest = [];
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private TimeSpan _last;
    private int _cases, _mounted, _mountCorrupted, _fsckClean, _fsckThrew;

    public void Add(CaseOutcome o, Func<string> describe)
    {
        TimeSpan now = _clock.Elapsed;
        double ms = (now - _last).TotalMilliseconds;
        _last = now;
        if (ms > 500)
            _slowest.Add((ms, describe()));
        _cases++;
        if (o.Mounted)
            _mounted++;
        if (o.MountCorrupted)
            _mountCorrupted++;
        if (o.FsckClean)
            _fsckClean++;
        if (o.FsckThrew)
            _fsckThrew++;
        if (!o.Ok)
        {
            string line = $"{describe()}: {o.Failure}";
            _failures.Add(line);
            output.WriteLine("FAILED " + line);
        }
    }

    public int Cases => _cases;

    /// <summary>Prints the summary and fails if any case failed.</summary>
    public void Finish()
    {
        string summary = $"{name}: base seed {baseSeed} (DAXFS_FUZZ_SEED={baseSeed} reruns these cases), {_cases} cases: " +
            $"{_mounted} mounted, {_mountCorrupted} refused as corrupted, fsck clean {_fsckClean}, fsck threw {_fsckThrew}, {_failures.Count} failed";
        output.WriteLine(summary + $" in {_clock.Elapsed.TotalSeconds:F1} s");
        while (FuzzHarness.SlowCases.TryDequeue(out string? slow))
            output.WriteLine("WARNING: " + slow);
        foreach (var (ms, c) in _slowest.OrderByDescending(x => x.Ms).Take(5))
            output.WriteLine($"slow case ({ms:F0} ms): {c}");
        if (_failures.Count > 0)
        {
            var sb = new StringBuilder(summary).AppendLine();
            foreach (string f in _failures.Take(15))
                sb.AppendLine(f.Length > 1500 ? f[..1500] + " ..." : f);
            Assert.Fail(sb.ToString());
        }
    }

    /// <summary>Names the structure at a device offset of an image (for the failure message).</summary>
    public static string Where(byte[] image, long offset)
    {
        try
        {
            using PmemDevice dev = TestVolumes.FromImage(image);
            Superblock sb = Media.Geometry(dev);
            long block = offset / Layout.BlockSize;
            if (offset < Superblock.Size)
                return $"primary superblock +{offset}";
            if (offset >= Media.BackupSuperblockOffset(dev))
                return $"backup superblock block +{offset - Media.BackupSuperblockOffset(dev)}";
            if (block == sb.JournalStart)
                return $"journal header +{offset - sb.JournalHeaderOffset}";
            if (block > sb.JournalStart && block < sb.InodeTableStart)
                return $"journal log +{offset - sb.LogOffset}";
            if (block >= sb.InodeTableStart && block < sb.InodeTableStart + sb.InodeTableBlocks)
            {
                long rel = offset - sb.InodeTableStart * Layout.BlockSize;
                return $"inode {rel / Layout.InodeSize + 1} +{rel % Layout.InodeSize}";
            }
            return $"data block {block} +{offset % Layout.BlockSize}";
        }
        catch (DaxFsException)
        {
            return "unknown (no valid superblock)";
        }
    }
}
