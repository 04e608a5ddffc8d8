using System.Collections.Concurrent;
using DaxFs.Allocation;
using DaxFs.Format;
using DaxFs.Journal;
using DaxFs.Namespace;
using DaxFs.Pmem;
using JournalLog = DaxFs.Journal.Journal;

namespace DaxFs;

/// <summary>DaxVolume -- a mounted DaxFS volume: the POSIX file system the library and the FUSE mount use.
/// Two APIs over one implementation: by inode number (what FUSE needs: lookup by parent and name, pin/unpin) and by
/// path. Safe for many threads: calls on different files run in parallel (per-inode locks), readers never block
/// readers, namespace changes are serialized.
/// <para>Durability: on Byte/CacheLine devices every mutating call is durable and atomic when it returns; on Page
/// devices it is atomic, and durable after <see cref="Sync"/>/fsync (or at once with <see cref="MountOptions.Sync"/>).
/// </para></summary>
public sealed partial class DaxVolume : IDisposable
{
    private readonly PmemDevice _dev;
    private readonly bool _ownsDevice;
    private readonly Superblock _sb;
    private readonly JournalLog _journal;
    private readonly BlockAllocator _alloc;
    private readonly DirtyExtentTracker? _tracker;
    private readonly bool _page;
    private readonly MountOptions _options;
    private readonly bool _inPlace;        // DataMode.InPlace: overwrites go into the file's own blocks
    private readonly List<Inode> _timesPending = []; // inodes whose times wait to be journaled (in-place overwrites)
    private readonly object _timesLock = new();
    private readonly ConcurrentDictionary<ulong, Inode> _inodes = new();
    private readonly ulong[] _inodeUsed;
    private readonly uint[] _generations;
    private readonly object _itLock = new();
    private readonly ReaderWriterLockSlim _ns = new(LockRecursionPolicy.NoRecursion);
    private readonly List<BlockRun> _deferredFrees = [];
    private readonly object _deferLock = new();
    private long _freeInodes;
    private long _inodeCursor;
    private volatile Exception? _failed;
    private Tx? _spareTx; // one recycled transaction (calls on one thread reuse it; others allocate)
    private int _disposed;

    internal BlockAllocator Allocator => _alloc;
    internal Superblock Geometry => _sb;
    internal PmemDevice Dev => _dev;

    /// <summary>The data mode in effect (<see cref="DataMode.InPlace"/> asked of a Page device is copy on write).</summary>
    public DataMode DataMode => _inPlace ? DataMode.InPlace : DataMode.Atomic;

    /// <summary>The device the volume lives on.</summary>
    public PmemDevice Device => _dev;

    /// <summary>Inode number of the root directory.</summary>
    public const ulong RootIno = Layout.RootIno;

    /// <summary>Journal transactions committed since mount.</summary>
    public long JournalCommits => _journal.Commits;

    /// <summary>Journal checkpoints since mount.</summary>
    public long JournalCheckpoints => _journal.Checkpoints;

    /// <summary>Transactions replayed from the journal at mount (nonzero after a crash).</summary>
    public int ReplayedTransactions { get; }

    /// <summary>Orphaned inodes (unlinked while open, then a crash) freed at mount.</summary>
    public int OrphansFreed { get; private set; }

    /// <summary>The volume's identity.</summary>
    public Guid Uuid => _sb.Uuid;

