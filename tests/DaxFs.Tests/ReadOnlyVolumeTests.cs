using DaxFs.Tests.Support;
using Xunit;

namespace DaxFs.Tests;

/// <summary>A volume opened on a read-only device refuses every change with EROFS before making it, and stays mounted.</summary>
public class ReadOnlyVolumeTests
{
    [Theory]
    [InlineData(DataMode.Atomic)]
    [InlineData(DataMode.InPlace)]
    public void ChangesAreEROFSAndTheVolumeStaysUp(DataMode mode)
    {
        string path = Path.Combine("/dev/shm", $"daxfs-ro-{Environment.ProcessId}-{mode}.img");
        try
        {
            ulong ino;
            byte[] data = new byte[8192];
            new Random(1).NextBytes(data);
            using (var v = DaxVolume.Create(path, 16 << 20, TestVolumes.Options()))
            {
                ino = v.CreateFile(DaxVolume.RootIno, "f", 0x1A4).Ino;
                v.Write(ino, 0, data);
            }
            byte[] image = File.ReadAllBytes(path);
            using (var ro = DaxVolume.Open(path, TestVolumes.Options() with { ReadOnly = true }, new MountOptions { Data = mode }))
            {
                void Refused(Action call) => Assert.Equal(Errno.EROFS, Assert.Throws<DaxFsException>(call).Errno);
                Refused(() => ro.Write(ino, 0, new byte[4096]));      // an overwrite (the in-place fast path)
                Refused(() => ro.Write(ino, 8192, new byte[100]));    // an append
                Refused(() => ro.CreateFile(DaxVolume.RootIno, "g", 0x1A4));
                Refused(() => ro.SetAttributes(ino, new SetAttributes { Mode = 0x180 }));
                Refused(() => ro.Unlink(DaxVolume.RootIno, "f"u8));
                var back = new byte[data.Length];
                Assert.Equal(data.Length, ro.Read(ino, 0, back));
                Assert.Equal(data, back);
                ro.Sync();
                ro.Fsync(ino);
            }
            Assert.Equal(image, File.ReadAllBytes(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
