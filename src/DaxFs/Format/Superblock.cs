using System.Buffers.Binary;

namespace DaxFs.Format;

/// <summary>Superblock -- the volume's geometry and identity, 512 bytes at the start of block 0 and of the last
/// block, with a CRC32C. <see cref="Validate"/> checks the fields in order with a distinct message for each.</summary>
internal sealed record Superblock
{
    public const int Size = 512;
    private const int CrcOffset = 508;

    public uint VersionMajor { get; init; } = Layout.VersionMajor;
    public uint VersionMinor { get; init; } = Layout.VersionMinor;
    public long BlockCount { get; init; }
    public long JournalStart { get; init; }
    public long JournalBlocks { get; init; }
    public long InodeTableStart { get; init; }
    public long InodeCount { get; init; }
    public long DataStart { get; init; }
    public long DataEnd { get; init; }
    public Guid Uuid { get; init; }
    public long CreatedNs { get; init; }
    public ulong FeatureCompat { get; init; }
    public ulong FeatureIncompat { get; init; }
    public ulong FeatureRoCompat { get; init; }

    /// <summary>Blocks of the inode table.</summary>
    public long InodeTableBlocks => (InodeCount + Layout.InodesPerBlock - 1) / Layout.InodesPerBlock;

    /// <summary>Byte offset of inode slot <paramref name="ino"/>.</summary>
    public long InodeOffset(ulong ino) => InodeTableStart * Layout.BlockSize + (long)(ino - 1) * Layout.InodeSize;

    /// <summary>Byte offset of the journal header block.</summary>
    public long JournalHeaderOffset => JournalStart * Layout.BlockSize;

    /// <summary>Byte offset of the journal log.</summary>
    public long LogOffset => (JournalStart + 1) * Layout.BlockSize;

    /// <summary>Bytes of the journal log.</summary>
    public long LogBytes => (JournalBlocks - 1) * Layout.BlockSize;

    /// <summary>Computes the geometry mkfs gives a device of <paramref name="deviceBytes"/>.</summary>
    public static Superblock ForDevice(long deviceBytes, long? journalBytes, long? inodeCount, long nowNs)
    {
        if (deviceBytes < Layout.MinDeviceBytes)
            throw new DaxFsException(Errno.EINVAL, $"a volume needs at least {Layout.MinDeviceBytes} bytes; the device has {deviceBytes}");
        long blocks = deviceBytes / Layout.BlockSize;
        long jBytes = journalBytes ?? Math.Clamp(deviceBytes / 64, 256 << 10, 64 << 20);
        long jBlocks = Math.Max(2, jBytes / Layout.BlockSize + 1);
        long inodes = inodeCount ?? Math.Clamp(deviceBytes / (16 << 10), 64, uint.MaxValue);
        long itStart = 1 + jBlocks;
        long itBlocks = (inodes + Layout.InodesPerBlock - 1) / Layout.InodesPerBlock;
        long dataStart = itStart + itBlocks;
        // Align the data area to 2 MiB when the device is big enough that the loss is small, so that block
        // numbers that are multiples of 512 are 2 MiB-aligned device offsets (PMD mappings).
        long aligned = (dataStart + Layout.BlocksPerGroup - 1) / Layout.BlocksPerGroup * Layout.BlocksPerGroup;
        if (aligned + Layout.BlocksPerGroup < blocks - 1)
            dataStart = aligned;
        long dataEnd = blocks - 1;
        if (dataEnd - dataStart < 16)
            throw new DaxFsException(Errno.EINVAL, $"the device ({deviceBytes} bytes) is too small for a journal of {jBytes} bytes and {inodes} inodes");
        return new Superblock
        {
            BlockCount = blocks, JournalStart = 1, JournalBlocks = jBlocks, InodeTableStart = itStart, InodeCount = inodes,
            DataStart = dataStart, DataEnd = dataEnd, Uuid = Guid.NewGuid(), CreatedNs = nowNs,
        };
    }

