using DaxFs.Allocation;
using DaxFs.Namespace;

namespace DaxFs.Journal;

/// <summary>Tx -- one mutating call's transaction. The call first validates and reserves every block it may need
/// (so that ENOSPC, like every other refusal, happens before anything changes), then changes DRAM state, writes
/// ordered bytes (data, log records) in place, and commits: a fence (the ordered bytes are durable), then the
/// images of the inodes it touched through the journal. Blocks it freed return to the allocator only once the
/// commit is durable. A failure after the first change leaves DRAM ahead of the media: the volume is then shut
/// down (every later mutating call fails with EIO) rather than left to diverge.</summary>
internal sealed class Tx : IDisposable
{
    private DaxVolume _v;
    private readonly List<Inode> _dirty = new(4);
    private readonly List<BlockRun> _allocated = [];
    private readonly List<BlockRun> _runs = [], _one = [];
    private long _reserved;
    private bool _mutating;
    private bool _done;

    private Tx(DaxVolume v) => _v = v;

    /// <summary>A transaction for one call of <paramref name="v"/>; transactions are recycled per thread (a call's hot
    /// path then allocates nothing for its bookkeeping).</summary>
    public static Tx Begin(DaxVolume v) => v.RentTx() ?? new Tx(v);

    /// <summary>The journal transaction this call's inode images are encoded into.</summary>
    public Journal.TxBuilder Builder { get; } = new();

    /// <summary>Blocks freed by this call, released after the commit is durable.</summary>
    public List<BlockRun> Freed { get; } = [];

    /// <summary>Whether bytes were written in place that must be durable before the commit.</summary>
    public bool Ordered { get; set; }

    /// <summary>The inodes whose images this transaction journals.</summary>
    public IReadOnlyList<Inode> Dirty => _dirty;

    /// <summary>Reserves <paramref name="blocks"/> blocks for this call; ENOSPC before anything changed. A call that
    /// frees space passes <paramref name="freeing"/> and may use the allocator's pool. On Page devices, blocks freed
    /// by transactions not yet synced are released (by a sync) before giving up.</summary>
    public void Reserve(long blocks, bool freeing = false)
    {
        if (blocks <= 0)
            return;
        if (!_v.Allocator.TryReserve(blocks, freeing) && !(_v.ReleasePendingFrees() && _v.Allocator.TryReserve(blocks, freeing)))
            throw new DaxFsException(Errno.ENOSPC, $"{blocks} blocks are needed and {_v.Allocator.FreeBlocks} are free");
        _reserved += blocks;
    }

    /// <summary>Reserves if the space is there; false (and nothing reserved) otherwise.</summary>
    public bool TryReserve(long blocks)
    {
        if (blocks <= 0)
            return true;
        if (!_v.Allocator.TryReserve(blocks, freeing: false))
            return false;
        _reserved += blocks;
        return true;
    }

    /// <summary>Marks the point after which a failure shuts the volume down.</summary>
    public void BeginChanges()
    {
        _v.ThrowIfFailed();
        _v.ThrowIfReadOnly();
        _mutating = true;
    }

    /// <summary>Journals <paramref name="inode"/>'s image at commit.</summary>
    public void Touch(Inode inode)
    {
        if (!_dirty.Contains(inode))
            _dirty.Add(inode);
    }

    /// <summary>Allocates from this call's reservation. The list returned is this transaction's and is reused by its
    /// next <see cref="Allocate"/> (not by <see cref="AllocateOne"/>): iterate it before allocating runs again.</summary>
    public List<BlockRun> Allocate(long count, long hint, bool aligned, long fileBlock = 0)
    {
        _runs.Clear();
        AllocateInto(count, hint, aligned, fileBlock, _runs);
        return _runs;
    }

    /// <summary>Allocates one block from this call's reservation (log, xattr and symlink blocks, copy-on-write of a
    /// partial block); safe to call while iterating the runs of <see cref="Allocate"/>.</summary>
    public long AllocateOne(long hint)
    {
        _one.Clear();
        AllocateInto(1, hint, aligned: false, 0, _one);
        return _one[0].Start;
    }

    private void AllocateInto(long count, long hint, bool aligned, long fileBlock, List<BlockRun> runs)
    {
        if (count > _reserved)
            throw new InvalidOperationException($"allocation of {count} blocks exceeds the {_reserved} reserved");
        _v.Allocator.AllocateReserved(count, hint, aligned, fileBlock, runs);
        _reserved -= count;
        _allocated.AddRange(runs);
    }

    /// <summary>A list for the extents an <see cref="Iomap.ExtentMap"/> change displaces, cleared and reused by each
    /// caller in turn (the write path allocates nothing for its bookkeeping).</summary>
    public List<Iomap.Extent> Displaced { get; } = [];

    /// <summary>Inode slots this call freed: allocatable again once it has committed.</summary>
    public List<ulong> FreedInodes { get; } = [];

    /// <summary>A list for the records a log compaction rewrites (reused, like <see cref="Displaced"/>).</summary>
    public List<Format.LogRecord> Records { get; } = [];

    /// <summary>Hands the unused reservation to the caller (who returns it to the allocator with the freed blocks).</summary>
    public long TakeUnusedReservation()
    {
        long n = _reserved;
        _reserved = 0;
        return n;
    }

    /// <summary>Frees blocks once this transaction is durable.</summary>
    public void Free(long start, long count)
    {
        if (count > 0)
            Freed.Add(new BlockRun(start, count));
    }

    /// <summary>Makes the ordered bytes durable, then the inode images; releases freed blocks and the unused
    /// reservation.</summary>
    public void Commit()
    {
        try
        {
            _v.CommitTx(this);
            _done = true;
        }
        catch (Exception e) when (_mutating)
        {
            _v.Fail(e);
            throw new DaxFsException(Errno.EIO, "the volume could not commit a change and has shut down", e);
        }
        finally
        {
            if (_reserved > 0)
                _v.Allocator.Unreserve(_reserved);
            _reserved = 0;
        }
    }

    /// <summary>Undoes an uncommitted call: before any change, returns its blocks; after one, shuts the volume down.
    /// Then recycles the transaction.</summary>
    public void Dispose()
    {
        if (!_done)
        {
            _done = true;
            if (_mutating)
            {
                _v.Fail(new InvalidOperationException("a call failed after changing DRAM state"));
            }
            else
            {
                foreach (BlockRun r in _allocated)
                    _v.Allocator.Free(r.Start, r.Count);
                if (_reserved > 0)
                    _v.Allocator.Unreserve(_reserved);
            }
        }
        _dirty.Clear();
        _allocated.Clear();
        Displaced.Clear();
        if (Displaced.Capacity > 4096)
            Displaced.Capacity = 0; // a fragmented file's extents, freed: do not keep them in a pooled transaction
        FreedInodes.Clear();
        Records.Clear(); // drops the names it held
        if (Records.Capacity > 4096)
            Records.Capacity = 0; // a big directory's compaction: do not keep its array in a pooled transaction
        Freed.Clear();
        if (Freed.Capacity > 4096)
            Freed.Capacity = 0;
        _reserved = 0;
        _mutating = false;
        _done = false;
        Ordered = false;
        _v.ReturnTx(this);
    }

    /// <summary>A block's worth of log records being appended (no stack zeroing, no thread-static lookup per call).</summary>
    public byte[] LogBuffer { get; } = new byte[Format.Layout.BlockSize];
}
