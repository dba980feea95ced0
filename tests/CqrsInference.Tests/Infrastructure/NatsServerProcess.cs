using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>A real nats-server with JetStream on a free loopback port, in a temporary directory.</summary>
public sealed class NatsServerProcess : IAsyncDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cqrsi-nats-" + Guid.NewGuid().ToString("N")[..8]);
    private Process? _process;

    public NatsServerProcess()
    {
        Port = FreePort();
        Directory.CreateDirectory(_directory);
    }

    public int Port { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    public static async Task<NatsServerProcess> StartAsync()
    {
        var server = new NatsServerProcess();
        await server.StartProcessAsync();
        return server;
    }

    /// <summary>Starts (or restarts, on the same port and store) the server.</summary>
    public async Task StartProcessAsync()
    {
        var info = new ProcessStartInfo("nats-server", $"-a 127.0.0.1 -p {Port} -js -sd {_directory}/js")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = Process.Start(info) ?? throw new InvalidOperationException("nats-server did not start (is it installed? ./test.sh installs it)");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(20, timeout.Token);
            }
        }
    }

    public async Task StopProcessAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopProcessAsync();
        _process?.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
