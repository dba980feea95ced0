using System.CommandLine;
using System.Text.Json;
using CqrsInference.Cli.Commands;
using CqrsInference.Cli.Output;

namespace CqrsInference.Cli;

/// <summary>
/// <c>cqrsi</c>: the root command, the options every command takes (<c>--url</c>, <c>--key</c>,
/// <c>--output</c>), and the one place where a command runs, so that every command reports errors
/// on stderr and exits with the same <see cref="ExitCodes"/>.
/// </summary>
internal sealed class Cqrsi
{
    public Option<string> Url { get; } = new("--url")
    {
        Description = "API address (or CQRSI_URL)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("CQRSI_URL") ?? "http://127.0.0.1:8080",
        Recursive = true,
    };

    /// <summary>The API key; CQRSI_API_KEY is read when the command runs, not as a default, so that help never shows it.</summary>
    public Option<string?> Key { get; } = new("--key")
    {
        Description = "API key (or CQRSI_API_KEY)",
        Recursive = true,
    };

    public Option<string> Output { get; } = new Option<string>("--output", "-o")
    {
        Description = "table (for people) or json (for programs: the API's JSON, streams as JSON lines)",
        DefaultValueFactory = _ => "table",
        Recursive = true,
    }.AcceptOnlyFromAmong("table", "json");

    /// <summary>Parses and runs a command line; a line that does not parse exits 2, its errors and the help on stderr.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var cqrsi = new Cqrsi();
        var root = new RootCommand("cqrsi — submit, follow and account for inference jobs")
        {
            cqrsi.Url, cqrsi.Key, cqrsi.Output,
            SubmitCommand.Create(cqrsi),
            WatchCommand.Create(cqrsi),
            JobCommands.Get(cqrsi),
            JobCommands.Cancel(cqrsi),
            JobCommands.Retry(cqrsi),
            JobCommands.List(cqrsi),
            ModelsCommand.Create(cqrsi),
            KeysCommand.Create(cqrsi),
            UsageCommand.Create(cqrsi),
            InvoiceCommand.Create(cqrsi),
            AuditCommand.Create(cqrsi),
            BatchCommands.Create(cqrsi),
            FailoverCommand.Create(cqrsi),
            BacktestCommands.Create(cqrsi),
        };

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            if (JsonAsked(parse, cqrsi.Output))
            {
                // With -o json, errors are one problem-details object, as for any other failure.
                CliOutput.Create(OutputFormat.Json).Error(new CliException(string.Join(" ", parse.Errors.Select(e => e.Message))), "The command line is not valid");
                return ExitCodes.UsageOrTransport;
            }

            await parse.InvokeAsync(new InvocationConfiguration { Output = Console.Error, Error = Console.Error });
            return ExitCodes.UsageOrTransport;
        }

        return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    private static bool JsonAsked(ParseResult parse, Option<string> output)
    {
        try
        {
            return parse.GetValue(output) == "json";
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Makes <paramref name="action"/> what <paramref name="command"/> does, run through <see cref="RunAsync(ParseResult, Func{CliContext, CancellationToken, Task{int}}, CancellationToken)"/>.</summary>
    public Command Handle(Command command, Func<CliContext, CancellationToken, Task<int>> action)
    {
        command.SetAction((parse, ct) => RunAsync(parse, action, ct));
        return command;
    }

    /// <summary>Runs a command; whatever stops it is one error on stderr and exit code 2 (130 on Ctrl+C).</summary>
    private async Task<int> RunAsync(ParseResult parse, Func<CliContext, CancellationToken, Task<int>> action, CancellationToken ct)
    {
        var output = CliOutput.Create(parse.GetValue(Output) == "json" ? OutputFormat.Json : OutputFormat.Table);
        var url = parse.GetValue(Url)!;
        try
        {
            using var api = new ApiClient(url, parse.GetValue(Key) ?? Environment.GetEnvironmentVariable("CQRSI_API_KEY"));
            return await action(new CliContext(parse, api, output), ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return ExitCodes.Interrupted;
        }
        catch (CliException e)
        {
            output.Error(e, e is ApiException ? "The API refused the call" : "cqrsi failed");
        }
        catch (HttpRequestException e)
        {
            output.Error(new CliException($"Cannot reach {url}: {e.Message}"), "Cannot reach the API");
        }
        catch (TaskCanceledException)
        {
            output.Error(new CliException($"{url} did not answer in time."), "No answer from the API");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            // An answer of another shape than this version of cqrsi knows (a newer or older API, a proxy's page).
            output.Error(new CliException($"The answer from {url} is not what cqrsi expects: {e.Message}"), "Unexpected answer");
        }
        catch (IOException e)
        {
            output.Error(new CliException(e.Message));
        }

        return ExitCodes.UsageOrTransport;
    }
}

/// <summary>What a running command works with: its parsed line, the API, and where to write.</summary>
internal sealed record CliContext(ParseResult Parse, ApiClient Api, CliOutput Output)
{
    public T Value<T>(Option<T> option) => Parse.GetValue(option)!;

    public T Value<T>(Argument<T> argument) => Parse.GetValue(argument)!;
}
