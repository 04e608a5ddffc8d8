using System.Buffers.Binary;
using System.Numerics;

namespace DaxFs.Format;

/// <summary>Crc -- CRC32C (Castagnoli) over spans, with the hardware instruction 8 bytes at a time
/// (<see cref="BitOperations.Crc32C(uint, ulong)"/>). Every on-media structure is checked with it.</summary>
internal static class Crc
{
    /// <summary>CRC32C of <paramref name="data"/>, continuing from <paramref name="seed"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data, uint seed = 0)
    {
        uint crc = ~seed;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data)
            crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>CRC32C of <paramref name="data"/> with the 4 bytes at <paramref name="crcOffset"/> taken as zero,
    /// seeded with <paramref name="seed"/> (structures seed with their owner and position, so that a record copied
    /// to the wrong place does not validate).</summary>
    public static uint ComputeSkipping(ReadOnlySpan<byte> data, int crcOffset, uint seed = 0)
    {
        uint c = Compute(data[..crcOffset], seed);
        c = Compute([0, 0, 0, 0], c);
        return Compute(data[(crcOffset + 4)..], c);
    }

    /// <summary>A seed made of two 64-bit identities (owner inode, record index).</summary>
    public static uint Seed(ulong a, ulong b) => (uint)(a * 0x9E3779B97F4A7C15UL ^ b * 0xC2B2AE3D27D4EB4FUL ^ (a >> 29) ^ (b >> 31));
}
