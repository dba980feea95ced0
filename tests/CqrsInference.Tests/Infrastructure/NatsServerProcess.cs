using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>A real nats-server with JetStream on a free loopback port, in a temporary directory.</summary>
public sealed class NatsServerProcess : IAsyncDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "cqrsi-nats-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly StringBuilder _output = new();
    private Process? _process;

    public NatsServerProcess()
    {
        Port = FreePort();
        Directory.CreateDirectory(_directory);
    }

    public int Port { get; }

    public string Url => $"nats://127.0.0.1:{Port}";

    /// <summary>What the server has logged so far, over all its starts (why a link was refused, for one).</summary>
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

    public static async Task<NatsServerProcess> StartAsync()
    {
        var server = new NatsServerProcess();
        await File.WriteAllTextAsync(server.ConfigPath, $$"""
            listen: "127.0.0.1:{{server.Port}}"
            jetstream { store_dir: "{{server._directory}}/js" }
            {{Mappings}}
            """);
        await server.StartProcessAsync();
        return server;
    }

    /// <summary>The log's subject mapping every core server carries (partitions as the application's default).</summary>
    public static string Mappings => Messaging.LogSubjects.ServerMappings(new Messaging.TopologyOptions().Partitions);

    /// <summary>
    /// A server with a configuration of the test's own (leaf nodes, JetStream domains), written by
    /// <paramref name="config"/> from the server's port and its directory (for the store).
    /// </summary>
    public static async Task<NatsServerProcess> StartWithConfigAsync(Func<int, string, string> config)
    {
        var server = new NatsServerProcess();
        await File.WriteAllTextAsync(server.ConfigPath, config(server.Port, server._directory));
        await server.StartProcessAsync();
        return server;
    }

    /// <summary>Writes a new configuration for the next <see cref="StartProcessAsync"/> (same port and directory).</summary>
    public Task ReconfigureAsync(Func<int, string, string> config) => File.WriteAllTextAsync(ConfigPath, config(Port, _directory));

    /// <summary>The password of each role's user when started with <see cref="StartWithUsersAsync"/>.</summary>
    public static string PasswordOf(string user) => $"test-{user}-password";

    /// <summary>A server with the users and permissions of config/nats-users.conf.template.</summary>
    public static async Task<NatsServerProcess> StartWithUsersAsync()
    {
        var server = new NatsServerProcess();
        var template = await File.ReadAllTextAsync(Path.Combine(TestEnvironment.RepositoryRoot, "config", "nats-users.conf.template"));
        foreach (var user in new[] { "host", "api", "processor", "projections" })
        {
            template = template.Replace($"{{{{{user.ToUpperInvariant()}_PASSWORD}}}}", PasswordOf(user), StringComparison.Ordinal);
        }

        await File.WriteAllTextAsync(Path.Combine(server._directory, "users.conf"), template);
        await File.WriteAllTextAsync(server.ConfigPath, $$"""
            listen: "127.0.0.1:{{server.Port}}"
            jetstream { store_dir: "{{server._directory}}/js" }
            include "users.conf"
            {{Mappings}}
            """);
        await server.StartProcessAsync();
        return server;
    }

    private string ConfigPath => Path.Combine(_directory, "nats.conf");

    /// <summary>
    /// Deletes the stopped server's JetStream store: a lost region comes back empty after a
    /// takeover (docs/DEPLOY.md: nats-server 2.9.10 keeps serving the stale copy otherwise).
    /// </summary>
    public void WipeJetStreamStore() => Directory.Delete(Path.Combine(_directory, "js"), recursive: true);

    /// <summary>This server's name in a cluster (its JetStream peer name).</summary>
    public string Name { get; private set; } = "";

    /// <summary>
    /// A JetStream cluster of <paramref name="nodes"/> servers on loopback (routes between all of
    /// them), optionally a region of a super-cluster: <paramref name="gateways"/> names the other
    /// clusters' gateway ports, <paramref name="gatewayPort"/> is this cluster's own.
    /// </summary>
    public static Task<IReadOnlyList<NatsServerProcess>> StartClusterAsync(
        string cluster, int nodes, int? gatewayPort = null, IReadOnlyDictionary<string, int>? gateways = null) =>
        WithFreshPortsAsync(() => StartClusterOnceAsync(cluster, nodes, gatewayPort, gateways));

    /// <summary>
    /// Runs <paramref name="start"/> again (new objects, so new free ports) when a server it started
    /// found its port taken: a port found free is released before the server binds it, and another
    /// process (an outgoing connection's ephemeral port, another test's server) may take it between.
    /// </summary>
    public static async Task<T> WithFreshPortsAsync<T>(Func<Task<T>> start)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await start();
            }
            catch (NatsServerStartException e) when (e.PortTaken && attempt < 3)
            {
            }
        }
    }

    private static async Task<IReadOnlyList<NatsServerProcess>> StartClusterOnceAsync(
        string cluster, int nodes, int? gatewayPort, IReadOnlyDictionary<string, int>? gateways)
    {
        var servers = Enumerable.Range(0, nodes).Select(_ => new NatsServerProcess()).ToList();
        var routePorts = servers.Select(_ => FreePort()).ToList();
        for (var i = 0; i < nodes; i++)
        {
            var server = servers[i];
            server.Name = $"{cluster}-{i + 1}";
            // A one-server cluster routes to itself: JetStream's clustered mode refuses to start without a route.
            var routes = string.Join(", ", routePorts.Where((_, j) => j != i || nodes == 1).Select(p => $"\"nats-route://127.0.0.1:{p}\""));
            var gateway = gatewayPort is { } own && i == 0
                ? $$"""
                    gateway {
                      name: "{{cluster}}"
                      listen: "127.0.0.1:{{own}}"
                      gateways: [{{string.Join(", ", (gateways ?? new Dictionary<string, int>()).Select(g => $"{{ name: \"{g.Key}\", url: \"nats://127.0.0.1:{g.Value}\" }}"))}}]
                    }
                    """
                : "";
            await File.WriteAllTextAsync(server.ConfigPath, $$"""
                server_name: "{{server.Name}}"
                listen: "127.0.0.1:{{server.Port}}"
                jetstream { store_dir: "{{server._directory}}/js" }
                cluster { name: "{{cluster}}", listen: "127.0.0.1:{{routePorts[i]}}", routes: [{{routes}}] }
                {{gateway}}
                {{Mappings}}
                """);
        }

        try
        {
            await Task.WhenAll(servers.Select(s => s.StartProcessAsync()));
        }
        catch
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }

            throw;
        }

        return servers;
    }

    /// <summary>
    /// Starts (or restarts, on the same port and store) the server, and waits until it says it is
    /// ready: a connection to the port would also succeed to somebody else's listener there.
    /// </summary>
    public async Task StartProcessAsync()
    {
        var arguments = File.Exists(ConfigPath) ? $"-c {ConfigPath}" : $"-a 127.0.0.1 -p {Port} -js -sd {_directory}/js";
        var info = new ProcessStartInfo("nats-server", arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var logged = Output.Length;
        _process = Process.Start(info) ?? throw new InvalidOperationException("nats-server did not start (is it installed? ./test.sh installs it)");
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        // A server that logs to a file says nothing here: for it, a connection to its port has to do.
        var logsToFile = File.Exists(ConfigPath) && (await File.ReadAllTextAsync(ConfigPath)).Contains("log_file", StringComparison.Ordinal);
        var deadline = Stopwatch.StartNew();
        while (!(logsToFile ? await ListensAsync() : Output[logged..].Contains("Server is ready", StringComparison.Ordinal)))
        {
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync(); // what it wrote last, read to the end
                throw new NatsServerStartException($"nats-server {Name} (port {Port}) exited during start-up with {_process.ExitCode}:\n{Output[logged..]}", Output[logged..]);
            }

            if (deadline.Elapsed > TimeSpan.FromSeconds(15))
            {
                throw new NatsServerStartException($"nats-server {Name} (port {Port}) was not ready within 15 s:\n{Output[logged..]}", Output[logged..]);
            }

            await Task.Delay(20);
        }
    }

    private async Task<bool> ListensAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Stops the server process (SIGSTOP): its connections stay open and nothing is answered, as a hang would; <see cref="ThawAsync"/> resumes it.</summary>
    public Task FreezeAsync() => SignalAsync("STOP");

    public Task ThawAsync() => SignalAsync("CONT");

    private async Task SignalAsync(string signal)
    {
        if (_process is { HasExited: false } process)
        {
            using var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
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

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A nats-server that did not come up, with what it logged; <see cref="PortTaken"/> when one of its ports was in use.</summary>
public sealed class NatsServerStartException(string message, string output) : Exception(message)
{
    public bool PortTaken { get; } = output.Contains("address already in use", StringComparison.OrdinalIgnoreCase);
}
