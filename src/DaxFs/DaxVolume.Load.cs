using System.Buffers.Binary;
using DaxFs.Allocation;
using DaxFs.Format;
using DaxFs.Iomap;
using DaxFs.Journal;
using DaxFs.Namespace;

namespace DaxFs;

public sealed partial class DaxVolume
{
    /// <summary>Directory cookies 1 and 2 are "." and ".."; entry ids start here.</summary>
    internal const ulong DirFirstId = 3;

    /// <summary>Mount's scan: every inode slot, every inode's log replayed into its map or index, every owned block
    /// claimed (a block claimed twice or outside the data area is corruption), directory entries checked against the
    /// inodes, orphans freed. Everything read is validated before use.</summary>
    private void Load()
    {
        _alloc.FreeAll();
        for (ulong ino = 1; ino <= (ulong)_sb.InodeCount; ino++)
        {
            long off = _sb.InodeOffset(ino);
            ReadOnlySpan<byte> slot = _dev.GetSpan(off, Layout.InodeSize);
            _generations[ino] = BinaryPrimitives.ReadUInt32LittleEndian(slot[56..]);
            InodeRecord rec;
            try
            {
                rec = InodeRecord.Decode(slot, ino, off, _sb);
            }
            catch (DaxFsCorruptedException e) when (_problems is not null)
            {
                Report(e);
                _badSlots.Add(ino);
                _inodeUsed[ino >> 6] |= 1UL << (int)(ino & 63); // not reusable until repaired
                continue;
            }
            if (!rec.InUse)
            {
                _freeInodes++;
                continue;
            }
            var inode = new Inode(ino, rec);
            Tolerate(inode, () => LoadLog(inode));
            Tolerate(inode, () => LoadXattrs(inode));
            ClaimBlocks(inode);
            _inodes[ino] = inode;
            _inodeUsed[ino >> 6] |= 1UL << (int)(ino & 63);
        }
        if (!_inodes.TryGetValue(Layout.RootIno, out Inode? root) || !root.IsDir)
            throw new DaxFsCorruptedException("inode 1", _sb.InodeOffset(Layout.RootIno), "the root directory is missing");
        foreach (Inode dir in _inodes.Values)
        {
            if (dir.Dir is null)
                continue;
            foreach (var (name, slot) in dir.Dir.All.ToList())
            {
                if (_inodes.TryGetValue(slot.Ino, out Inode? target) && FileModes.DirentType(target.Rec.Mode) == slot.Type)
                    continue;
                var e = new DaxFsCorruptedException($"directory {dir.Ino}", _sb.InodeOffset(dir.Ino),
                    $"entry '{System.Text.Encoding.UTF8.GetString(name)}' names inode {slot.Ino}, which is not a live inode of that type");
                if (_problems is null)
                    throw e;
                Report(e);
                dir.Dir.Remove(name);
                _damaged.Add(dir.Ino);
            }
        }
        if (_problems is null)
            FreeOrphans();
    }

    /// <summary>fsck's collected problems (null when mounting: the first problem throws).</summary>
    private readonly List<string>? _problems;

    /// <summary>fsck: inodes whose log or xattrs lost something and must be rewritten from DRAM by a repair.</summary>
    private readonly HashSet<ulong> _damaged = [];

    /// <summary>fsck: inode slots that failed validation.</summary>
    private readonly List<ulong> _badSlots = [];

    private void Report(DaxFsCorruptedException e) => _problems!.Add(e.Message);

    /// <summary>Runs a load step; in fsck mode a corruption is reported and the inode marked damaged instead of
    /// failing the whole load.</summary>
    private void Tolerate(Inode inode, Action step)
    {
        try
        {
            step();
        }
        catch (DaxFsCorruptedException e) when (_problems is not null)
        {
            Report(e);
            _damaged.Add(inode.Ino);
        }
    }

