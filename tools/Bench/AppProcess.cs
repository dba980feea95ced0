using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace CqrsInference.Bench;

/// <summary>The application as a child process with the roles and settings of one benchmark run.</summary>
internal sealed partial class AppProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _readyMarker;

    private AppProcess(Process process, string readyMarker)
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

    public static async Task<AppProcess> StartAsync(BenchSettings settings, string roles, string readyMarker, IReadOnlyDictionary<string, string> extra)
    {
        var info = new ProcessStartInfo("dotnet", settings.AppDll) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["Cqrsi__Roles"] = roles;
        info.Environment["Cqrsi__Schema"] = settings.Schema;
        info.Environment["Nats__Url"] = settings.NatsUrl;
        info.Environment["ConnectionStrings__Postgres"] = settings.Postgres;
        info.Environment["Models__Directory"] = settings.ModelsDirectory;
        info.Environment["Models__Manifest"] = settings.Manifest;
        info.Environment["Urls"] = roles.Contains("api", StringComparison.Ordinal) ? settings.ApiUrl : "http://127.0.0.1:0";
        info.Environment["CQRSI_API_KEY"] = BenchSettings.OperatorKey;
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        info.Environment["Logging__LogLevel__CqrsInference"] = "Information";
        foreach (var (key, value) in extra)
        {
            info.Environment[key] = value;
        }

        var app = new AppProcess(Process.Start(info)!, readyMarker);

        // A benchmark stopped from outside (SIGTERM, Ctrl-C) never reaches DisposeAsync: stop the
        // application with it, or it keeps the API's port and the next run cannot start.
        app._signals = new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT }.Select(signal => PosixSignalRegistration.Create(signal, _ => app.KillIfRunning())).ToList();
        app._process.OutputDataReceived += (_, e) => app.Append(e.Data);
        app._process.ErrorDataReceived += (_, e) => app.Append(e.Data);
        app._process.BeginOutputReadLine();
        app._process.BeginErrorReadLine();
        if (await Task.WhenAny(app._ready.Task, app._process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(90))) != app._ready.Task)
        {
            throw new InvalidOperationException($"The application ({roles}) did not become ready:\n{app.Output}");
        }

        return app;
    }

    /// <summary>SIGTERM, then waits: the processor logs its busy time as it stops.</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15);
            await _process.WaitForExitAsync();
        }
    }

    private List<PosixSignalRegistration> _signals = [];

    private void KillIfRunning()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Disposed or never started: nothing left to stop.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _signals.ForEach(s => s.Dispose());
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
            _ready.TrySetResult();
        }
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}

internal sealed record BenchSettings(string AppDll, string NatsUrl, string Postgres, string ModelsDirectory, string Manifest, string ApiUrl, string Schema)
{
    /// <summary>The platform operator's key every benchmarked API process is started with (CQRSI_API_KEY).</summary>
    public const string OperatorKey = "bench-operator-key";

    /// <summary>A client of the benchmarked API, calling as the operator (tenant default, every role).</summary>
    public HttpClient CreateClient() => ClientWith(OperatorKey);

    /// <summary>
    /// With <c>BENCH_TENANT</c> set, a client calling as an application of that tenant does: with a
    /// stored key (roles submit and read) the operator creates first, which the API checks against
    /// PostgreSQL (<c>Api:KeyCache</c>); otherwise the operator's client.
    /// </summary>
    public async Task<HttpClient> CreateApplicationClientAsync()
    {
        if (Environment.GetEnvironmentVariable("BENCH_TENANT") is not { Length: > 0 } tenant)
        {
            return CreateClient();
        }

        using var admin = CreateClient();
        using var created = await admin.PostAsync("/v1/admin/keys", new System.Net.Http.StringContent(
            $$"""{"tenant":"{{tenant}}","name":"bench","roles":["submit","read"]}""", System.Text.Encoding.UTF8, "application/json"));
        created.EnsureSuccessStatusCode();
        using var body = System.Text.Json.JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        Console.WriteLine($"calling as tenant {tenant} with a stored key");
        return ClientWith(body.RootElement.GetProperty("key").GetString()!);
    }

    private HttpClient ClientWith(string key)
    {
        var http = new HttpClient { BaseAddress = new Uri(ApiUrl) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return http;
    }
}
