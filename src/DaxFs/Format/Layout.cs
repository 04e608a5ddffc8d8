namespace DaxFs.Format;

/// <summary>Layout -- the constants of the on-media format (version 1). Little-endian throughout.
/// <code>
/// block 0             superblock (primary)
/// block 1             journal header (two alternating 64-byte slots)
/// blocks 2..          journal log (transactions of redo records for the inode table)
/// then                inode table (256-byte inode slots; inode n at slot n-1)
/// then (2 MiB-aligned) data area: file data, per-inode log blocks, xattr blocks, symlink blocks
/// last block          superblock (backup)
/// </code>
/// Upgrade rule: a reader accepts any minor version of its major version and ignores unknown compat features; it
/// refuses an unknown major version or an unknown incompat feature with a clear error.</summary>
internal static class Layout
{
    public const int BlockSize = 4096;
    public const int BlockShift = 12;
    public const int InodeSize = 256;
    public const int InodesPerBlock = BlockSize / InodeSize;
    public const uint VersionMajor = 1;
    public const uint VersionMinor = 0;
    public const ulong RootIno = 1;
    public const long BlocksPerGroup = 512;          // 2 MiB: one PMD
    public const long GroupBytes = BlocksPerGroup * BlockSize;
    public const long MinDeviceBytes = 1 << 20;
    public const int MaxNameBytes = 255;
    public const int MaxSymlinkBytes = 4095;
    public const int LogBlockHeaderSize = 64;
    public const long MaxFileBytes = (1L << 44) - BlockSize; // 16 TiB: 2^32 blocks

    public const ulong SuperMagic = 0x3142_5346_5841_4144;   // "DAXFSB1" + '1' (little-endian "DAXFSB11"-ish)
    public const ulong JournalMagic = 0x3148_4A53_4658_4144; // "DAXFSJH1"
    public const uint TxMagic = 0x5854_5844;                 // "DXTX"
    public const uint CommitMagic = 0x4D43_5844;             // "DXCM"
    public const uint LogMagic = 0x474C_5844;                // "DXLG"
    public const uint XattrMagic = 0x5841_5844;              // "DXAX"
}