    /// <summary>Walks an inode's log from its tail back to its head, then replays the records in order.</summary>
    private void LoadLog(Inode inode)
    {
        ref InodeRecord r = ref inode.Rec;
        // The newest records may sit in the inode's inline area; count them to know how many the blocks hold.
        int inlineBytes = r.InlineLogUsed;
        ReadOnlySpan<byte> inl = inlineBytes > 0 ? r.Inline.AsSpan(0, inlineBytes) : default;
        int inlineCount = 0;
        for (int p = 0; p < inlineBytes;)
        {
            int len = inl.Length - p >= 2 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(inl[p..]) : 0;
            if (len < 16 || (len & 7) != 0 || p + len > inlineBytes)
                throw new DaxFsCorruptedException($"inline log of inode {inode.Ino}", _sb.InodeOffset(inode.Ino) + InodeRecord.InlineOffset + p,
                    $"record length {len} is invalid");
            p += len;
            inlineCount++;
        }
        long blockRecords = r.LogRecordCount - inlineCount;
        if (blockRecords < 0 || (r.LogTailBlock == 0 && blockRecords != 0))
            throw new DaxFsCorruptedException($"inode {inode.Ino}", _sb.InodeOffset(inode.Ino), $"log record count {r.LogRecordCount} disagrees with its log");
        if (r.LogTailBlock != 0)
            LoadLogBlocks(inode, blockRecords);
        long index = blockRecords;
        for (int p = 0; p < inlineBytes; index++)
        {
            long off = _sb.InodeOffset(inode.Ino) + InodeRecord.InlineOffset + p;
            LogRecord? rec = LogFormat.Decode(inl[p..], LogFormat.Seed(inode.Ino, r.Generation, r.LogEpoch, (ulong)index), out int len, out string? problem);
            if (rec is null)
                throw new DaxFsCorruptedException($"log record {index} of inode {inode.Ino}", off, problem!);
            ApplyLogRecord(inode, rec.Value, off);
            p += len;
        }
    }

    /// <summary>Walks an inode's log blocks from the tail back to the head, then replays their
    /// <paramref name="blockRecords"/> records in order.</summary>
    private void LoadLogBlocks(Inode inode, long blockRecords)
    {
        ref InodeRecord r = ref inode.Rec;
        var blocks = new long[r.LogBlockCount];
        var firsts = new long[r.LogBlockCount];
        long b = r.LogTailBlock;
        for (int k = r.LogBlockCount - 1; k >= 0; k--)
        {
            if (b < _sb.DataStart || b >= _sb.DataEnd)
                throw new DaxFsCorruptedException($"inode {inode.Ino}", _sb.InodeOffset(inode.Ino), $"log block {k} is at block {b}, outside the data area");
            long off = b * Layout.BlockSize;
            (long prev, long first) = LogFormat.DecodeHeader(_dev.GetSpan(off, LogFormat.HeaderSize), inode.Ino, r.Generation, r.LogEpoch, k, off);
            blocks[k] = b;
            firsts[k] = first;
            inode.LogBlocks.Add(b);
            if ((k == 0) != (prev == 0))
                throw new DaxFsCorruptedException($"log block {k} of inode {inode.Ino}", off, "the chain's length disagrees with the inode");
            b = prev;
        }
        inode.LogBlocks.Reverse(); // head to tail
        long index = 0;
        for (int k = 0; k < blocks.Length; k++)
        {
            long off = blocks[k] * Layout.BlockSize;
            bool tail = k == blocks.Length - 1;
            long until = tail ? blockRecords : firsts[k + 1];
            if (firsts[k] != index || until < index)
                throw new DaxFsCorruptedException($"log block {k} of inode {inode.Ino}", off, $"record numbering {firsts[k]} does not follow {index}");
            int limit = tail ? r.LogTailUsed : Layout.BlockSize;
            ReadOnlySpan<byte> block = _dev.GetSpan(off, Layout.BlockSize);
            int pos = LogFormat.HeaderSize;
            while (index < until)
            {
                LogRecord? rec = LogFormat.Decode(block[pos..limit], LogFormat.Seed(inode.Ino, r.Generation, r.LogEpoch, (ulong)index), out int len, out string? problem);
                if (rec is null)
                    throw new DaxFsCorruptedException($"log record {index} of inode {inode.Ino}", off + pos, problem!);
                ApplyLogRecord(inode, rec.Value, off + pos);
                pos += len;
                index++;
            }
            if (tail && pos != limit)
                throw new DaxFsCorruptedException($"log block {k} of inode {inode.Ino}", off, $"records end at {pos}, the inode says {limit}");
        }
    }

