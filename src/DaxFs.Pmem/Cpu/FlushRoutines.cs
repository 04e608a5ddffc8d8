using DaxFs.Pmem.Interop;

namespace DaxFs.Pmem.Cpu;

/// <summary>FlushRoutines -- machine code for "write back every cache line of [addr, addr+len)" with CLWB,
/// CLFLUSHOPT or CLFLUSH, written once into an executable page. .NET has no intrinsic for these
/// instructions; three 30-byte loops in a page of our own need no native build step and no native package.</summary>
internal static unsafe class FlushRoutines
{
    // System V x86-64 ABI: rdi = addr, rsi = len. Assembled with GNU as and checked with objdump:
    //   mov rax, rdi; and rax, -64; lea rdx, [rdi+rsi]; cmp rax, rdx; jae done
    //   loop: <flush> [rax]; add rax, 64; cmp rax, rdx; jb loop
    //   done: ret
    private static readonly byte[] Prologue = [0x48, 0x89, 0xF8, 0x48, 0x83, 0xE0, 0xC0, 0x48, 0x8D, 0x14, 0x37, 0x48, 0x39, 0xD0, 0x73, 0x0D];
    private static readonly byte[] Epilogue = [0x48, 0x83, 0xC0, 0x40, 0x48, 0x39, 0xD0, 0x72, 0xF3, 0xC3];
    private static readonly byte[] ClwbRax = [0x66, 0x0F, 0xAE, 0x30];       // clwb [rax]
    private static readonly byte[] ClflushOptRax = [0x66, 0x0F, 0xAE, 0x38]; // clflushopt [rax]
    private static readonly byte[] ClflushRax = [0x90, 0x0F, 0xAE, 0x38];    // nop; clflush [rax] (same length)
    private const int RoutineSize = 32;

    private static readonly Lazy<nint> Page = new(Emit, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The address of the routine for <paramref name="instruction"/> (Clwb, ClflushOpt or Clflush).
    /// The caller must have checked that the CPU supports it: executing it otherwise raises SIGILL.</summary>
    public static delegate* unmanaged[SuppressGCTransition]<byte*, nuint, void> Get(FlushInstruction instruction)
    {
        int slot = instruction switch
        {
            FlushInstruction.Clwb => 0,
            FlushInstruction.ClflushOpt => 1,
            FlushInstruction.Clflush => 2,
            _ => throw new ArgumentOutOfRangeException(nameof(instruction), instruction, "no flush routine for this instruction"),
        };
        return (delegate* unmanaged[SuppressGCTransition]<byte*, nuint, void>)(Page.Value + slot * RoutineSize);
    }

    /// <summary>Writes the three routines into a fresh read+execute page.</summary>
    private static nint Emit()
    {
        var code = new byte[3 * RoutineSize];
        code.AsSpan().Fill(0xCC); // int3 everywhere else
        byte[][] bodies = [ClwbRax, ClflushOptRax, ClflushRax];
        for (int i = 0; i < bodies.Length; i++)
        {
            Span<byte> r = code.AsSpan(i * RoutineSize, RoutineSize);
            Prologue.CopyTo(r);
            bodies[i].CopyTo(r[Prologue.Length..]);
            Epilogue.CopyTo(r[(Prologue.Length + 4)..]);
        }
        return ExecutablePage.Create(code, "the cache-flush routines");
    }
}

/// <summary>ExecutablePage -- machine code of our own in a fresh page that is written, then made read+execute (never
/// write+execute at once).</summary>
internal static unsafe class ExecutablePage
{
    /// <summary>A page holding <paramref name="code"/> (int3 after it); <paramref name="what"/> names it in errors.</summary>
    public static nint Create(ReadOnlySpan<byte> code, string what)
    {
        const int size = 4096;
        if (code.Length > size)
            throw new ArgumentException($"{what}: {code.Length} bytes do not fit in a page", nameof(code));
        nint page = Libc.MMap(0, size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
        if (page == Libc.MAP_FAILED)
        {
            var (errno, text) = Libc.LastError();
            throw new PmemException($"cannot allocate a page for {what}: mmap failed with {text}", errno);
        }
        var span = new Span<byte>((void*)page, size);
        span.Fill(0xCC);
        code.CopyTo(span);
        if (Libc.MProtect(page, size, Libc.PROT_READ | Libc.PROT_EXEC) != 0)
        {
            var (errno, text) = Libc.LastError();
            Libc.MUnmap(page, size);
            throw new PmemException($"cannot make {what} executable: mprotect failed with {text} " +
                "(is the process forbidden to create executable memory?)", errno);
        }
        return page;
    }

    /// <summary>Releases a page from <see cref="Create"/>.</summary>
    public static void Free(nint page) => Libc.MUnmap(page, 4096);
}
