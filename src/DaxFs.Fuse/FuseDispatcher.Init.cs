using DaxFs.Fuse.Raw;

namespace DaxFs.Fuse;

// INIT, DESTROY and the requests that get no reply (FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY).
internal sealed partial class FuseDispatcher
{
    /// <summary>What DaxFS asks for at INIT (kept only where the kernel offers it). FUSE_WRITEBACK_CACHE is never
    /// asked: every write must reach the media through the file system, in order.</summary>
    internal const FuseInitFlags Wanted = FuseInitFlags.AsyncRead | FuseInitFlags.BigWrites |
        FuseInitFlags.DoReaddirplus | FuseInitFlags.ParallelDirops | FuseInitFlags.MaxPages |
        FuseInitFlags.CacheSymlinks | FuseInitFlags.AsyncDio | FuseInitFlags.DirectIoAllowMmap;

    private const ushort MaxBackground = 64, CongestionThreshold = 48;

    private void Init(in FuseCall c, ref FuseRequestReader r)
    {
        var init = r.ReadPrefix<FuseInitIn>(FuseInitIn.CompatSize);
        if (init.Major > FuseKernel.KernelVersion)
        {
            // fuse.h: answer with our major only; the kernel then sends an INIT of that major.
            ReplyOk(c, new FuseInitOut { Major = FuseKernel.KernelVersion, Minor = FuseKernel.KernelMinorVersion });
            return;
        }
        if (init.Major < FuseKernel.KernelVersion || init.Minor < FuseKernel.MinimumKernelMinorVersion)
        {
            FailInit($"kernel FUSE protocol {init.Major}.{init.Minor} is older than the 7.23 DaxFS needs");
            throw new DaxFsException((Errno)FuseErrno.EPROTO, InitFailure!);
        }
        var kernelFlags = (FuseInitFlags)init.Flags;
        if (kernelFlags.HasFlag(FuseInitFlags.InitExt))
            kernelFlags |= (FuseInitFlags)((ulong)init.Flags2 << 32);
        var wanted = Wanted | (_options.ExportSupport ? FuseInitFlags.ExportSupport : 0) |
            (_fs.HandlesKillPrivV2 ? FuseInitFlags.HandleKillprivV2 : 0);
        var flags = (wanted & kernelFlags) | (kernelFlags & FuseInitFlags.InitExt);
        uint maxWrite = (uint)_options.MaxWrite;
        ushort maxPages = (ushort)(maxWrite / 4096);
        var info = new FuseConnectionInfo(FuseKernel.KernelVersion,
            Math.Min(init.Minor, FuseKernel.KernelMinorVersion), init.Minor, kernelFlags, flags, maxWrite,
            init.MaxReadahead, maxPages);
        try
        {
            _fs.Init(info);
        }
        catch (Exception e)
        {
            FailInit($"the file system refused INIT: {e.Message}");
            throw;
        }
        var reply = new FuseInitOut
        {
            Major = FuseKernel.KernelVersion,
            Minor = FuseKernel.KernelMinorVersion,
            MaxReadahead = init.MaxReadahead,
            Flags = (uint)flags,
            Flags2 = (uint)((ulong)flags >> 32),
            MaxBackground = MaxBackground,
            CongestionThreshold = CongestionThreshold,
            MaxWrite = maxWrite,
            TimeGran = 1,
            MaxPages = maxPages,
        };
        Connection = info;
        _initialized = true; // before the reply: the kernel may send the next request to another worker at once
        ReplyOk(c, reply);
        InitCompleted.Set();
    }

    private void FailInit(string why)
    {
        InitFailure = why;
        InitCompleted.Set();
    }

    private void Destroy(in FuseCall c)
    {
        DestroyOnce();
        ReplyEmpty(c);
    }

    private FuseDispatchResult DispatchNoReply(in FuseOpcodeInfo info, in FuseInHeader header,
        ReadOnlySpan<byte> body)
    {
        var reader = new FuseRequestReader(body);
        try
        {
            switch (info.Opcode)
            {
                case FuseOpcode.Forget:
                    ForgetQuietly(InNode(header.NodeId), reader.Read<FuseForgetIn>().NLookup);
                    break;
                case FuseOpcode.BatchForget:
                    BatchForget(ref reader);
                    break;
                case FuseOpcode.Interrupt:
                    Interrupts.Record(reader.Read<FuseInterruptIn>().Unique);
                    break;
                default:
                    break; // NOTIFY_REPLY: no notification is ever sent, so none is awaited
            }
        }
        catch (FuseMalformedRequestException e)
        {
            Log.Malformed(info.Name, e.Message); // nothing can be answered: the kernel awaits no reply
        }
        return FuseDispatchResult.NoReply;
    }

    private void BatchForget(ref FuseRequestReader r)
    {
        uint count = r.Read<FuseBatchForgetIn>().Count;
        long present = r.Remaining / System.Runtime.CompilerServices.Unsafe.SizeOf<FuseForgetOne>();
        // Why the ones present are still forgotten: each is a real reference the kernel gives up; losing them
        // would pin inodes forever. The shortfall is reported after.
        for (long i = 0; i < Math.Min(count, present); i++)
        {
            var one = r.Read<FuseForgetOne>();
            ForgetQuietly(InNode(one.NodeId), one.NLookup);
        }
        if (count > present)
            throw new FuseMalformedRequestException(Errno.EINVAL,
                $"BATCH_FORGET count {count} but only {present} entries present");
    }
}
