using DaxFs.Pmem;
using Xunit;

namespace DaxFs.Pmem.Tests;

/// <summary>Granularity is resolved from facts at open: MAP_SYNC refused on tmpfs, ext4 and memfd (Page), emulation
/// forcing CacheLine, and a clear error when the caller requires finer than what is there.</summary>
public class GranularityTests
{
    [Fact]
    public void TmpfsFileIsPageGranularWithoutEmulation()
    {
        using var dir = ScratchDir.Tmpfs();
        using var dev = PmemDevice.Create(dir.File("v"), 1 << 20, Env.With());
        Assert.Equal(Granularity.Page, dev.Granularity);
        Assert.False(dev.Info.MapSync);
        Assert.Equal(FlushInstruction.Msync, dev.FlushInstruction);
        Assert.Equal(DeviceKind.File, dev.Kind);
        Assert.Contains("MAP_SYNC refused", dev.Info.GranularityReason);
        Assert.Equal(int.MaxValue, dev.Info.NonTemporalThreshold);
    }

    [Fact]
    public void TmpfsFileIsCacheLineGranularWhenEmulated()
    {
        using var dir = ScratchDir.Tmpfs();
        using var dev = PmemDevice.Create(dir.File("v"), 1 << 20, Env.With() with { EmulatePmem = true });
        Assert.Equal(Granularity.CacheLine, dev.Granularity);
        Assert.Contains("emulated", dev.Info.GranularityReason);
        Assert.NotEqual(FlushInstruction.Msync, dev.FlushInstruction);
    }

    [Fact]
    public void EnvironmentSwitchEmulatesPmem()
    {
        using var dir = ScratchDir.Tmpfs();
        using var dev = PmemDevice.Create(dir.File("v"), 1 << 20, Env.With(("DAXFS_EMULATE_PMEM", "1")));
        Assert.Equal(Granularity.CacheLine, dev.Granularity);
        Assert.Contains("DAXFS_EMULATE_PMEM=1", dev.Info.GranularityReason);
    }

    [Fact]
    public void RootExt4FileIsPageGranularAndMsyncPersists()
    {
        using var dir = ScratchDir.RootFs();
        string path = dir.File("v");
        using (var dev = PmemDevice.Create(path, 1 << 20, Env.With()))
        {
            Assert.Equal(Granularity.Page, dev.Granularity);
            Assert.Equal(FlushInstruction.Msync, dev.FlushInstruction);
            dev.CopyPersist(5000, "hello, ext4"u8);
            dev.Write(9000, "later"u8);
            dev.Persist(9000, 5);
        }
        byte[] onDisk = File.ReadAllBytes(path);
        Assert.Equal("hello, ext4"u8.ToArray(), onDisk.AsSpan(5000, 11).ToArray());
        Assert.Equal("later"u8.ToArray(), onDisk.AsSpan(9000, 5).ToArray());
    }

    [Fact]
    public void MemfdIsPageGranularUnlessEmulated()
    {
        using (var dev = PmemDevice.CreateInMemory(1 << 20, Env.With()))
        {
            Assert.Equal(Granularity.Page, dev.Granularity);
            Assert.Equal(DeviceKind.Memory, dev.Kind);
            Assert.Contains("memfd", dev.Info.GranularityReason);
        }
        using var emu = Env.EmulatedMemory(1 << 20);
        Assert.Equal(Granularity.CacheLine, emu.Granularity);
    }

    [Fact]
    public void RequiringCacheLineOnTmpfsSaysWhy()
    {
        using var dir = ScratchDir.Tmpfs();
        string path = dir.File("v");
        File.WriteAllBytes(path, new byte[1 << 20]);
        var ex = Assert.Throws<GranularityMismatchException>(() =>
            PmemDevice.Open(path, Env.With() with { RequiredGranularity = Granularity.CacheLine }));
        Assert.Equal(Granularity.CacheLine, ex.Requested);
        Assert.Equal(Granularity.Page, ex.Available);
        Assert.Contains("MAP_SYNC refused", ex.Message);
        Assert.Contains("--emulate-pmem", ex.Message);
        // The failed open released its lock and mapping: a second open works.
        using var again = PmemDevice.Open(path, Env.With());
        Assert.Equal(Granularity.Page, again.Granularity);
    }

    [Fact]
    public void RequiringByteOnEmulatedPmemSaysNoEadr()
    {
        var ex = Assert.Throws<GranularityMismatchException>(() =>
            PmemDevice.CreateInMemory(1 << 20, Env.With() with { EmulatePmem = true, RequiredGranularity = Granularity.Byte }));
        Assert.Equal(Granularity.CacheLine, ex.Available);
    }

    [Fact]
    public void PageIsAlwaysAcceptable()
    {
        using var dev = PmemDevice.CreateInMemory(1 << 20, Env.With() with { EmulatePmem = true, RequiredGranularity = Granularity.Page });
        Assert.Equal(Granularity.CacheLine, dev.Granularity);
    }

    [Fact]
    public void DeviceMappingIsTwoMegabyteAligned()
    {
        using var dev = Env.EmulatedMemory(8 << 20);
        Assert.Equal(0, dev.BaseAddress % (2 << 20));
    }
}
