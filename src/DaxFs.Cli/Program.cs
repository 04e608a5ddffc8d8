using System.CommandLine;
using DaxFs.Cli.Commands;

namespace DaxFs.Cli;

/// <summary>Program -- the daxfs command: parses with System.CommandLine, reports errors as one line, and returns
/// exit codes scripts can rely on (<see cref="ExitCodes"/>).</summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        // A plain Command named "daxfs" (not RootCommand, which takes the assembly's name) with help and version.
        var root = new Command("daxfs", "daxfs -- a direct-access (DAX) file system for persistent memory, in user space")
        {
            new System.CommandLine.Help.HelpOption(),
            new VersionOption(),
        };
        root.Subcommands.Add(MountCommands.Mount());
        root.Subcommands.Add(MountCommands.Umount());
        root.Subcommands.Add(VolumeCommands.Mkfs());
        root.Subcommands.Add(VolumeCommands.Info());
        root.Subcommands.Add(VolumeCommands.FsckCommand());
        FileCommands.Register(root);
        root.Subcommands.Add(ProbeCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(CrashCommand.Create());
        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            foreach (var e in parse.Errors)
                Console.Error.WriteLine($"daxfs: {e.Message}");
            Console.Error.WriteLine("daxfs: see 'daxfs --help'");
            return ExitCodes.Usage;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"daxfs: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e) when (Errors.IsExpected(e))
        {
            Console.Error.WriteLine($"daxfs: {Errors.Describe(e)}");
            // DAXFS_TRACE=1 shows where an error came from (for a bug report), the one clear line otherwise.
            if (Environment.GetEnvironmentVariable("DAXFS_TRACE") == "1")
                Console.Error.WriteLine(e);
            return ExitCodes.Failure;
        }
    }
}

/// <summary>ExitCodes -- what daxfs returns.</summary>
public static class ExitCodes
{
    /// <summary>Done; for checks, nothing wrong was found.</summary>
    public const int Ok = 0;

    /// <summary>The operation failed, or a check found problems.</summary>
    public const int Failure = 1;

    /// <summary>The command line was wrong.</summary>
    public const int Usage = 2;
}

/// <summary>Errors -- which exceptions are a user's problem (one clear line) rather than a bug (stack trace).</summary>
public static class Errors
{
    /// <summary>Whether <paramref name="e"/> is an expected failure to report as one line.</summary>
    public static bool IsExpected(Exception e) => e is IOException or UnauthorizedAccessException or ArgumentException
        or InvalidOperationException or Bench.BenchException or PlatformNotSupportedException;

    /// <summary>The one-line message for an expected failure.</summary>
    public static string Describe(Exception e) => e.Message.ReplaceLineEndings(" ");
}
