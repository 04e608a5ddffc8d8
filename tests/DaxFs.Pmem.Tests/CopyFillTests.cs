using DaxFs.Pmem;
using Xunit;

namespace DaxFs.Pmem.Tests;

/// <summary>Copy and fill put exactly the given bytes at exactly the given place, for every length 0..4160 and every
/// source and destination misalignment 0..63, on both the cached and the non-temporal paths.</summary>
public class CopyFillTests
{
    private const int MaxLength = 4160;
    private const int Guard = 128;

    [Theory]
    [InlineData(PersistFlags.None)]
    [InlineData(PersistFlags.NonTemporal)]
    [InlineData(PersistFlags.Temporal)]
    [InlineData(PersistFlags.NoFlush)]
    public void CopyEveryLengthAndEveryMisalignmentPair(PersistFlags flags)
    {
        // Flush 'none' keeps the 17 M copies fast; write-back coverage is checked by the observer tests.
        using var dev = Env.EmulatedMemory(4 << 20, FlushInstruction.None, threshold: 256);
        var a = new byte[MaxLength + 64];
        new Random(1).NextBytes(a);
        byte[] b = a.Select(x => (byte)~x).ToArray(); // differs from a in every byte
        Parallel.For(0, 64, dstMis =>
        {
            long dst = Guard + dstMis * 16384L + dstMis; // a 16 KiB window per misalignment, base 64-aligned
            for (int srcMis = 0; srcMis < 64; srcMis++)
            {
                dev.Fill(dst - Guard, MaxLength + 2 * Guard, 0xA5, PersistFlags.NoFlush);
                // Lengths grow, so bytes past dst+len were never written in this sweep and must still be guard bytes;
                // the source alternates between a and ~a, so a store that did not happen shows in the payload.
                for (int len = 0; len <= MaxLength; len++)
                {
                    ReadOnlySpan<byte> s = ((len & 1) == 0 ? a : b).AsSpan(srcMis, len);
                    dev.Copy(dst, s, flags);
                    if (!dev.GetSpan(dst, len).SequenceEqual(s)
                        || dev.GetSpan(dst - Guard, Guard).IndexOfAnyExcept((byte)0xA5) >= 0
                        || dev.GetSpan(dst + len, Guard).IndexOfAnyExcept((byte)0xA5) >= 0)
                        Assert.Fail($"copy of {len} bytes, source misaligned by {srcMis}, destination by {dstMis}, flags {flags}: wrong bytes");
                }
            }
        });
    }

    [Theory]
    [InlineData(PersistFlags.None)]
    [InlineData(PersistFlags.NonTemporal)]
    [InlineData(PersistFlags.Temporal)]
    public void CopyEachLengthIsExactAtEveryDestinationMisalignment(PersistFlags flags)
    {
        // Stronger per-length check: the bytes just past the end must still be the guard pattern.
        using var dev = Env.EmulatedMemory(1 << 20, FlushInstruction.None, threshold: 256);
        var src = new byte[MaxLength];
        new Random(2).NextBytes(src);
        Parallel.For(0, 64, dstMis =>
        {
            long dst = Guard + dstMis * 16384L + dstMis;
            var got = new byte[MaxLength + 2 * Guard];
            for (int len = 0; len <= MaxLength; len++)
            {
                dev.Fill(dst - Guard, MaxLength + 2 * Guard, 0x5A, PersistFlags.NoFlush);
                dev.Copy(dst, src.AsSpan(0, len), flags);
                dev.Read(dst - Guard, got);
                for (int i = 0; i < Guard; i++)
                    Assert.True(got[i] == 0x5A, $"byte before dst overwritten: len {len} dst+{dstMis}");
                Assert.True(got.AsSpan(Guard, len).SequenceEqual(src.AsSpan(0, len)), $"payload wrong: len {len} dst+{dstMis}");
                Assert.True(got[Guard + len] == 0x5A, $"byte after dst overwritten: len {len} dst+{dstMis}");
            }
        });
    }

    [Theory]
    [InlineData(PersistFlags.None)]
    [InlineData(PersistFlags.NonTemporal)]
    [InlineData(PersistFlags.Temporal)]
    [InlineData(PersistFlags.NoFlush)]
    public void FillEveryLengthAndMisalignment(PersistFlags flags)
    {
        using var dev = Env.EmulatedMemory(1 << 20, FlushInstruction.None, threshold: 256);
        Parallel.For(0, 64, dstMis =>
        {
            long dst = Guard + dstMis * 16384L + dstMis;
            var got = new byte[MaxLength + 2 * Guard];
            for (int len = 0; len <= MaxLength; len++)
            {
                byte v = (byte)(len | 1);
                dev.Fill(dst - Guard, MaxLength + 2 * Guard, 0, PersistFlags.NoFlush);
                dev.Fill(dst, len, v, flags);
                dev.Read(dst - Guard, got);
                Assert.True(got.AsSpan(0, Guard).IndexOfAnyExcept((byte)0) < 0, $"fill wrote before dst: len {len} dst+{dstMis}");
                Assert.True(got.AsSpan(Guard, len).IndexOfAnyExcept(v) < 0, $"fill payload wrong: len {len} dst+{dstMis}");
                Assert.True(got.AsSpan(Guard + len).IndexOfAnyExcept((byte)0) < 0, $"fill wrote past the end: len {len} dst+{dstMis}");
            }
        });
    }

    [Fact]
    public void LargeCopyAndFillCrossManyChunks()
    {
        using var dev = Env.EmulatedMemory(64 << 20);
        var src = new byte[(8 << 20) + 13];
        new Random(3).NextBytes(src);
        dev.CopyPersist(4097, src);
        var got = new byte[src.Length];
        dev.Read(4097, got);
        Assert.True(src.AsSpan().SequenceEqual(got));
        dev.FillPersist(7, (40L << 20) + 3, 0xEE);
        Assert.Equal(-1, dev.GetSpan(7, (40 << 20) + 3).IndexOfAnyExcept((byte)0xEE));
        Assert.Equal(0, dev.GetSpan(0, 7).IndexOfAnyExcept((byte)0) < 0 ? 0 : 1);
    }

    [Fact]
    public void TypedStoresRoundTrip()
    {
        using var dev = Env.EmulatedMemory(4096);
        dev.WriteUInt64(64, 0x0123456789ABCDEF);
        dev.Persist(64, 8);
        Assert.Equal(0x0123456789ABCDEFUL, dev.ReadUInt64(64));
        Assert.Equal(0x89ABCDEFu, dev.ReadUInt32(64));
        dev.Write(100, [1, 2, 3]);
        Assert.Equal(new byte[] { 1, 2, 3 }, dev.GetSpan(100, 3).ToArray());
    }
}
