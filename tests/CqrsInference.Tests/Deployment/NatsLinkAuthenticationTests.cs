using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Deployment;

/// <summary>
/// The links between nats-servers that ./cluster.sh and ./edge.sh write (scripts/lib.sh:
/// cqrsi_nats_cluster_conf, cqrsi_nats_gateway_conf, cqrsi_nats_leaf_listen_conf,
/// cqrsi_nats_leaf_remote_conf, and for edge sites over WebSocket cqrsi_tls_server_cert and
/// cqrsi_nats_websocket_conf) authenticate: a server with the password links, one without is
/// refused. The blocks are rendered by the script functions themselves and run by real servers.
/// </summary>
public sealed class NatsLinkAuthenticationTests : IAsyncLifetime
{
    private readonly List<NatsServerProcess> _servers = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly string _tls = Directory.CreateTempSubdirectory("cqrsi-edge-tls-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>xUnit 2 calls this after each test (it does not call IAsyncDisposable on a test class): every server started stops.</summary>
    public async Task DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }

        _http.Dispose();
        Directory.Delete(_tls, recursive: true);
    }

    [Fact]
    public async Task Routes_link_servers_of_a_cluster_only_with_the_route_password()
    {
        var (a, b, intruder) = (NatsServerProcess.FreePort(), NatsServerProcess.FreePort(), NatsServerProcess.FreePort());
        var first = await StartAsync("a", $"cqrsi_nats_cluster_conf cqrsi 127.0.0.1:{a} right-password 127.0.0.1:{b}");
        var second = await StartAsync("b", $"cqrsi_nats_cluster_conf cqrsi 127.0.0.1:{b} right-password 127.0.0.1:{a}");
        var stranger = await StartAsync("x", $"cqrsi_nats_cluster_conf cqrsi 127.0.0.1:{intruder} wrong-password 127.0.0.1:{a}");

        await Retry.Until("a and b to route to each other", () => CountAsync(first, "routez", "num_routes"), n => n == 1);
        await Retry.Until("a to refuse the route without the password", () => LogAsync(first), log => log.Contains("Router connection closed: Authentication Failure", StringComparison.Ordinal));
        (await CountAsync(first, "routez", "num_routes")).ShouldBe(1);
        (await CountAsync(second, "routez", "num_routes")).ShouldBe(1);
        (await CountAsync(stranger, "routez", "num_routes")).ShouldBe(0);
    }

    [Fact]
    public async Task Edge_sites_link_to_the_core_as_leaf_nodes_only_with_the_leaf_password()
    {
        var leafPort = NatsServerProcess.FreePort();
        var core = await StartAsync("core", $"cqrsi_nats_leaf_listen_conf 127.0.0.1:{leafPort} right-password");
        await StartAsync("site1", $"cqrsi_nats_leaf_remote_conf 127.0.0.1:{leafPort} right-password");
        var stranger = await StartAsync("site2", $"cqrsi_nats_leaf_remote_conf 127.0.0.1:{leafPort} wrong-password");

        await Retry.Until("site1 to link", () => CountAsync(core, "leafz", "leafnodes"), n => n == 1);
        await Retry.Until("the core to refuse site2", () => LogAsync(core), log => log.Contains("Leafnode connection closed: Authentication Failure", StringComparison.Ordinal));
        (await CountAsync(core, "leafz", "leafnodes")).ShouldBe(1);
        (await CountAsync(stranger, "leafz", "leafnodes")).ShouldBe(0);
    }

    [Fact]
    public async Task Edge_sites_link_to_the_core_over_websocket_with_tls_only_with_the_leaf_password()
    {
        var (leafPort, webSocketPort) = (NatsServerProcess.FreePort(), NatsServerProcess.FreePort());
        await ScriptLib.RunAsync($"cqrsi_tls_server_cert {_tls}");
        var core = await StartAsync("core", $"cqrsi_nats_leaf_listen_conf 127.0.0.1:{leafPort} right-password && cqrsi_nats_websocket_conf 127.0.0.1:{webSocketPort} {_tls}");
        await StartAsync("site1", $"cqrsi_nats_leaf_remote_conf 127.0.0.1:{webSocketPort} right-password {_tls}/ca.pem");
        var stranger = await StartAsync("site2", $"cqrsi_nats_leaf_remote_conf 127.0.0.1:{webSocketPort} wrong-password {_tls}/ca.pem");

        await Retry.Until("site1 to link over wss://", () => CountAsync(core, "leafz", "leafnodes"), n => n == 1);
        await Retry.Until("site2 to be refused", () => LogAsync(stranger), log => log.Contains("Authorization Violation", StringComparison.Ordinal));
        (await CountAsync(core, "leafz", "leafnodes")).ShouldBe(1);
        (await CountAsync(stranger, "leafz", "leafnodes")).ShouldBe(0);
        (await LogAsync(core)).ShouldContain("Listening for websocket clients on wss://");
    }

    [Fact]
    public async Task Gateways_join_regions_only_with_the_gateway_password()
    {
        var (east, west, south) = (NatsServerProcess.FreePort(), NatsServerProcess.FreePort(), NatsServerProcess.FreePort());
        var eastServer = await StartAsync("east", $"cqrsi_nats_gateway_conf east 127.0.0.1:{east} right-password west=127.0.0.1:{west}");
        await StartAsync("west", $"cqrsi_nats_gateway_conf west 127.0.0.1:{west} right-password east=127.0.0.1:{east}");
        await StartAsync("south", $"cqrsi_nats_gateway_conf south 127.0.0.1:{south} wrong-password east=127.0.0.1:{east}");

        // Inbound from west: west's gateway authenticated on east's gateway port.
        await Retry.Until("east and west to join", () => GatewaysAsync(eastServer), g => g.Inbound.SequenceEqual(["west"]) && g.Outbound.SequenceEqual(["west"]));
        await Retry.Until("east to refuse south", () => LogAsync(eastServer), log => log.Contains("Gateway connection closed: Authentication Failure", StringComparison.Ordinal));
        (await GatewaysAsync(eastServer)).Inbound.ShouldBe(["west"]);
    }

    private sealed record Server(NatsServerProcess Process, int MonitorPort, string LogFile);

    /// <summary>A server whose configuration is the output of the lib.sh call <paramref name="block"/>, with its monitoring port and a log file.</summary>
    private async Task<Server> StartAsync(string name, string block)
    {
        var rendered = await ScriptLib.RunAsync(block);
        var monitor = NatsServerProcess.FreePort();
        var logFile = "";
        var server = await NatsServerProcess.StartWithConfigAsync((port, directory) =>
        {
            logFile = Path.Combine(directory, "nats.log");
            return $$"""
                server_name: "{{name}}"
                listen: "127.0.0.1:{{port}}"
                http: "127.0.0.1:{{monitor}}"
                log_file: "{{logFile}}"
                {{rendered}}
                """;
        });
        _servers.Add(server);
        return new Server(server, monitor, logFile);
    }

    private async Task<int> CountAsync(Server server, string endpoint, string property) =>
        (await _http.GetFromJsonAsync<JsonElement>($"http://127.0.0.1:{server.MonitorPort}/{endpoint}")).GetProperty(property).GetInt32();

    /// <summary>The regions this server's gateway links to, and those linked to it.</summary>
    private async Task<(List<string> Outbound, List<string> Inbound)> GatewaysAsync(Server server)
    {
        var gateways = await _http.GetFromJsonAsync<JsonElement>($"http://127.0.0.1:{server.MonitorPort}/gatewayz");
        static List<string> Names(JsonElement g, string name) =>
            g.TryGetProperty(name, out var links) && links.ValueKind == JsonValueKind.Object ? links.EnumerateObject().Select(l => l.Name).ToList() : [];
        return (Names(gateways, "outbound_gateways"), Names(gateways, "inbound_gateways"));
    }

    private static async Task<string> LogAsync(Server server) =>
        File.Exists(server.LogFile) ? await File.ReadAllTextAsync(server.LogFile) : "";
}