    private DaxVolume(PmemDevice dev, bool ownsDevice, Superblock sb, MountOptions options, List<string>? problems = null)
    {
        _problems = problems;
        _dev = dev;
        _ownsDevice = ownsDevice;
        _sb = sb;
        _options = options;
        _page = dev.Granularity == Granularity.Page;
        // On Page devices the kernel may write a page back at any moment before the sync: an overwrite in place could
        // be torn by a crash long after it returned, so there writes stay copy on write.
        _inPlace = options.Data == DataMode.InPlace && !_page;
        _tracker = _page ? new DirtyExtentTracker(dev) : null;
        _alloc = new BlockAllocator(sb.DataStart, sb.DataEnd, pool: Math.Min(256, (sb.DataEnd - sb.DataStart) / 64));
        _inodeUsed = new ulong[(sb.InodeCount + 64) / 64 + 1];
        _generations = new uint[sb.InodeCount + 1];
        _journal = JournalLog.Recover(dev, sb, _tracker, out int replayed);
        if (replayed < 0 && problems is null)
            throw new DaxFsException(Errno.EROFS, $"the volume's journal holds {-replayed} committed transactions to replay; open the device writable");
        ReplayedTransactions = replayed;
        Load();
    }

    /// <summary>Formats <paramref name="device"/> (everything on it is lost) and mounts the new volume.</summary>
    public static DaxVolume Format(PmemDevice device, FormatOptions? format = null, MountOptions? mount = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        format ??= new FormatOptions();
        mount = Checked(mount);
        var sb = Superblock.ForDevice(device.Length, format.JournalBytes, format.InodeCount, NowNs());
        WriteEmptyVolume(device, sb);
        return new DaxVolume(device, false, sb, mount);
    }

    /// <summary>Mounts the volume on <paramref name="device"/>: replays the journal, loads the metadata, frees
    /// orphans. A corrupted volume raises <see cref="DaxFsCorruptedException"/> and is left as it was found (but
    /// for a journal replay, which any mount performs).</summary>
    public static DaxVolume Mount(PmemDevice device, MountOptions? mount = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        mount = Checked(mount);
        return new DaxVolume(device, false, ReadSuperblock(device), mount);
    }

    /// <summary>Creates a device file of <paramref name="size"/> bytes at <paramref name="path"/>, formats it and
    /// mounts it; the volume owns the device.</summary>
    public static DaxVolume Create(string path, long size, PmemOpenOptions? device = null, FormatOptions? format = null, MountOptions? mount = null)
    {
        mount = Checked(mount);
        var dev = PmemDevice.Create(path, size, device);
        try
        {
            format ??= new FormatOptions();
            var sb = Superblock.ForDevice(dev.Length, format.JournalBytes, format.InodeCount, NowNs());
            WriteEmptyVolume(dev, sb);
            return new DaxVolume(dev, true, sb, mount);
        }
        catch
        {
            dev.Dispose();
            File.Delete(path);
            throw;
        }
    }

    /// <summary>Opens the device at <paramref name="path"/> and mounts it; the volume owns the device.</summary>
    public static DaxVolume Open(string path, PmemOpenOptions? device = null, MountOptions? mount = null)
    {
        mount = Checked(mount);
        var dev = PmemDevice.Open(path, device);
        try
        {
            return new DaxVolume(dev, true, ReadSuperblock(dev), mount);
        }
        catch
        {
            dev.Dispose();
            throw;
        }
    }

    /// <summary>The mount options, defaulted and validated before anything is opened or written.</summary>
    private static MountOptions Checked(MountOptions? mount)
    {
        mount ??= new MountOptions();
        if (!Enum.IsDefined(mount.Data))
            throw new DaxFsException(Errno.EINVAL, $"data mode {(int)mount.Data} is not defined");
        return mount;
    }

    /// <summary>The primary superblock, or the backup when the primary fails validation.</summary>
    internal static Superblock ReadSuperblock(PmemDevice device)
    {
        if (device.Length < Layout.MinDeviceBytes)
            throw new DaxFsCorruptedException("superblock", 0, $"the device has {device.Length} bytes, fewer than any volume");
        try
        {
            return Superblock.Decode(device.GetSpan(0, Superblock.Size), 0, device.Length);
        }
        catch (DaxFsCorruptedException)
        {
            Superblock? backup = FindBackupSuperblock(device);
            if (backup is null)
                throw;
            return backup;
        }
    }

