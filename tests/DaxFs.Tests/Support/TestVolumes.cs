using DaxFs.Pmem;

namespace DaxFs.Tests.Support;

/// <summary>Volumes for tests: in-memory devices (emulated pmem by default, Page-granular on request).</summary>
public static class TestVolumes
{
    /// <summary>Options that ignore the process environment.</summary>
    public static PmemOpenOptions Options(bool emulatePmem = true) =>
        new() { EmulatePmem = emulatePmem, Environment = _ => null };

    /// <summary>A formatted, mounted volume on a fresh in-memory device; dispose the device after the volume.</summary>
    public static (PmemDevice Device, DaxVolume Volume) Fresh(long bytes = 64 << 20, bool emulatePmem = true, FormatOptions? format = null,
        MountOptions? mount = null)
    {
        var dev = PmemDevice.CreateInMemory(bytes, Options(emulatePmem));
        return (dev, DaxVolume.Format(dev, format, mount));
    }

    /// <summary>A copy of a device's bytes (a crash image, or an image to corrupt).</summary>
    public static byte[] Snapshot(PmemDevice dev) => dev.GetSpan(0, checked((int)dev.Length)).ToArray();

    /// <summary>A fresh in-memory device holding <paramref name="image"/>.</summary>
    public static PmemDevice FromImage(byte[] image, bool emulatePmem = true)
    {
        var dev = PmemDevice.CreateInMemory(image.Length, Options(emulatePmem));
        dev.CopyPersist(0, image);
        return dev;
    }
}
