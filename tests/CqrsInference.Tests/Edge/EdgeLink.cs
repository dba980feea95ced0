using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Edge;

/// <summary>How an edge site's nats-server reaches the core's.</summary>
public enum EdgeTransport
{
    /// <summary>The leaf-node protocol on the core's leaf-node port (<c>nats-leaf://</c>).</summary>
    Tcp,

    /// <summary>WebSocket with TLS on the core's WebSocket listener (<c>wss://</c>), its certificate signed by a CA of the test's own.</summary>
    WebSocketTls,

    /// <summary>
    /// As <see cref="WebSocketTls"/>, through an HTTP proxy (tinyproxy) that allows only CONNECT to
    /// the WebSocket port. nats-server 2.9.10's leaf remotes have no proxy setting (2.12 added
    /// one), so a relay at the site (socat) opens the CONNECT tunnel and the site's server dials
    /// the relay; TLS still runs end to end, from the site's server to the core's listener.
    /// </summary>
    WebSocketThroughProxy,
}

/// <summary>
/// The link between an edge site and the core, as a test sets it up: the core's listener blocks,
/// the site's remote block, and for <see cref="EdgeTransport.WebSocketThroughProxy"/> the proxy
/// and the relay (child processes, stopped on dispose). Every transport authenticates the same
/// way: user <c>leaf</c> with <see cref="Password"/>, as ./edge.sh does.
/// </summary>
public sealed class EdgeLink : IAsyncDisposable
{
    public const string Password = "test-leaf-password";

    private readonly List<Process> _processes = [];
    private TestCertificates? _certificates;
    private string _leafListener = "";

    private EdgeLink(EdgeTransport transport) => Transport = transport;

    public EdgeTransport Transport { get; }

    public int LeafPort { get; } = NatsServerProcess.FreePort();

    public int WebSocketPort { get; } = NatsServerProcess.FreePort();

    /// <summary>The HTTP proxy's port (<see cref="EdgeTransport.WebSocketThroughProxy"/> only).</summary>
    public int ProxyPort { get; } = NatsServerProcess.FreePort();

    /// <summary>The site's relay into the proxy's tunnel (<see cref="EdgeTransport.WebSocketThroughProxy"/> only).</summary>
    public int RelayPort { get; } = NatsServerProcess.FreePort();

    public string CaFile => Certificates.CaFile;

    private TestCertificates Certificates => _certificates ?? throw new InvalidOperationException("a TCP link has no certificates");

    /// <summary>Makes the certificates and, through a proxy, starts the proxy and the relay.</summary>
    public static async Task<EdgeLink> StartAsync(EdgeTransport transport)
    {
        var link = new EdgeLink(transport);
        try
        {
            if (transport != EdgeTransport.Tcp)
            {
                link._certificates = await TestCertificates.CreateAsync();
            }

            if (transport == EdgeTransport.WebSocketThroughProxy)
            {
                await link.StartProxyAsync();
            }

            link._leafListener = await ScriptLib.RunAsync($"cqrsi_nats_leaf_listen_conf 127.0.0.1:{link.LeafPort} {Password}");
        }
        catch
        {
            await link.DisposeAsync();
            throw;
        }

        return link;
    }

    /// <summary>
    /// The core's blocks: its leaf-node port (nats-server accepts leaf nodes over WebSocket only with
    /// one) and the leaf user's permissions, as ./edge.sh writes them (lib.sh), and, for WebSocket, the TLS listener.
    /// </summary>
    public string CoreConfig()
    {
        var leaf = _leafListener;
        return Transport == EdgeTransport.Tcp
            ? leaf
            : $$"""
                {{leaf}}
                websocket { listen: "127.0.0.1:{{WebSocketPort}}", tls { cert_file: "{{Certificates.ServerCertFile}}", key_file: "{{Certificates.ServerKeyFile}}" } }
                """;
    }

    /// <summary>The site's remote block for this link's transport.</summary>
    public string RemoteConfig() => Transport switch
    {
        EdgeTransport.Tcp => RemoteConfig($"nats-leaf://leaf:{Password}@127.0.0.1:{LeafPort}", caFile: null),
        EdgeTransport.WebSocketTls => RemoteConfig($"wss://leaf:{Password}@127.0.0.1:{WebSocketPort}", CaFile),
        _ => RemoteConfig($"wss://leaf:{Password}@127.0.0.1:{RelayPort}", CaFile),
    };

    /// <summary>A site's remote block: <paramref name="url"/>, trusting <paramref name="caFile"/> when given (a <c>tls</c> block makes the link TLS, whatever the scheme).</summary>
    public static string RemoteConfig(string url, string? caFile) => caFile is null
        ? $$"""leafnodes { remotes [ { url: "{{url}}" } ], reconnect: 1 }"""
        : $$"""leafnodes { remotes [ { url: "{{url}}", tls { ca_file: "{{caFile}}" } } ], reconnect: 1 }""";

    /// <summary>Asks the proxy for a tunnel to <paramref name="port"/> on loopback; returns the proxy's status code.</summary>
    public async Task<int> ConnectThroughProxyAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ProxyPort);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var status = await reader.ReadLineAsync() ?? "";
        return int.Parse(status.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        _certificates?.Dispose();
    }

    /// <summary>
    /// tinyproxy in the foreground, allowing CONNECT only to the WebSocket port (as a corporate
    /// proxy allows only 443), and socat relaying each connection on <see cref="RelayPort"/>
    /// through a CONNECT tunnel to the WebSocket listener.
    /// </summary>
    private async Task StartProxyAsync()
    {
        var config = Path.Combine(Certificates.Directory, "tinyproxy.conf");
        await File.WriteAllTextAsync(config, $"""
            Port {ProxyPort}
            Listen 127.0.0.1
            Allow 127.0.0.1
            Timeout 600
            MaxClients 50
            LogLevel Info
            LogFile "{Certificates.Directory}/tinyproxy.log"
            ConnectPort {WebSocketPort}
            """);
        Start("tinyproxy", ["-d", "-c", config]);
        await WaitForPortAsync(ProxyPort);
        Start("socat", [$"TCP-LISTEN:{RelayPort},bind=127.0.0.1,fork,reuseaddr", $"PROXY:127.0.0.1:127.0.0.1:{WebSocketPort},proxyport={ProxyPort}"]);
        await WaitForPortAsync(RelayPort);
    }

    private void Start(string program, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(program, arguments) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start (./test.sh installs it)");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
    }

    private static async Task WaitForPortAsync(int port)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(20, timeout.Token);
            }
        }
    }
}