    /// <summary>The backup superblock: at the device's last block, or -- when the device grew after mkfs -- at the
    /// last block of the volume, found by scanning back (at most 1 GiB) for a valid superblock that places its backup
    /// exactly where it was found.</summary>
    private static Superblock? FindBackupSuperblock(PmemDevice device)
    {
        long last = device.Length / Layout.BlockSize - 1;
        long floor = Math.Max(Layout.MinDeviceBytes / Layout.BlockSize - 1, last - (1L << 30) / Layout.BlockSize);
        for (long b = last; b >= floor; b--)
        {
            long off = b * Layout.BlockSize;
            if (device.ReadUInt64(off) != Layout.SuperMagic)
                continue;
            try
            {
                Superblock sb = Superblock.Decode(device.GetSpan(off, Superblock.Size), off, device.Length);
                if (sb.BlockCount - 1 == b)
                    return sb;
            }
            catch (DaxFsCorruptedException)
            {
            }
        }
        return null;
    }

    /// <summary>mkfs: superblocks, an empty journal, a zeroed inode table with the root directory.</summary>
    private static void WriteEmptyVolume(PmemDevice dev, Superblock sb)
    {
        if (dev.IsReadOnly)
            throw new DaxFsException(Errno.EROFS, "cannot format a read-only device");
        dev.Fill(sb.InodeTableStart * Layout.BlockSize, sb.InodeTableBlocks * Layout.BlockSize, 0, PersistFlags.NoDrain);
        JournalLog.Format(dev, sb);
        long now = NowNs();
        var root = new InodeRecord
        {
            Mode = FileModes.Directory | 0x1ED, Nlink = 2, AtimeNs = now, MtimeNs = now, CtimeNs = now, BtimeNs = now,
            Generation = 1, Parent = Layout.RootIno, NextDirentId = DirFirstId,
        };
        Span<byte> img = stackalloc byte[Layout.InodeSize];
        root.Encode(img, Layout.RootIno);
        dev.Copy(sb.InodeOffset(Layout.RootIno), img, PersistFlags.NoDrain);
        byte[] enc = sb.Encode();
        long backup = (sb.BlockCount - 1) * Layout.BlockSize;
        dev.Fill(backup, Layout.BlockSize, 0, PersistFlags.NoDrain);
        dev.Copy(backup, enc, PersistFlags.NoDrain);
        dev.Drain();
        if (dev.Granularity == Granularity.Page)
            dev.Persist(0, dev.Length);
        // The primary superblock last: until it is durable the device is not a volume.
        dev.Fill(0, Layout.BlockSize, 0, PersistFlags.NoDrain);
        dev.Copy(0, enc, PersistFlags.None);
    }

    /// <summary>Makes every completed call durable: on Page devices msync of the dirty data, then the journal; on
    /// CacheLine devices calls are durable already.</summary>
    public void Sync()
    {
        ThrowIfFailed();
        CommitPendingTimes();
        SyncCommitted();
    }

    /// <summary>Page devices: makes every committed call durable (fsync and fdatasync of one file come here too, as
    /// the journal is one for the volume).</summary>
    private void SyncCommitted()
    {
        ThrowIfFailed();
        if (!_page)
            return;
        try
        {
            SyncJournal();
        }
        catch (Exception e) when (e is not DaxFsException)
        {
            Fail(e);
            throw new DaxFsException(Errno.EIO, "sync failed and the volume has shut down", e);
        }
        ReleaseDeferredFrees();
    }

    /// <summary>Writes the journal's transactions home and empties it (unmount does this).</summary>
    public void Checkpoint()
    {
        ThrowIfFailed();
        long e = Volatile.Read(ref _epoch);
        _journal.Checkpoint();
        MarkDurable(e);
        ReleaseDeferredFrees();
    }

    /// <summary>statfs(2).</summary>
    public VolumeStats StatFs()
    {
        lock (_itLock)
            return new VolumeStats(Layout.BlockSize, _alloc.TotalBlocks, _alloc.FreeBlocks, _sb.InodeCount, _freeInodes,
                Layout.MaxNameBytes, _alloc.FreeGroups);
    }

