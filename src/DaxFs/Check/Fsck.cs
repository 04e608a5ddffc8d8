using System.Text;
using DaxFs.Format;
using DaxFs.Pmem;

namespace DaxFs.Check;

/// <summary>What fsck found and did.</summary>
/// <param name="Errors">Every inconsistency found, one line each (empty: the volume is clean).</param>
/// <param name="Repairs">What --repair changed, one line each.</param>
/// <param name="Inodes">Inodes in use.</param>
/// <param name="UsedBlocks">Data-area blocks owned by inodes.</param>
/// <param name="ReplayedTransactions">Journal transactions replayed before checking (negative: waiting, not
/// replayed because the device was read-only).</param>
public sealed record FsckReport(IReadOnlyList<string> Errors, IReadOnlyList<string> Repairs, long Inodes, long UsedBlocks, int ReplayedTransactions)
{
    /// <summary>No inconsistency left.</summary>
    public bool Clean => Errors.Count == 0;
}

/// <summary>Fsck -- checks every invariant of a volume and, asked to, repairs what it can. The checker is mount's
/// loader run in a mode that reports each problem and goes on, followed by the cross-checks a loader does not need:
/// both superblocks, link counts, reachability from the root, directory parents, sizes against extents. It replays
/// the journal first when the device is writable, as a mount would.</summary>
public static class Fsck
{
    /// <summary>Checks the volume on <paramref name="device"/> (and repairs it with <paramref name="repair"/>);
    /// <paramref name="progress"/> hears each phase and the fraction done.</summary>
    public static FsckReport Check(PmemDevice device, bool repair = false, IProgress<(string Step, double Fraction)>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (repair && device.IsReadOnly)
            throw new DaxFsException(Errno.EROFS, "cannot repair a read-only device");
        var errors = new List<string>();
        var repairs = new List<string>();
        progress?.Report(("superblocks", 0));
        Superblock sb = CheckSuperblocks(device, errors, repairs, repair);
        progress?.Report(("journal, inodes, logs, allocation", 0.05));
        using var v = DaxVolume.OpenForCheck(device, sb, errors);
        progress?.Report(("link counts, reachability, sizes", 0.7));
        v.CrossCheck(errors);
        if (repair && errors.Count > 0)
        {
            progress?.Report(("repair", 0.85));
            v.Repair(repairs);
            v.Checkpoint();
            progress?.Report(("checking again after the repair", 0.9));
        }
        var report = new FsckReport(errors, repairs, v.InodeCountInUse, v.Allocator.TotalBlocks - v.Allocator.FreeBlocks, v.ReplayedTransactions);
        if (repair && errors.Count > 0)
        {
            // What is left after the repair is what the report says.
            v.Dispose();
            FsckReport after = Check(device, repair: false);
            return report with { Errors = after.Errors };
        }
        return report;
    }

    /// <summary>Both superblocks valid and identical; a repair rewrites the bad one from the good one.</summary>
    private static Superblock CheckSuperblocks(PmemDevice device, List<string> errors, List<string> repairs, bool repair)
    {
        Superblock? primary = null, backup = null;
        try
        {
            primary = Superblock.Decode(device.GetSpan(0, Superblock.Size), 0, device.Length);
        }
        catch (DaxFsCorruptedException e)
        {
            errors.Add(e.Message);
        }
        // The backup is the volume's last block; without a primary to say where that is, wherever mount finds it.
        long backupBlocks = device.Length / Layout.BlockSize;
        if (primary is not null)
            backupBlocks = primary.BlockCount;
        else
        {
            try
            {
                backupBlocks = DaxVolume.ReadSuperblock(device).BlockCount;
            }
            catch (DaxFsCorruptedException)
            {
            }
        }
        long backupOff = (backupBlocks - 1) * Layout.BlockSize;
        try
        {
            backup = Superblock.Decode(device.GetSpan(backupOff, Superblock.Size), backupOff, device.Length);
        }
        catch (DaxFsCorruptedException e)
        {
            errors.Add("backup " + e.Message);
        }
        Superblock sb = primary ?? backup ?? throw new DaxFsCorruptedException("superblock", 0, "neither the primary nor the backup superblock is valid");
        if (primary is not null && backup is not null && !device.GetSpan(0, Superblock.Size).SequenceEqual(device.GetSpan(backupOff, Superblock.Size)))
            errors.Add("the backup superblock differs from the primary");
        if (repair && (primary is null || backup is null || errors.Any(e => e.Contains("backup superblock", StringComparison.Ordinal))))
        {
            byte[] enc = sb.Encode();
            device.CopyPersist(primary is null ? 0 : backupOff, enc);
            repairs.Add(primary is null ? "rewrote the primary superblock from the backup" : "rewrote the backup superblock from the primary");
        }
        return sb;
    }
}
