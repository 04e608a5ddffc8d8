using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DaxFs.Pmem.Cpu;

/// <summary>NonTemporal -- bulk copies and fills with streaming (non-temporal) stores that bypass the cache, so
/// the data needs no write-back, only a fence. Each body takes a 64-byte-aligned destination and a length that
/// is a multiple of 64; the caller handles the unaligned head and tail with cached stores and a write-back.</summary>
internal static unsafe class NonTemporal
{
    /// <summary>Which vector width the bodies use.</summary>
    public enum Width
    {
        /// <summary>16-byte MOVNTDQ.</summary>
        Sse2,

        /// <summary>32-byte VMOVNTDQ.</summary>
        Avx,

        /// <summary>64-byte VMOVNTDQ (zmm).</summary>
        Avx512,
    }

    /// <summary>The widest width the CPU offers after the DAXFS_NO_* switches.</summary>
    public static Width Best(CpuFeatures cpu) => cpu.Avx512 ? Width.Avx512 : cpu.Avx ? Width.Avx : Width.Sse2;

    /// <summary>The copy body for a width.</summary>
    public static delegate*<byte*, byte*, nuint, void> Copier(Width w) => w switch
    {
        Width.Avx512 => &CopyAvx512,
        Width.Avx => &CopyAvx,
        _ => &CopySse2,
    };

    /// <summary>The fill body for a width.</summary>
    public static delegate*<byte*, byte, nuint, void> Filler(Width w) => w switch
    {
        Width.Avx512 => &FillAvx512,
        Width.Avx => &FillAvx,
        _ => &FillSse2,
    };

    /// <summary>CopySse2 -- 64 bytes per step with four 16-byte streaming stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CopySse2(byte* dst, byte* src, nuint len)
    {
        for (byte* end = dst + len; dst < end; dst += 64, src += 64)
        {
            Vector128<byte> a = Sse2.LoadVector128(src), b = Sse2.LoadVector128(src + 16);
            Vector128<byte> c = Sse2.LoadVector128(src + 32), d = Sse2.LoadVector128(src + 48);
            Sse2.StoreAlignedNonTemporal(dst, a);
            Sse2.StoreAlignedNonTemporal(dst + 16, b);
            Sse2.StoreAlignedNonTemporal(dst + 32, c);
            Sse2.StoreAlignedNonTemporal(dst + 48, d);
        }
    }

    /// <summary>CopyAvx -- 256 bytes per step (eight loads, then eight 32-byte streaming stores, as PMDK's
    /// memmove_movnt does, so that the loads overlap), then 64-byte steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CopyAvx(byte* dst, byte* src, nuint len)
    {
        byte* end = dst + len;
        for (; end - dst >= 256; dst += 256, src += 256)
        {
            Vector256<byte> a = Avx.LoadVector256(src), b = Avx.LoadVector256(src + 32);
            Vector256<byte> c = Avx.LoadVector256(src + 64), d = Avx.LoadVector256(src + 96);
            Vector256<byte> e = Avx.LoadVector256(src + 128), f = Avx.LoadVector256(src + 160);
            Vector256<byte> g = Avx.LoadVector256(src + 192), h = Avx.LoadVector256(src + 224);
            Avx.StoreAlignedNonTemporal(dst, a);
            Avx.StoreAlignedNonTemporal(dst + 32, b);
            Avx.StoreAlignedNonTemporal(dst + 64, c);
            Avx.StoreAlignedNonTemporal(dst + 96, d);
            Avx.StoreAlignedNonTemporal(dst + 128, e);
            Avx.StoreAlignedNonTemporal(dst + 160, f);
            Avx.StoreAlignedNonTemporal(dst + 192, g);
            Avx.StoreAlignedNonTemporal(dst + 224, h);
        }
        for (; dst < end; dst += 64, src += 64)
        {
            Vector256<byte> a = Avx.LoadVector256(src), b = Avx.LoadVector256(src + 32);
            Avx.StoreAlignedNonTemporal(dst, a);
            Avx.StoreAlignedNonTemporal(dst + 32, b);
        }
    }

    /// <summary>CopyAvx512 -- 256 bytes per step with four 64-byte streaming stores, then 64-byte steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CopyAvx512(byte* dst, byte* src, nuint len)
    {
        byte* end = dst + len;
        for (; end - dst >= 256; dst += 256, src += 256)
        {
            Vector512<byte> a = Avx512F.LoadVector512(src), b = Avx512F.LoadVector512(src + 64);
            Vector512<byte> c = Avx512F.LoadVector512(src + 128), d = Avx512F.LoadVector512(src + 192);
            Avx512F.StoreAlignedNonTemporal(dst, a);
            Avx512F.StoreAlignedNonTemporal(dst + 64, b);
            Avx512F.StoreAlignedNonTemporal(dst + 128, c);
            Avx512F.StoreAlignedNonTemporal(dst + 192, d);
        }
        for (; dst < end; dst += 64, src += 64)
            Avx512F.StoreAlignedNonTemporal(dst, Avx512F.LoadVector512(src));
    }

    /// <summary>FillSse2 -- 64 bytes per step with 16-byte streaming stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FillSse2(byte* dst, byte value, nuint len)
    {
        Vector128<byte> v = Vector128.Create(value);
        for (byte* end = dst + len; dst < end; dst += 64)
        {
            Sse2.StoreAlignedNonTemporal(dst, v);
            Sse2.StoreAlignedNonTemporal(dst + 16, v);
            Sse2.StoreAlignedNonTemporal(dst + 32, v);
            Sse2.StoreAlignedNonTemporal(dst + 48, v);
        }
    }

    /// <summary>FillAvx -- 64 bytes per step with 32-byte streaming stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FillAvx(byte* dst, byte value, nuint len)
    {
        Vector256<byte> v = Vector256.Create(value);
        for (byte* end = dst + len; dst < end; dst += 64)
        {
            Avx.StoreAlignedNonTemporal(dst, v);
            Avx.StoreAlignedNonTemporal(dst + 32, v);
        }
    }

    /// <summary>FillAvx512 -- 64 bytes per step with one 64-byte streaming store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FillAvx512(byte* dst, byte value, nuint len)
    {
        Vector512<byte> v = Vector512.Create(value);
        for (byte* end = dst + len; dst < end; dst += 64)
            Avx512F.StoreAlignedNonTemporal(dst, v);
    }
}
