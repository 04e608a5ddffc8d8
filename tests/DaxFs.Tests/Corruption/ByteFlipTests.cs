using Xunit;
using Xunit.Abstractions;

namespace DaxFs.Tests.Corruption;

/// <summary>Single-byte corruptions of a real image: a byte at a random offset (60% of the time inside metadata:
/// superblocks, journal, used inode slots, log/xattr/symlink blocks; otherwise anywhere) set to a random other value.
/// Mount (then every file read, every directory listed) and fsck (and fsck --repair) must only ever fail with
/// DaxFS exceptions, never hang, and agree with each other.</summary>
public class ByteFlipTests(ITestOutputHelper output)
{
    /// <summary>Cases per image kind (with the garbage and checksummed-mutation tests: 1,000 in CI).</summary>
    public const int CleanCases = 350;
    public const int CrashCases = 250;

    [Fact]
    public void FlipsOfACleanImageFailCleanly() =>
        RunFlips("clean", RichImage.Instance.Clean, RichImage.Instance.CleanRegions, CleanCases, kind: 1);

    [Fact]
    public void FlipsOfACrashImageWithAFullJournalFailCleanly() =>
        RunFlips("crash", RichImage.Instance.Crash, RichImage.Instance.CrashRegions, CrashCases, kind: 2);

    /// <summary>Reruns one flip (the failing cases found so far are kept here as regression tests).</summary>
    [Theory]
    [InlineData("clean", 0L, 0x00)]         // the primary superblock's magic (backup is used)
    [InlineData("crash", 4096L, 0xFF)]       // journal header slot 0
    [InlineData("clean", 8384541L, 0x83)]     // backup superblock: fsck --repair hung
    public void Reproduce(string image, long offset, int value)
    {
        byte[] img = (image == "crash" ? RichImage.Instance.Crash : RichImage.Instance.Clean).ToArray();
        img[offset] = (byte)value;
        CaseOutcome o = FuzzHarness.Run(img, repair: true);
        Assert.True(o.Ok, $"{image} image, offset {offset} ({FuzzReport.Where(img, offset)}) = 0x{value:x2}: {o.Failure}");
    }

    private void RunFlips(string name, byte[] baseImage, List<(long Offset, long Length)> regions, int cases, int kind)
    {
        int baseSeed = FuzzHarness.BaseSeed();
        output.WriteLine($"{name} flips: base seed {baseSeed}, {regions.Count} metadata regions, image {baseImage.Length} bytes");
        var report = new FuzzReport(output, $"{name} flips", baseSeed);
        long regionBytes = regions.Sum(r => r.Length);
        for (int i = 0; i < cases; i++)
        {
            int seed = FuzzHarness.CaseSeed(baseSeed, kind, i);
            var rng = new Random(seed);
            long offset;
            if (rng.NextDouble() < 0.6)
            {
                long pick = rng.NextInt64(regionBytes);
                offset = -1;
                foreach (var (o, l) in regions)
                {
                    if (pick < l)
                    {
                        offset = o + pick;
                        break;
                    }
                    pick -= l;
                }
            }
            else
            {
                offset = rng.NextInt64(baseImage.Length);
            }
            byte old = baseImage[offset];
            byte value = (byte)(old ^ rng.Next(1, 256));
            byte[] img = baseImage.ToArray();
            img[offset] = value;
            CaseOutcome outcome = FuzzHarness.Run(img, repair: true);
            report.Add(outcome, () => $"case {i} seed {seed}: {name} image offset {offset} ({FuzzReport.Where(baseImage, offset)}) 0x{old:x2} -> 0x{value:x2} " +
                $"[Reproduce(\"{name}\", {offset}, 0x{value:x2})]");
        }
        report.Finish();
    }
}
