using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>
/// A processor as a real child process (the application with role <c>processor</c>), so that crash
/// tests can SIGKILL it and shutdown tests can SIGTERM it.
/// </summary>
public sealed partial class ProcessorProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _serving = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly string _readyMarker;

    private ProcessorProcess(Process process, string readyMarker)
    {
        _process = process;
        _readyMarker = readyMarker;
    }

    public int Pid => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Starts the application with role processor (or the roles <c>Cqrsi:Roles</c> in <paramref name="settings"/> names) and waits for <paramref name="readyMarker"/> in its log.</summary>
    public static async Task<ProcessorProcess> StartAsync(string natsUrl, string workerId, IReadOnlyDictionary<string, string> settings, string readyMarker = "Serving")
    {
        var process = Launch(natsUrl, workerId, settings, readyMarker);
        var ready = await Task.WhenAny(process._serving.Task, process._process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
        if (ready != process._serving.Task)
        {
            throw new InvalidOperationException($"Process {workerId} did not log '{readyMarker}':\n{process.Output}");
        }

        return process;
    }

    /// <summary>As <see cref="StartAsync"/>, then waits (two minutes at most) for the process to exit by itself: its exit code and all it wrote.</summary>
    public static async Task<(int Code, string Output)> RunToExitAsync(string natsUrl, string workerId, IReadOnlyDictionary<string, string> settings)
    {
        await using var process = Launch(natsUrl, workerId, settings, "never logged");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process._process.WaitForExitAsync(timeout.Token); // its output read to the end too
        return (process._process.ExitCode, process.Output);
    }

    private static ProcessorProcess Launch(string natsUrl, string workerId, IReadOnlyDictionary<string, string> settings, string readyMarker)
    {
        var info = new ProcessStartInfo("dotnet", Path.Combine(AppContext.BaseDirectory, "CqrsInference.Api.dll"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        var environment = new Dictionary<string, string>
        {
            // As the in-process hosts (WebApplicationFactory): not Production, whose settings
            // (keys only, schema changes by migrate) a host without an environment name gets.
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["Cqrsi__Roles"] = "processor",
            ["Nats__Url"] = natsUrl,
            ["Models__Directory"] = TestEnvironment.ModelsDirectory,
            ["Models__Manifest"] = TestEnvironment.Manifest,
            ["Processor__WorkerId"] = workerId,
            ["Urls"] = "http://127.0.0.1:0",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__CqrsInference"] = "Information",
            ["Logging__Console__FormatterName"] = "simple",
        };
        foreach (var (key, value) in settings)
        {
            environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = new ProcessorProcess(Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start"), readyMarker);
        process._process.OutputDataReceived += (_, e) => process.Append(e.Data);
        process._process.ErrorDataReceived += (_, e) => process.Append(e.Data);
        process._process.BeginOutputReadLine();
        process._process.BeginErrorReadLine();
        return process;
    }

    /// <summary>SIGKILL: the process dies at once, mid-batch, with nothing acknowledged.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM: what an orchestrator sends before it stops a container.</summary>
    public void Terminate() => SendSignal(_process.Id, 15).ShouldBe(0);

    public Task WaitForExitAsync(CancellationToken ct) => _process.WaitForExitAsync(ct);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (line.Contains(_readyMarker, StringComparison.Ordinal))
        {
            _serving.TrySetResult();
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
