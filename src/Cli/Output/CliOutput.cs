using System.Text.Encodings.Web;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace CqrsInference.Cli.Output;

/// <summary>How a command writes its results: tables for people, JSON for programs.</summary>
internal enum OutputFormat
{
    Table,
    Json,
}

/// <summary>
/// Where a command writes: its results on stdout, as tables or as JSON (<c>--output</c>), and
/// everything else on stderr: errors, progress, per-job failure details. So <c>cqrsi … --output json | jq</c>
/// always reads JSON, and an error is never mistaken for a result.
/// </summary>
internal sealed class CliOutput(OutputFormat format, IAnsiConsole stdout, IAnsiConsole stderr)
{
    /// <summary>JSON as a terminal or a pipe shows it: only what JSON itself needs escaped (not '+' or '&lt;', which are safe outside HTML).</summary>
    public static readonly JsonSerializerOptions Lines = new(JsonSerializerOptions.Web) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static readonly JsonSerializerOptions Indented = new(Lines) { WriteIndented = true };

    private static readonly JsonSerializerOptions Problem = new(Lines) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public bool IsJson => format == OutputFormat.Json;

    /// <summary>The console for progress and notes: stderr, so that stdout holds only results.</summary>
    public IAnsiConsole Progress => stderr;

    /// <summary>The console people read results on (table output).</summary>
    public IAnsiConsole Results => stdout;

    /// <summary>A result: <paramref name="json"/> as it is (indented) with <c>--output json</c>, else what <paramref name="table"/> renders from it.</summary>
    public void Write(JsonElement json, Func<JsonElement, IRenderable> table)
    {
        if (IsJson)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(json, Indented));
        }
        else
        {
            stdout.Write(table(json));
        }
    }

    /// <summary>One result of a stream (an event, a feed entry): a JSON line with <c>--output json</c>, else a line of text.</summary>
    public void WriteLine<T>(T json, Func<string> line)
    {
        if (IsJson)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(json, Lines));
        }
        else
        {
            stdout.MarkupLine(line());
        }
    }

    /// <summary>
    /// An error, on stderr: a red line, or with <c>--output json</c> one JSON object shaped as problem
    /// details (RFC 9457): the API's own when it refused the call, else <c>title</c> and <c>detail</c>.
    /// </summary>
    public void Error(CliException error, string title = "cqrsi failed")
    {
        if (!IsJson)
        {
            stderr.MarkupLine($"[red]error:[/] {Markup.Escape(error.Message)}");
        }
        else if (error is ApiException { Problem.ValueKind: JsonValueKind.Object } refused)
        {
            Console.Error.WriteLine(JsonSerializer.Serialize(refused.Problem, Lines));
        }
        else
        {
            var status = error is ApiException api ? api.Status : (int?)null;
            Console.Error.WriteLine(JsonSerializer.Serialize(new { title, status, detail = error.Message }, Problem));
        }
    }

    /// <summary>A note for people (a failed job's reason, a hint) on stderr; nothing with <c>--output json</c>, whose results carry it.</summary>
    public void Note(string markup)
    {
        if (!IsJson)
        {
            stderr.MarkupLine(markup);
        }
    }

    /// <summary>The stdout and stderr consoles; when redirected, tables keep their columns whole (COLUMNS, else 200 wide).</summary>
    public static CliOutput Create(OutputFormat format)
    {
        var stdout = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        var stderr = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        var width = int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out var columns) && columns > 0 ? columns : 200;
        if (Console.IsOutputRedirected)
        {
            stdout.Profile.Width = width;
        }

        if (Console.IsErrorRedirected)
        {
            stderr.Profile.Width = width;
        }

        return new CliOutput(format, stdout, stderr);
    }
}
