using DaxFs.Format;
using DaxFs.Pmem;

namespace DaxFs;

/// <summary>VolumeInfo -- what `daxfs info` shows: geometry from the superblock and usage from a read-only scan.</summary>
/// <param name="Uuid">Volume identity.</param>
/// <param name="Version">Format version "major.minor".</param>
/// <param name="DeviceBytes">Device length.</param>
/// <param name="BlockSize">Bytes per block.</param>
/// <param name="JournalBytes">Journal log bytes.</param>
/// <param name="InodeCount">Inode slots.</param>
/// <param name="InodesUsed">Inodes in use.</param>
/// <param name="DataBlocks">Blocks of the data area.</param>
/// <param name="FreeBlocks">Free data blocks.</param>
/// <param name="FreeAlignedExtents">Free 2 MiB-aligned groups.</param>
/// <param name="PendingTransactions">Committed journal transactions a mount will replay (after a crash).</param>
/// <param name="Problems">Inconsistencies the scan met (run fsck when nonzero).</param>
/// <param name="CreatedNs">Format time, ns since the epoch.</param>
public sealed record VolumeInfo(Guid Uuid, string Version, long DeviceBytes, int BlockSize, long JournalBytes, long InodeCount, long InodesUsed,
    long DataBlocks, long FreeBlocks, long FreeAlignedExtents, int PendingTransactions, int Problems, long CreatedNs);

public sealed partial class DaxVolume
{
    /// <summary>Reads a volume's geometry and usage without changing anything (a journal waiting for replay is
    /// counted, not replayed; usage is then as of the last checkpoint).</summary>
    public static VolumeInfo Inspect(PmemDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        Superblock sb = ReadSuperblock(device);
        int pending = Journal.Journal.CountCommitted(device, sb);
        var problems = new List<string>();
        long used, free, groups;
        if (!device.IsReadOnly)
            throw new ArgumentException("Inspect needs a device opened read-only (it must not replay the journal)", nameof(device));
        using (var v = OpenForCheck(device, sb, problems))
        {
            used = v.InodeCountInUse;
            free = v.Allocator.FreeBlocks;
            groups = v.Allocator.FreeGroups;
        }
        return new VolumeInfo(sb.Uuid, $"{sb.VersionMajor}.{sb.VersionMinor}", device.Length, Layout.BlockSize, sb.LogBytes, sb.InodeCount, used,
            sb.DataEnd - sb.DataStart, free, groups, pending, problems.Count, sb.CreatedNs);
    }
}
