using System.Net;
using System.Net.Sockets;
using CqrsInference.Commands.Jobs.Webhooks;

namespace CqrsInference.Projections.Webhooks;

/// <summary>A webhook call refused by <see cref="WebhookAddressRules"/>: never retried.</summary>
internal sealed class WebhookRefusedException(string message) : Exception(message);

/// <summary>
/// How webhook calls reach the network: never through a proxy, never following a redirect, and
/// connecting only to addresses <see cref="WebhookAddressRules"/> allows. The name is resolved
/// here, at connect time, and the connection goes to an address that was checked, so a name that
/// resolves to a public address at submit and to a private one later (DNS rebinding) gets nowhere.
/// Allow-listed hosts connect as they resolve.
/// </summary>
internal static class WebhookConnections
{
    public delegate Task<IPAddress[]> Resolver(string host, CancellationToken ct);

    public static SocketsHttpHandler CreateHandler(WebhookAddressRules rules, Resolver? resolve = null)
    {
        var lookUp = resolve ?? Dns.GetHostAddressesAsync;
        return new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
            ConnectCallback = (context, ct) => ConnectAsync(context.DnsEndPoint, rules, lookUp, ct),
        };
    }

    /// <summary>The addresses a call to host:port may connect to; throws <see cref="WebhookRefusedException"/> when there are none.</summary>
    public static async Task<IPAddress[]> AllowedAddressesAsync(string host, int port, WebhookAddressRules rules, Resolver resolve, CancellationToken ct)
    {
        host = WebhookAddressRules.NormalizeHost(host);
        var allowListed = rules.IsAllowListed(host, port);
        if (!allowListed && WebhookAddressRules.HostRefusal(host) is { } refusal)
        {
            throw new WebhookRefusedException(refusal);
        }

        var resolved = IPAddress.TryParse(host, out var literal) ? [literal] : await resolve(host, ct);
        if (allowListed)
        {
            return resolved;
        }

        var allowed = resolved.Where(a => WebhookAddressRules.ForbiddenKind(a) is null).ToArray();
        return allowed.Length > 0
            ? allowed
            : throw new WebhookRefusedException(
                $"webhook host {host} resolves only to addresses it may not call ({string.Join(", ", resolved.Select(a => a.ToString()))}).");
    }

    private static async ValueTask<Stream> ConnectAsync(DnsEndPoint endpoint, WebhookAddressRules rules, Resolver resolve, CancellationToken ct)
    {
        var addresses = await AllowedAddressesAsync(endpoint.Host, endpoint.Port, rules, resolve, ct);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, endpoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