    /// <summary>Replays one record onto the DRAM map or index, checking it against the inode's kind and limits.</summary>
    private void ApplyLogRecord(Inode inode, in LogRecord rec, long offset)
    {
        string what = $"log record of inode {inode.Ino}";
        const ulong maxBlock = (ulong)(Layout.MaxFileBytes / Layout.BlockSize) + 1;
        if (inode.Map is { } map)
        {
            ulong count = rec.Type == LogRecordType.ExtentMap ? rec.C : rec.B;
            if (rec.A >= maxBlock || count > maxBlock - rec.A)
                throw new DaxFsCorruptedException(what, offset, "file block range out of range");
            switch (rec.Type)
            {
                case LogRecordType.ExtentMap:
                    if (rec.C == 0 || rec.B < (ulong)_sb.DataStart || rec.B >= (ulong)_sb.DataEnd || rec.C > (ulong)_sb.DataEnd - rec.B)
                        throw new DaxFsCorruptedException(what, offset, $"device blocks [{rec.B}, +{rec.C}) are outside the data area");
                    map.Map((long)rec.A, (long)rec.C, (long)rec.B, (rec.Flags & 1) != 0);
                    return;
                case LogRecordType.ExtentUnmap:
                    map.Unmap((long)rec.A, (long)rec.B);
                    return;
                case LogRecordType.ExtentConvert:
                    map.Convert((long)rec.A, (long)rec.B);
                    return;
                case LogRecordType.ExtentUnwrite:
                    map.MarkUnwritten((long)rec.A, (long)rec.B);
                    return;
            }
        }
        else if (inode.Dir is { } dir)
        {
            switch (rec.Type)
            {
                case LogRecordType.DirAdd:
                    if (rec.A < 1 || rec.A > (ulong)_sb.InodeCount || rec.B < DirFirstId || rec.B >= inode.Rec.NextDirentId)
                        throw new DaxFsCorruptedException(what, offset, $"entry for inode {rec.A} with id {rec.B} is out of range");
                    if (rec.Name!.AsSpan().IndexOfAny((byte)'/', (byte)0) >= 0 || rec.Name is [(byte)'.'] or [(byte)'.', (byte)'.'])
                        throw new DaxFsCorruptedException(what, offset, "entry name is not a valid name");
                    if (dir.TryGet(rec.Name, out _))
                        throw new DaxFsCorruptedException(what, offset, "entry name appears twice");
                    try
                    {
                        dir.Add(rec.Name!, new DirSlot(rec.A, rec.B, (byte)rec.C));
                    }
                    catch (InvalidOperationException e)
                    {
                        throw new DaxFsCorruptedException(what, offset, e.Message);
                    }
                    return;
                case LogRecordType.DirRemove:
                    if (!dir.TryGetById(rec.A, out byte[] name, out _))
                        throw new DaxFsCorruptedException(what, offset, $"removes entry id {rec.A}, which does not exist");
                    dir.Remove(name);
                    return;
            }
        }
        throw new DaxFsCorruptedException(what, offset, $"record type {rec.Type} does not belong to a {(inode.IsDir ? "directory" : "file")}");
    }

    private void LoadXattrs(Inode inode)
    {
        long b = inode.Rec.XattrBlock;
        if (b == 0)
            return;
        long off = b * Layout.BlockSize;
        try
        {
            inode.Xattrs = XattrFormat.Decode(_dev.GetSpan(off, Layout.BlockSize), inode.Ino, inode.Rec.Generation, off);
        }
        catch (DaxFsCorruptedException) when (_problems is not null)
        {
            inode.Rec.XattrBlock = 0; // lost; the block is not claimed, the repair clears the pointer
            throw;
        }
    }

    /// <summary>Claims every block the inode owns; a block owned twice, or outside the data area, is corruption.
    /// The inode's block count must match.</summary>
    private void ClaimBlocks(Inode inode)
    {
        long owned = 0;
        bool Claim(long start, long count, string what)
        {
            if (_alloc.Claim(start, count))
            {
                owned += count;
                return true;
            }
            var e = new DaxFsCorruptedException($"inode {inode.Ino}", _sb.InodeOffset(inode.Ino),
                $"{what} [{start}, +{count}) is outside the data area or owned by another inode");
            if (_problems is null)
                throw e;
            Report(e);
            _damaged.Add(inode.Ino);
            return false;
        }
        inode.LogBlocks.RemoveAll(b => !Claim(b, 1, "log block"));
        if (inode.Rec.XattrBlock != 0 && !Claim(inode.Rec.XattrBlock, 1, "xattr block"))
        {
            inode.Rec.XattrBlock = 0;
            inode.Xattrs = null;
        }
        if (inode.Map is { } map)
            foreach (Extent e in map.Extents.ToList())
                if (!Claim(e.DevBlock, e.Count, "data blocks"))
                    map.Unmap(e.FileBlock, e.Count);
        if (owned != inode.Rec.Blocks)
        {
            var e = new DaxFsCorruptedException($"inode {inode.Ino}", _sb.InodeOffset(inode.Ino), $"owns {owned} blocks but counts {inode.Rec.Blocks}");
            if (_problems is null)
                throw e;
            Report(e);
            _damaged.Add(inode.Ino);
            inode.Rec.Blocks = owned;
        }
    }

