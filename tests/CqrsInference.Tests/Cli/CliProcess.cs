using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Cli;

/// <summary>What one run of <c>cqrsi</c> left: its exit code, its stdout and its stderr, apart.</summary>
public sealed record CliRun(int Code, string Out, string Err)
{
    /// <summary>stdout as JSON (what <c>--output json</c> promises), failing the test with both streams when it is not.</summary>
    public JsonElement Json()
    {
        try
        {
            return JsonDocument.Parse(Out).RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ShouldAssertException($"stdout is not JSON ({e.Message}):\n{this}");
        }
    }

    /// <summary>stdout as JSON lines (the streams: watch, audit tail).</summary>
    public List<JsonElement> JsonLines() =>
        Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    public override string ToString() => $"exit {Code}\n--- stdout\n{Out}\n--- stderr\n{Err}";
}

/// <summary>Runs the CLI as a user does, as a child process, against an API over HTTP.</summary>
public static class CliProcess
{
    /// <summary>The CLI the test project builds beside itself (<c>cqrsi.dll</c>), run to its end.</summary>
    public static async Task<CliRun> RunAsync(string baseUrl, params string[] arguments)
    {
        using var cli = Start(baseUrl, arguments);
        return await cli.ExitAsync();
    }

    /// <summary>As <see cref="RunAsync(string, string[])"/>, with more environment variables.</summary>
    public static async Task<CliRun> RunWithAsync(IReadOnlyDictionary<string, string> environment, string baseUrl, params string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "cqrsi.dll") } };
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        using var cli = RunningCli.Start(info, baseUrl, arguments);
        return await cli.ExitAsync();
    }

    /// <summary>The CLI started, for a test that reads its output while it runs.</summary>
    public static RunningCli Start(string baseUrl, params string[] arguments) =>
        RunningCli.Start(new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "cqrsi.dll") } }, baseUrl, arguments);
}

/// <summary>
/// A running <c>cqrsi</c>: <paramref name="process"/> started with <c>--url</c> and the operator's key in
/// CQRSI_API_KEY (a <c>--key</c> among the arguments overrides it); stdout read line by line as it comes.
/// </summary>
public sealed class RunningCli(Process process) : IDisposable
{
    private readonly Task<string> _error = process.StandardError.ReadToEndAsync();
    private readonly List<string> _lines = [];

    public static RunningCli Start(ProcessStartInfo info, string baseUrl, IEnumerable<string> arguments)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.ArgumentList.Add("--url");
        info.ArgumentList.Add(baseUrl);
        info.Environment["COLUMNS"] = "200";
        info.Environment["CQRSI_API_KEY"] = TestEnvironment.OperatorKey;
        return new RunningCli(Process.Start(info)!);
    }

    /// <summary>The next line it writes on stdout (30 seconds at most); null once stdout has ended.</summary>
    public async Task<string?> NextLineAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
        if (line is not null)
        {
            _lines.Add(line);
        }

        return line;
    }

    /// <summary>
    /// Stops the CLI as Ctrl+C does: SIGTERM, which the CLI handles as it handles SIGINT (one
    /// cancellation). Not SIGINT itself: a process started in the background of a shell without job
    /// control (a CI runner's) inherits SIGINT ignored, and the runtime keeps it ignored.
    /// </summary>
    public void Interrupt()
    {
        using var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Waits for it to exit (three minutes at most): its code, all it wrote on stdout (the lines read included) and stderr.</summary>
    public async Task<CliRun> ExitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            var rest = await process.StandardOutput.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            var read = _lines.Count == 0 ? "" : string.Join('\n', _lines) + "\n";
            return new CliRun(process.ExitCode, read + rest, await _error);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"cqrsi {string.Join(' ', process.StartInfo.ArgumentList)} did not exit within 3 minutes");
        }
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        process.Dispose();
    }
}

/// <summary>A file of jobs for <c>cqrsi submit</c> (JSON lines, or one job), deleted when disposed.</summary>
public sealed class JobsFile : IDisposable
{
    private JobsFile(string path) => Path = path;

    public string Path { get; }

    public static async Task<JobsFile> WriteAsync(IEnumerable<string> jobs)
    {
        var file = new JobsFile(System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"cqrsi-jobs-{Guid.NewGuid():N}.jsonl"));
        await File.WriteAllLinesAsync(file.Path, jobs);
        return file;
    }

    public void Dispose() => File.Delete(Path);
}
