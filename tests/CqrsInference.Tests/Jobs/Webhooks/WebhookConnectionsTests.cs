using System.Net;
using System.Net.Sockets;
using CqrsInference.Commands.Jobs.Webhooks;
using CqrsInference.Projections.Webhooks;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Webhooks;

/// <summary>
/// The delivery's connections, with a stand-in for DNS (the only fake): a name is checked on the
/// addresses it resolves to when the call connects, so a name rebound to a private address after
/// the submit is not called.
/// </summary>
public sealed class WebhookConnectionsTests
{
    private static WebhookConnections.Resolver Resolving(params string[] addresses) =>
        (_, _) => Task.FromResult(addresses.Select(IPAddress.Parse).ToArray());

    [Fact]
    public async Task A_name_that_resolves_to_loopback_is_refused_and_never_connected_to()
    {
        var port = NatsServerProcess.FreePort();
        using var listener = new BlackHole(port);
        using var client = new HttpClient(WebhookConnections.CreateHandler(WebhookAddressRules.PublicOnly, Resolving("127.0.0.1")));

        var thrown = await Should.ThrowAsync<HttpRequestException>(() => client.PostAsync(new Uri($"http://rebound.example.com:{port}/hooks/"), null));

        thrown.InnerException.ShouldBeOfType<WebhookRefusedException>().Message.ShouldContain("127.0.0.1");
        await Task.Delay(100);
        listener.Connections.ShouldBe(0);
    }

    [Fact]
    public async Task The_same_name_allow_listed_is_called()
    {
        var port = NatsServerProcess.FreePort();
        using var receiver = new WebhookReceiver(port);
        var rules = new WebhookAddressRules([$"rebound.example.com:{port}"]);
        using var client = new HttpClient(WebhookConnections.CreateHandler(rules, Resolving("127.0.0.1")));

        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://rebound.example.com:{port}/hooks/"));
        request.Headers.Host = $"127.0.0.1:{port}"; // the receiver answers only to the host it listens on

        using var response = await client.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        receiver.Calls.Count.ShouldBe(1);
    }

    [Fact]
    public async Task Of_the_addresses_a_name_resolves_to_only_the_public_ones_are_connected_to()
    {
        var addresses = await WebhookConnections.AllowedAddressesAsync(
            "mixed.example.com", 443, WebhookAddressRules.PublicOnly, Resolving("10.0.0.1", "93.184.215.14", "::1", "2606:4700::1111"), CancellationToken.None);

        addresses.Select(a => a.ToString()).ShouldBe(["93.184.215.14", "2606:4700::1111"]);
    }

    [Theory]
    [InlineData("169.254.169.254")]
    [InlineData("::ffff:169.254.169.254")]
    [InlineData("localhost")]
    [InlineData("intranet")]
    public async Task A_forbidden_host_is_refused_before_any_look_up(string host)
    {
        WebhookConnections.Resolver mustNotResolve = (_, _) => throw new SocketException((int)SocketError.HostNotFound);

        await Should.ThrowAsync<WebhookRefusedException>(() =>
            WebhookConnections.AllowedAddressesAsync(host, 80, WebhookAddressRules.PublicOnly, mustNotResolve, CancellationToken.None));
    }
}
