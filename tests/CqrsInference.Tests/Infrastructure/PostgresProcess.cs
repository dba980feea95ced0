using System.Diagnostics;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL server of a test's own, to stop and start under a running pipeline (the shared
/// test server must stay up for every other test). Started and stopped with the same script
/// functions as ./run.sh and ./test.sh (scripts/lib.sh), fsync off; the data directory is removed
/// on dispose.
/// </summary>
public sealed class PostgresProcess : IAsyncDisposable
{
    private readonly string _directory;

    private PostgresProcess(string directory, int port)
    {
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Database=cqrsi;Username=postgres;Maximum Pool Size=50;Timeout=3;Command Timeout=10";

    private string DataDirectory => Path.Combine(_directory, "data");

    public static async Task<PostgresProcess> StartAsync()
    {
        var directory = Path.Combine(TestEnvironment.RepositoryRoot, ".data", "test-pg-own", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var server = new PostgresProcess(directory, NatsServerProcess.FreePort());
        await server.StartAgainAsync();
        return server;
    }

    /// <summary>Starts the server on its data directory (creating it the first time).</summary>
    public Task StartAgainAsync() => LibAsync($"CQRSI_PG_FSYNC=off cqrsi_start_postgres '{DataDirectory}' {Port}");

    /// <summary>Stops the server (fast shutdown: open sessions are ended), as an outage would.</summary>
    public Task StopAsync() => LibAsync($"cqrsi_stop_postgres '{DataDirectory}'");

    /// <summary>
    /// Stops every process of the server (SIGSTOP): it accepts connections and answers nothing, as a
    /// server that hangs or a network that drops packets would. <see cref="ThawAsync"/> resumes it.
    /// </summary>
    public Task FreezeAsync() => SignalAsync("STOP");

    public Task ThawAsync() => SignalAsync("CONT");

    private Task SignalAsync(string signal) =>
        LibAsync($"pid=$(head -1 '{DataDirectory}/postmaster.pid') && kill -{signal} $pid && pkill -{signal} -P $pid; true");

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ThawAsync();
            await StopAsync();
        }
        finally
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static async Task LibAsync(string command)
    {
        var info = new ProcessStartInfo("bash", ["-c", $"source scripts/lib.sh && {command}"])
        {
            WorkingDirectory = TestEnvironment.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(info) ?? throw new InvalidOperationException("bash did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{command}' failed ({process.ExitCode}): {await output} {await errors}");
        }
    }
}