    /// <summary>Frees inodes left with no links (unlinked while open, then a crash or unmount).</summary>
    private void FreeOrphans()
    {
        foreach (Inode i in _inodes.Values.Where(i => i.Rec.Nlink == 0).ToList())
        {
            using var tx = Tx.Begin(this);
            tx.BeginChanges();
            FreeInode(tx, i);
            tx.Commit();
            OrphansFreed++;
        }
    }

    /// <summary>Releases an unlinked inode: its blocks and its slot, both once the transaction has committed.</summary>
    internal void FreeInode(Tx tx, Inode inode)
    {
        if (inode.Map is { Count: > 0 } map)
        {
            tx.Displaced.Clear();
            map.CopyTo(tx.Displaced);
            foreach (Extent e in tx.Displaced)
                tx.Free(e.DevBlock, e.Count);
        }
        foreach (long b in inode.LogBlocks)
            tx.Free(b, 1);
        if (inode.Rec.XattrBlock != 0)
            tx.Free(inode.Rec.XattrBlock, 1);
        uint gen = inode.Rec.Generation;
        inode.Rec = new InodeRecord { Generation = gen };
        inode.Freed = true;
        tx.Touch(inode);
        lock (_itLock)
        {
            _inodes.TryRemove(inode.Ino, out _);
            _generations[inode.Ino] = gen;
        }
        // The slot is taken again only once this transaction has committed (CommitTx): a call creating a file in
        // between -- FUSE's FORGET frees an unlinked inode outside the namespace lock -- could otherwise reuse the
        // number and commit its new image before this one's freed image, which would then win.
        tx.FreedInodes.Add(inode.Ino);
    }

    /// <summary>Takes a free inode slot (ENOSPC when none) with the next generation of that slot.</summary>
    private (ulong Ino, uint Generation) AllocateInodeSlot()
    {
        lock (_itLock)
        {
            if (_freeInodes == 0)
                throw new DaxFsException(Errno.ENOSPC, $"all {_sb.InodeCount} inodes are in use");
            // Word by word from the cursor: full words are skipped 64 slots at a time.
            long words = (_sb.InodeCount >> 6) + 1;
            long start = _inodeCursor >> 6;
            for (long k = 0; k <= words; k++)
            {
                long w = (start + k) % words;
                ulong used = _inodeUsed[w];
                if (w == 0)
                    used |= 1; // inode 0 does not exist
                if (used == ulong.MaxValue)
                    continue;
                ulong ino = (ulong)(w << 6) + (ulong)System.Numerics.BitOperations.TrailingZeroCount(~used);
                if (ino < 1 || ino > (ulong)_sb.InodeCount)
                    continue;
                _inodeUsed[ino >> 6] |= 1UL << (int)(ino & 63);
                _inodeCursor = (long)ino;
                _freeInodes--;
                return (ino, _generations[ino] + 1);
            }
            throw new InvalidOperationException("free inode count disagrees with the inode bitmap");
        }
    }

    /// <summary>Returns a slot taken by <see cref="AllocateInodeSlot"/> for a call that then failed.</summary>
    private void ReturnInodeSlot(ulong ino) => ReleaseInodeSlots([ino]);

    /// <summary>Makes inode slots allocatable: freed by a committed transaction, or taken by a call that failed.</summary>
    internal void ReleaseInodeSlots(ReadOnlySpan<ulong> slots)
    {
        lock (_itLock)
        {
            foreach (ulong ino in slots)
            {
                _inodeUsed[ino >> 6] &= ~(1UL << (int)(ino & 63));
                _freeInodes++;
            }
        }
    }
}