    /// <summary>Syncs, checkpoints and unmounts; disposes the device if the volume opened it.</summary>
    public void Dispose()
    {
        // Lazily kept times are journaled while the volume still takes calls (a failure shuts it down: no checkpoint).
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? timesFailed = null;
        if (Volatile.Read(ref _disposed) == 0 && _failed is null && !_dev.IsReadOnly)
        {
            try
            {
                CommitPendingTimes();
            }
            catch (DaxFsException e)
            {
                timesFailed = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }
        }
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try
        {
            if (_failed is null && !_dev.IsReadOnly)
            {
                _journal.Checkpoint();
                ReleaseDeferredFrees();
            }
        }
        finally
        {
            // Closing the write tracker releases its protected ranges: stores through mappings left open go on freely.
            _writeTracker?.Dispose();
            if (_ownsDevice)
                _dev.Dispose();
        }
        timesFailed?.Throw();
    }

    /// <summary>Takes the recycled transaction, if there is one.</summary>
    internal Tx? RentTx() => Interlocked.Exchange(ref _spareTx, null);

    /// <summary>Keeps a finished transaction for the next call.</summary>
    internal void ReturnTx(Tx tx) => Interlocked.CompareExchange(ref _spareTx, tx, null);

    /// <summary>Shuts the volume down after a failure that left DRAM and media apart.</summary>
    internal void Fail(Exception e) => _failed ??= e;

