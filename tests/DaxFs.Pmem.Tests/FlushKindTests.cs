using DaxFs.Pmem;
using DaxFs.Pmem.Interop;
using Xunit;

namespace DaxFs.Pmem.Tests;

/// <summary>Each flush instruction can be forced, by option and by DAXFS_FLUSH, and each one runs (a missing
/// instruction would raise SIGILL and kill the test host) and keeps the data intact.</summary>
public class FlushKindTests
{
    public static TheoryData<FlushInstruction> Kinds => new()
    {
        FlushInstruction.Clwb, FlushInstruction.ClflushOpt, FlushInstruction.Clflush, FlushInstruction.None,
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ForcedInstructionIsUsedAndDataSurvives(FlushInstruction kind)
    {
        using var dev = PmemDevice.CreateInMemory(4 << 20, Env.With() with { EmulatePmem = true, Flush = kind });
        Assert.Equal(kind, dev.FlushInstruction);
        var data = new byte[3 << 20];
        new Random((int)kind).NextBytes(data);
        dev.CopyPersist(13, data.AsSpan(0, 100));            // cached stores + write-back
        dev.CopyPersist(200_000, data);                        // streaming stores + head/tail write-back
        dev.Write(150, data.AsSpan(0, 77));
        dev.Persist(150, 77);
        dev.Invalidate(0, 4 << 20);                            // evict everything, then read it back from memory
        dev.Drain();
        dev.FillPersist(3_500_000, 4097, 0x42);
        Assert.True(dev.GetSpan(13, 100).SequenceEqual(data.AsSpan(0, 100)));
        Assert.True(dev.GetSpan(200_000, data.Length).SequenceEqual(data));
        Assert.True(dev.GetSpan(150, 77).SequenceEqual(data.AsSpan(0, 77)));
        Assert.Equal(-1, dev.GetSpan(3_500_000, 4097).IndexOfAnyExcept((byte)0x42));
    }

    [Theory]
    [InlineData("clwb", FlushInstruction.Clwb)]
    [InlineData("CLFLUSHOPT", FlushInstruction.ClflushOpt)]
    [InlineData("clflush", FlushInstruction.Clflush)]
    [InlineData("none", FlushInstruction.None)]
    public void EnvironmentForcesInstruction(string value, FlushInstruction expected)
    {
        using var dev = PmemDevice.CreateInMemory(1 << 20, Env.With(("DAXFS_FLUSH", value)) with { EmulatePmem = true });
        Assert.Equal(expected, dev.FlushInstruction);
        dev.CopyPersist(0, new byte[1000]);
    }

    [Fact]
    public void BadEnvironmentValueIsAClearError()
    {
        var ex = Assert.Throws<PmemException>(() =>
            PmemDevice.CreateInMemory(1 << 20, Env.With(("DAXFS_FLUSH", "wbinvd")) with { EmulatePmem = true }));
        Assert.Contains("DAXFS_FLUSH must be one of", ex.Message);
        Assert.Throws<PmemException>(() =>
            PmemDevice.CreateInMemory(1 << 20, Env.With(("DAXFS_MOVNT_THRESHOLD", "-5")) with { EmulatePmem = true }));
    }

    [Fact]
    public void ADeviceThatFailsToBuildClosesItsDescriptorOnceAndLeavesNoFinalizer()
    {
        // A setting refused after the mapping was made: the half-built device must not be finalized later, or it would
        // close its descriptor a second time -- by then a number the process has handed to another file.
        for (int round = 0; round < 4; round++)
        {
            Assert.Throws<PmemException>(() =>
                PmemDevice.CreateInMemory(1 << 20, Env.With(("DAXFS_MOVNT_THRESHOLD", "-5")) with { EmulatePmem = true }));
            Assert.Throws<GranularityMismatchException>(() =>
                PmemDevice.CreateInMemory(1 << 20, Env.With() with { EmulatePmem = false, RequiredGranularity = Granularity.CacheLine }));
            // The numbers just freed go to these (lowest first), then any finalizer runs.
            int[] fds = Enumerable.Range(0, 8).Select(_ => Libc.Open("/dev/null", Libc.O_RDONLY | Libc.O_CLOEXEC, 0)).ToArray();
            try
            {
                Assert.All(fds, fd => Assert.True(fd >= 0));
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                foreach (int fd in fds)
                    Assert.True(Libc.FStat(fd, out _) == 0, $"descriptor {fd} was closed behind its owner's back");
            }
            finally
            {
                foreach (int fd in fds)
                    if (fd >= 0)
                        Libc.Close(fd);
            }
        }
    }

    [Fact]
    public void DisabledInstructionCannotBeForced()
    {
        var ex = Assert.Throws<PmemException>(() =>
            PmemDevice.CreateInMemory(1 << 20, Env.With(("DAXFS_NO_CLWB", "1"), ("DAXFS_FLUSH", "clwb")) with { EmulatePmem = true }));
        Assert.Contains("CLWB", ex.Message);
    }

    [Fact]
    public void SwitchesStepDownTheDefault()
    {
        using var best = Env.EmulatedMemory(1 << 20);
        using var noClwb = PmemDevice.CreateInMemory(1 << 20, Env.With(("DAXFS_NO_CLWB", "1")) with { EmulatePmem = true });
        using var neither = PmemDevice.CreateInMemory(1 << 20,
            Env.With(("DAXFS_NO_CLWB", "1"), ("DAXFS_NO_CLFLUSHOPT", "1")) with { EmulatePmem = true });
        Assert.Equal(FlushInstruction.Clflush, neither.FlushInstruction);
        Assert.Equal(FlushInstruction.Clflush, neither.Info.Invalidate);
        Assert.True(noClwb.FlushInstruction is FlushInstruction.ClflushOpt or FlushInstruction.Clflush);
        Assert.True(best.FlushInstruction >= noClwb.FlushInstruction);
    }

    [Fact]
    public void NoMovntAndVectorSwitchesAreHonoured()
    {
        using var dev = PmemDevice.CreateInMemory(1 << 20,
            Env.With(("DAXFS_NO_MOVNT", "1"), ("DAXFS_NO_AVX", "1"), ("DAXFS_NO_AVX512F", "1")) with { EmulatePmem = true });
        Assert.Equal(int.MaxValue, dev.Info.NonTemporalThreshold);
        Assert.Equal("SSE2", dev.Info.NonTemporal);
        var data = new byte[10_000];
        new Random(9).NextBytes(data);
        dev.Copy(3, data, PersistFlags.NonTemporal); // SSE2 streaming body
        Assert.True(dev.GetSpan(3, data.Length).SequenceEqual(data));
    }
}
