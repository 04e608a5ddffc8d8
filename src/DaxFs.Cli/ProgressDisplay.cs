using Spectre.Console;

namespace DaxFs.Cli;

/// <summary>ProgressDisplay -- runs work that reports (step, fraction done) under a progress bar on a terminal;
/// otherwise silently, or (asked, for long runs such as benchmarks) as one plain line on stderr per step.</summary>
internal static class ProgressDisplay
{
    /// <summary>Runs <paramref name="body"/> under a bar titled <paramref name="title"/>; returns what it returns.</summary>
    public static T Run<T>(string title, Func<IProgress<(string Step, double Fraction)>, T> body, bool linesWhenPlain = false)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            if (!linesWhenPlain)
                return body(new SyncProgress(_ => { }));
            string? last = null;
            return body(new SyncProgress(p =>
            {
                if (p.Item1 != last)
                    Console.Error.WriteLine($"{title}: {last = p.Item1}");
            }));
        }
        T result = default!;
        AnsiConsole.Progress().Start(ctx =>
        {
            var task = ctx.AddTask(Markup.Escape(title), maxValue: 1);
            result = body(new SyncProgress(p =>
            {
                task.Description = Markup.Escape($"{title}: {p.Item1}");
                task.Value = Math.Clamp(p.Item2, 0, 1);
            }));
            task.Value = 1;
        });
        return result;
    }

    /// <summary>Progress that reports on the caller's thread (Spectre's live display is redrawn by its own loop).</summary>
    private sealed class SyncProgress(Action<(string, double)> report) : IProgress<(string, double)>
    {
        public void Report((string, double) value) => report(value);
    }
}