    /// <summary>EIO once the volume has shut down; ObjectDisposed after Dispose.</summary>
    internal void ThrowIfFailed()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_failed is { } f)
            throw new DaxFsException(Errno.EIO, $"the volume shut down after an earlier failure: {f.Message}", f);
    }

    /// <summary>EROFS on a volume whose device is open read-only (before a mutating call changes anything).</summary>
    internal void ThrowIfReadOnly()
    {
        if (_dev.IsReadOnly)
            throw new DaxFsException(Errno.EROFS, "the volume is open read-only");
    }

    private long _epoch;          // counts truncates down on Page devices
    private long _durableEpoch;   // every truncate down up to this one is durable

    /// <summary>Page devices: the end of the bytes of <paramref name="i"/> a crash could still show (its size, or more
    /// while a truncate down is not durable yet); nothing below it is stored over in place. Under the inode's lock.</summary>
    internal long InPlaceLimit(Inode i, long size) =>
        i.HighEpoch > Volatile.Read(ref _durableEpoch) ? Math.Max(size, i.UnsyncedHigh) : size;

    /// <summary>Page devices without the sync option: after a truncate from <paramref name="oldSize"/> down has
    /// committed (not yet durable), the bytes up to <paramref name="oldSize"/> stay protected until a sync. Under the
    /// inode's lock.</summary>
    internal void NoteTruncateDown(Inode i, long oldSize)
    {
        if (!_page || _options.Sync)
            return;
        long high = i.HighEpoch > Volatile.Read(ref _durableEpoch) ? Math.Max(i.UnsyncedHigh, oldSize) : oldSize;
        i.UnsyncedHigh = high;
        i.HighEpoch = Interlocked.Increment(ref _epoch);
    }

    /// <summary>Syncs the journal and records that every truncate down committed before it is durable.</summary>
    private void SyncJournal()
    {
        long e = Volatile.Read(ref _epoch);
        _journal.Sync();
        MarkDurable(e);
    }

    private void MarkDurable(long e)
    {
        long d;
        while ((d = Volatile.Read(ref _durableEpoch)) < e && Interlocked.CompareExchange(ref _durableEpoch, e, d) != d)
        {
        }
    }

    /// <summary>A deliberately broken volume for the crash checker's self-test: the fence that makes a call's data
    /// durable before the commit that exposes it is skipped. Never set outside that test.</summary>
    internal bool BrokenSkipOrderingFence { get; set; }

    /// <summary>Tests: called as a transaction starts to commit (before the journal is locked), on the committing
    /// thread; lets a test hold one call there while another runs.</summary>
    internal Action? BeforeCommitForTests { get; set; }

    /// <summary>Commits a transaction: ordered bytes durable, then the inode images through the journal.</summary>
    internal void CommitTx(Tx tx)
    {
        BeforeCommitForTests?.Invoke();
        if (tx.Dirty.Count > 0)
        {
            // The images are encoded while the ordered stores drain; the journal fences them before its own stores.
            JournalLog.TxBuilder b = tx.Builder;
            b.Reset();
            foreach (Inode i in tx.Dirty)
            {
                i.Rec.Encode(b.Add(_sb.InodeOffset(i.Ino), Layout.InodeSize), i.Ino);
                i.TimesPending = false; // the image carries the times
            }
            _journal.Commit(b, fenceFirst: tx.Ordered && !_page && !BrokenSkipOrderingFence);
        }
        else if (tx.Ordered && !_page)
        {
            _dev.Drain(); // ordered stores and no image to commit: durable on return all the same
        }
        if (_page)
        {
            if (tx.Freed.Count > 0)
            {
                lock (_deferLock)
                    _deferredFrees.AddRange(tx.Freed);
            }
        }
        else
        {
            long unused = tx.TakeUnusedReservation();
            if (tx.Freed.Count > 0 || unused > 0)
                _alloc.Release(tx.Freed, unused);
        }
        if (_page && _options.Sync)
        {
            _journal.Sync();
            ReleaseDeferredFrees();
        }
        if (tx.FreedInodes.Count > 0)
            ReleaseInodeSlots(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tx.FreedInodes));
    }

    /// <summary>Page devices, out of space: syncs so that the blocks freed by earlier calls become allocatable;
    /// true if there were any.</summary>
    internal bool ReleasePendingFrees()
    {
        lock (_deferLock)
        {
            if (_deferredFrees.Count == 0)
                return false;
        }
        SyncJournal();
        ReleaseDeferredFrees();
        return true;
    }

    /// <summary>Page devices: blocks freed by transactions that are now durable become allocatable.</summary>
    private void ReleaseDeferredFrees()
    {
        lock (_deferLock)
        {
            foreach (BlockRun r in _deferredFrees)
                _alloc.Free(r.Start, r.Count);
            _deferredFrees.Clear();
        }
    }

    /// <summary>Stores bytes that must be durable before the commit: non-temporal stores without a fence on
    /// pmem; plain stores plus a dirty mark (msync at Sync) on Page devices.</summary>
    internal void OrderedWrite(Tx tx, long offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
            return;
        tx.Ordered = true;
        if (_page)
        {
            _dev.Write(offset, data);
            _tracker!.MarkDirty(offset, data.Length);
        }
        else
        {
            _dev.Copy(offset, data, PersistFlags.NoDrain);
        }
    }

    /// <summary>As <see cref="OrderedWrite"/>, for a fill.</summary>
    internal void OrderedFill(Tx tx, long offset, long length, byte value)
    {
        if (length <= 0)
            return;
        tx.Ordered = true;
        if (_page)
        {
            _dev.Fill(offset, length, value, PersistFlags.NoFlush);
            _tracker!.MarkDirty(offset, length);
        }
        else
        {
            _dev.Fill(offset, length, value, PersistFlags.NoDrain);
        }
    }

    /// <summary>Nanoseconds since the Unix epoch.</summary>
    internal static long NowNs() => FileClock.NowNs();

    /// <summary>The live inode <paramref name="ino"/>, or ENOENT.</summary>
    internal Inode Get(ulong ino)
    {
        if (_inodes.TryGetValue(ino, out Inode? i) && !i.Freed)
            return i;
        throw new DaxFsException(Errno.ENOENT, $"no inode {ino}");
    }
}