    /// <summary>The 512 on-media bytes, checksum included.</summary>
    public byte[] Encode()
    {
        var b = new byte[Size];
        Span<byte> s = b;
        BinaryPrimitives.WriteUInt64LittleEndian(s, Layout.SuperMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], VersionMajor);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], VersionMinor);
        BinaryPrimitives.WriteUInt32LittleEndian(s[16..], Layout.BlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], Layout.InodeSize);
        BinaryPrimitives.WriteInt64LittleEndian(s[24..], BlockCount);
        BinaryPrimitives.WriteInt64LittleEndian(s[32..], JournalStart);
        BinaryPrimitives.WriteInt64LittleEndian(s[40..], JournalBlocks);
        BinaryPrimitives.WriteInt64LittleEndian(s[48..], InodeTableStart);
        BinaryPrimitives.WriteInt64LittleEndian(s[56..], InodeCount);
        BinaryPrimitives.WriteInt64LittleEndian(s[64..], DataStart);
        BinaryPrimitives.WriteInt64LittleEndian(s[72..], DataEnd);
        BinaryPrimitives.WriteUInt64LittleEndian(s[80..], Layout.RootIno);
        Uuid.TryWriteBytes(s[88..104]);
        BinaryPrimitives.WriteInt64LittleEndian(s[104..], CreatedNs);
        BinaryPrimitives.WriteUInt64LittleEndian(s[112..], FeatureCompat);
        BinaryPrimitives.WriteUInt64LittleEndian(s[120..], FeatureIncompat);
        BinaryPrimitives.WriteUInt64LittleEndian(s[128..], FeatureRoCompat);
        BinaryPrimitives.WriteUInt32LittleEndian(s[CrcOffset..], Crc.Compute(s[..CrcOffset]));
        return b;
    }

    /// <summary>Parses and validates 512 bytes read at <paramref name="offset"/> of a device of
    /// <paramref name="deviceBytes"/>; throws <see cref="DaxFsCorruptedException"/> naming the first bad field.</summary>
    public static Superblock Decode(ReadOnlySpan<byte> s, long offset, long deviceBytes)
    {
        const string what = "superblock";
        if (s.Length < Size)
            throw new DaxFsCorruptedException(what, offset, $"only {s.Length} bytes");
        ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(s);
        if (magic != Layout.SuperMagic)
            throw new DaxFsCorruptedException(what, offset, $"bad magic 0x{magic:x16}: not a DaxFS volume");
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(s[CrcOffset..]);
        uint want = Crc.Compute(s[..CrcOffset]);
        if (crc != want)
            throw new DaxFsCorruptedException(what, offset, $"checksum 0x{crc:x8} does not match its contents (0x{want:x8})");
        var sb = new Superblock
        {
            VersionMajor = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]),
            VersionMinor = BinaryPrimitives.ReadUInt32LittleEndian(s[12..]),
            BlockCount = BinaryPrimitives.ReadInt64LittleEndian(s[24..]),
            JournalStart = BinaryPrimitives.ReadInt64LittleEndian(s[32..]),
            JournalBlocks = BinaryPrimitives.ReadInt64LittleEndian(s[40..]),
            InodeTableStart = BinaryPrimitives.ReadInt64LittleEndian(s[48..]),
            InodeCount = BinaryPrimitives.ReadInt64LittleEndian(s[56..]),
            DataStart = BinaryPrimitives.ReadInt64LittleEndian(s[64..]),
            DataEnd = BinaryPrimitives.ReadInt64LittleEndian(s[72..]),
            Uuid = new Guid(s[88..104]),
            CreatedNs = BinaryPrimitives.ReadInt64LittleEndian(s[104..]),
            FeatureCompat = BinaryPrimitives.ReadUInt64LittleEndian(s[112..]),
            FeatureIncompat = BinaryPrimitives.ReadUInt64LittleEndian(s[120..]),
            FeatureRoCompat = BinaryPrimitives.ReadUInt64LittleEndian(s[128..]),
        };
        sb.Validate(BinaryPrimitives.ReadUInt32LittleEndian(s[16..]), BinaryPrimitives.ReadUInt32LittleEndian(s[20..]),
            BinaryPrimitives.ReadUInt64LittleEndian(s[80..]), offset, deviceBytes);
        return sb;
    }

    /// <summary>Checks version, sizes and geometry in order; each failure has its own message.</summary>
    private void Validate(uint blockSize, uint inodeSize, ulong rootIno, long offset, long deviceBytes)
    {
        const string what = "superblock";
        if (VersionMajor != Layout.VersionMajor)
            throw new DaxFsCorruptedException(what, offset, $"format version {VersionMajor}.{VersionMinor} is not supported (this DaxFS reads {Layout.VersionMajor}.x)");
        if (FeatureIncompat != 0)
            throw new DaxFsCorruptedException(what, offset, $"unknown incompatible features 0x{FeatureIncompat:x}");
        if (FeatureRoCompat != 0)
            throw new DaxFsCorruptedException(what, offset, $"unknown read-only-compatible features 0x{FeatureRoCompat:x}");
        if (blockSize != Layout.BlockSize)
            throw new DaxFsCorruptedException(what, offset, $"block size {blockSize} (only {Layout.BlockSize} is supported)");
        if (inodeSize != Layout.InodeSize)
            throw new DaxFsCorruptedException(what, offset, $"inode size {inodeSize} (only {Layout.InodeSize} is supported)");
        if (BlockCount < Layout.MinDeviceBytes / Layout.BlockSize || BlockCount > deviceBytes / Layout.BlockSize)
            throw new DaxFsCorruptedException(what, offset, $"block count {BlockCount} does not fit the {deviceBytes}-byte device");
        if (JournalStart != 1)
            throw new DaxFsCorruptedException(what, offset, $"journal start {JournalStart} (must be 1)");
        if (JournalBlocks < 2 || JournalBlocks > BlockCount)
            throw new DaxFsCorruptedException(what, offset, $"journal length {JournalBlocks} blocks is out of range");
        if (InodeTableStart != JournalStart + JournalBlocks)
            throw new DaxFsCorruptedException(what, offset, $"inode table start {InodeTableStart} does not follow the journal");
        if (InodeCount < 1 || InodeCount > uint.MaxValue || InodeTableStart + InodeTableBlocks > BlockCount)
            throw new DaxFsCorruptedException(what, offset, $"inode count {InodeCount} is out of range");
        if (DataStart < InodeTableStart + InodeTableBlocks || DataStart >= DataEnd)
            throw new DaxFsCorruptedException(what, offset, $"data area start {DataStart} is out of range");
        if (DataEnd > BlockCount - 1)
            throw new DaxFsCorruptedException(what, offset, $"data area end {DataEnd} runs into the backup superblock");
        if (rootIno != Layout.RootIno)
            throw new DaxFsCorruptedException(what, offset, $"root inode {rootIno} (must be {Layout.RootIno})");
    }
}
