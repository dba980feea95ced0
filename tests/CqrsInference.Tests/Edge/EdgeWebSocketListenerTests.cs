using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;
using NATS.Net;

namespace CqrsInference.Tests.Edge;

/// <summary>
/// The core's WebSocket listener for edge sites (TLS, a certificate of the test's CA) as a site's
/// nats-server meets it: refused without TLS, without trust in the CA or with a wrong leaf password;
/// and through an HTTP proxy that allows CONNECT only to the listener's port, the <c>wss://</c> link
/// passes while the leaf-node protocol cannot.
/// </summary>
public sealed class EdgeWebSocketListenerTests : IAsyncLifetime
{
    private readonly int _monitorPort = NatsServerProcess.FreePort();
    private readonly List<NatsServerProcess> _sites = [];
    private readonly HttpClient _monitor = new();
    private EdgeLink _link = null!;
    private NatsServerProcess _core = null!;

    public async Task InitializeAsync()
    {
        // xunit does not dispose a class whose start failed: stop what was started before throwing.
        try
        {
            _link = await EdgeLink.StartAsync(EdgeTransport.WebSocketThroughProxy);
            _core = await NatsServerProcess.StartWithConfigAsync((port, _) => $$"""
                listen: "127.0.0.1:{{port}}"
                http: "127.0.0.1:{{_monitorPort}}"
                {{_link.CoreConfig()}}
                """);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var site in _sites)
        {
            await site.DisposeAsync();
        }

        if (_core is not null)
        {
            await _core.DisposeAsync();
        }

        if (_link is not null)
        {
            await _link.DisposeAsync();
        }

        _monitor.Dispose();
    }

    [Fact]
    public async Task A_site_without_tls_without_trust_in_the_ca_or_with_a_wrong_password_is_refused_and_one_with_all_three_is_linked()
    {
        var listener = $"127.0.0.1:{_link.WebSocketPort}";
        var plain = await StartSiteAsync(EdgeLink.RemoteConfig($"ws://leaf:{EdgeLink.Password}@{listener}", caFile: null));
        var untrusting = await StartSiteAsync(EdgeLink.RemoteConfig($"wss://leaf:{EdgeLink.Password}@{listener}", caFile: null));
        var wrongPassword = await StartSiteAsync(EdgeLink.RemoteConfig($"wss://leaf:not-the-password@{listener}", _link.CaFile));

        // Each has tried and been refused, for its own reason, and none is linked.
        await WaitForLogAsync(plain, "invalid websocket connection");
        await WaitForLogAsync(untrusting, "certificate signed by unknown authority");
        await WaitForLogAsync(wrongPassword, "Authorization Violation");
        (await LeafCountAsync()).ShouldBe(0);

        await StartSiteAsync(EdgeLink.RemoteConfig($"wss://leaf:{EdgeLink.Password}@{listener}", _link.CaFile));
        await Retry.Until("the site with TLS, the CA and the password to be linked", LeafCountAsync, n => n == 1);
    }

    [Fact]
    public async Task A_proxy_that_allows_connect_only_to_the_websocket_port_lets_the_wss_link_through_and_not_the_leaf_node_protocol()
    {
        (await _link.ConnectThroughProxyAsync(_link.LeafPort)).ShouldBe(403);
        (await _link.ConnectThroughProxyAsync(_link.WebSocketPort)).ShouldBe(200);

        // The site dials its relay, which tunnels through the proxy; what the site publishes reaches the core.
        var site = await StartSiteAsync(_link.RemoteConfig());
        await Retry.Until("the site to be linked through the proxy", LeafCountAsync, n => n == 1);
        await using var core = new NatsClient(_core.Url);
        await using var subscription = await core.Connection.SubscribeCoreAsync<string>("proxy.ping");
        await using var client = new NatsClient(site.Url);
        await Retry.Until("a message from the site to reach the core across the link", async () =>
        {
            // The core's interest crosses the link a moment after it subscribes: publish until it does.
            await client.PublishAsync("proxy.ping", "ping");
            using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            try
            {
                return (await subscription.Msgs.ReadAsync(wait.Token)).Data;
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }, data => data == "ping");
    }

    private async Task<NatsServerProcess> StartSiteAsync(string remote)
    {
        var site = await NatsServerProcess.StartWithConfigAsync((port, _) => $$"""
            listen: "127.0.0.1:{{port}}"
            {{remote}}
            """);
        _sites.Add(site);
        return site;
    }

    private static Task WaitForLogAsync(NatsServerProcess site, string refusal) =>
        Retry.Until($"the site to log '{refusal}'", () => Task.FromResult(site.Output), log => log.Contains(refusal, StringComparison.Ordinal), TimeSpan.FromSeconds(15));

    private async Task<int> LeafCountAsync() =>
        (await _monitor.GetFromJsonAsync<JsonElement>($"http://127.0.0.1:{_monitorPort}/leafz")).GetProperty("leafnodes").GetInt32();
}
