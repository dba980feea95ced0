using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace CqrsInference.Commands.Jobs.Webhooks;

/// <summary>
/// Where a webhook may be called, so that a job cannot make the platform call itself or its
/// network (SSRF): https only, no credentials in the URL, and a host that is neither a non-public
/// IP address (loopback, private, link-local, CGNAT, multicast, reserved, and IPv6 forms that embed
/// such an IPv4 address) nor a name that only resolves locally (<c>localhost</c>, <c>*.localhost</c>,
/// <c>*.local</c>, <c>*.internal</c>, <c>*.home.arpa</c>, <c>*.localdomain</c>, a name without a
/// dot, which resolves through the server's own search domains, or a numeric name such as
/// <c>1.2.3.4.5</c>). The hosts of the allow-list (<c>Webhooks:AllowedInsecureHosts</c>:
/// <c>host</c> or <c>host:port</c>, for local development and tests) are exempt: http and any
/// address are allowed there.
/// The same rules decide at submit (on the URL as written) and at delivery (on every address a
/// name resolves to, at connect time); <see cref="System.Uri"/> already reads numeric IPv4 forms
/// (<c>2130706433</c>, <c>0x7f.1</c>, <c>0177.0.0.1</c>, <c>127.1</c>) as the dotted address, and
/// the host is taken as it will be looked up (<see cref="Uri.IdnHost"/>).
/// </summary>
public sealed class WebhookAddressRules
{
    public const string AllowListSetting = "Webhooks:AllowedInsecureHosts";

    private static readonly (IPNetwork Network, string Kind)[] Forbidden =
    [
        (IPNetwork.Parse("0.0.0.0/8"), "an unspecified (this-network) address"),
        (IPNetwork.Parse("10.0.0.0/8"), "a private address"),
        (IPNetwork.Parse("100.64.0.0/10"), "a carrier-grade NAT address"),
        (IPNetwork.Parse("127.0.0.0/8"), "a loopback address"),
        (IPNetwork.Parse("169.254.0.0/16"), "a link-local address"),
        (IPNetwork.Parse("172.16.0.0/12"), "a private address"),
        (IPNetwork.Parse("192.0.0.0/24"), "a reserved (IETF protocol) address"),
        (IPNetwork.Parse("192.0.2.0/24"), "a documentation address"),
        (IPNetwork.Parse("192.88.99.0/24"), "a reserved (6to4 relay) address"),
        (IPNetwork.Parse("192.168.0.0/16"), "a private address"),
        (IPNetwork.Parse("198.18.0.0/15"), "a reserved (benchmarking) address"),
        (IPNetwork.Parse("198.51.100.0/24"), "a documentation address"),
        (IPNetwork.Parse("203.0.113.0/24"), "a documentation address"),
        (IPNetwork.Parse("224.0.0.0/4"), "a multicast address"),
        (IPNetwork.Parse("240.0.0.0/4"), "a reserved or broadcast address"),
        (IPNetwork.Parse("::/96"), "an unspecified, loopback or IPv4-compatible address"),
        (IPNetwork.Parse("::ffff:0:0:0/96"), "an IPv4-translated address"),
        (IPNetwork.Parse("64:ff9b:1::/48"), "a local-use NAT64 address"),
        (IPNetwork.Parse("100::/64"), "a discard-only address"),
        (IPNetwork.Parse("2001::/32"), "a Teredo address"),
        (IPNetwork.Parse("2001:db8::/32"), "a documentation address"),
        (IPNetwork.Parse("fc00::/7"), "a unique-local (private) address"),
        (IPNetwork.Parse("fe80::/10"), "a link-local address"),
        (IPNetwork.Parse("fec0::/10"), "a site-local address"),
        (IPNetwork.Parse("ff00::/8"), "a multicast address"),
    ];

    private static readonly IPNetwork Nat64 = IPNetwork.Parse("64:ff9b::/96");
    private static readonly IPNetwork SixToFour = IPNetwork.Parse("2002::/16");
    private static readonly string[] LocalSuffixes = [".localhost", ".local", ".internal", ".home.arpa", ".localdomain"];

    private readonly HashSet<string> _anyPort = new(StringComparer.Ordinal);
    private readonly HashSet<(string Host, int Port)> _hostPorts = [];

    /// <param name="allowedInsecureHosts">Entries <c>host</c> (any port) or <c>host:port</c>; IPv6 as <c>[::1]</c> or <c>[::1]:8080</c>.</param>
    /// <exception cref="FormatException">An entry is not a host or host:port.</exception>
    public WebhookAddressRules(IEnumerable<string> allowedInsecureHosts)
    {
        foreach (var entry in allowedInsecureHosts.Select(e => e.Trim()).Where(e => e.Length > 0))
        {
            var (host, port) = ParseEntry(entry);
            if (port is { } p)
            {
                _hostPorts.Add((host, p));
            }
            else
            {
                _anyPort.Add(host);
            }
        }
    }

    /// <summary>No allow-list: public https endpoints only.</summary>
    public static WebhookAddressRules PublicOnly { get; } = new([]);

    /// <summary>Null when the webhook may be called, else why not (a sentence that names <c>webhook</c>).</summary>
    public string? Refusal(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            return "webhook must be an absolute http or https URL.";
        }

        if (uri.Port is < 1 or > 65535)
        {
            return "webhook must name a port from 1 to 65535 (or none).";
        }

        if (uri.UserInfo.Length > 0)
        {
            return "webhook must not carry credentials (user:password@host); the Cqrsi-Signature header authenticates each call.";
        }

        if (HostOf(uri) is not { } host)
        {
            return "webhook has a host name that cannot be looked up.";
        }

        if (IsAllowListed(host, uri.Port))
        {
            return null;
        }

        return uri.Scheme == "https"
            ? HostRefusal(host)
            : $"webhook must use https; http is allowed only to the hosts in {AllowListSetting} (local development).";
    }

    /// <summary>Whether host (as <see cref="NormalizeHost"/> writes it) and port are on the allow-list.</summary>
    public bool IsAllowListed(string host, int port) => _anyPort.Contains(host) || _hostPorts.Contains((host, port));

    /// <summary>Null when a host that is not allow-listed may be called, else why not: an address in a forbidden range or a local-only name.</summary>
    public static string? HostRefusal(string host)
    {
        if (IPAddress.TryParse(host, out var address))
        {
            return ForbiddenKind(address) is { } kind ? $"webhook may not call {address}: it is {kind}, not a public one." : null;
        }

        if (!host.Contains('.', StringComparison.Ordinal))
        {
            return $"webhook's host '{host}' must be a fully qualified domain name (a name without a dot resolves through the server's own search domains).";
        }

        if (host == "localhost" || LocalSuffixes.Any(s => host.EndsWith(s, StringComparison.Ordinal)))
        {
            return $"webhook's host '{host}' only resolves inside the server's own network.";
        }

        var top = host[(host.LastIndexOf('.') + 1)..];
        return top.All(char.IsAsciiDigit) || top.StartsWith("0x", StringComparison.Ordinal)
            ? $"webhook's host '{host}' is neither an IP address nor a domain name."
            : null;
    }

    /// <summary>What kind of non-public address this is (IPv4-mapped, NAT64 and 6to4 addresses as the IPv4 address they carry); null for a public one.</summary>
    public static string? ForbiddenKind(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        else if (address.AddressFamily == AddressFamily.InterNetworkV6 && (Nat64.Contains(address) || SixToFour.Contains(address)))
        {
            var bytes = address.GetAddressBytes();
            var embedded = new IPAddress(SixToFour.Contains(address) ? bytes.AsSpan(2, 4) : bytes.AsSpan(12, 4));
            return ForbiddenKind(embedded) is { } kind ? $"{kind} (embedded in {address})" : null;
        }

        foreach (var (network, kind) in Forbidden)
        {
            if (network.Contains(address))
            {
                return kind;
            }
        }

        return null;
    }

    /// <summary>The host as it will be looked up: lower case, IDNA (punycode), no brackets, zone or final dot, an IP address in its canonical form.</summary>
    public static string NormalizeHost(string host)
    {
        host = host.Trim().TrimStart('[').TrimEnd(']');
        if (host.IndexOf('%', StringComparison.Ordinal) is var zone and > 0 && host.Contains(':', StringComparison.Ordinal))
        {
            host = host[..zone];
        }

        host = host.TrimEnd('.').ToLowerInvariant();
        return IPAddress.TryParse(host, out var address) ? address.ToString() : host;
    }

    private static string? HostOf(Uri uri)
    {
        try
        {
            var host = NormalizeHost(uri.IdnHost);
            return host.Length > 0 ? host : null;
        }
        catch (UriFormatException)
        {
            return null;
        }
    }

    private static (string Host, int? Port) ParseEntry(string entry)
    {
        string host = entry;
        string? port = null;
        if (entry.StartsWith('['))
        {
            var end = entry.IndexOf(']', StringComparison.Ordinal);
            host = end > 0 ? entry[1..end] : throw BadEntry(entry);
            port = entry[(end + 1)..] switch
            {
                "" => null,
                [':', .. var digits] => digits,
                _ => throw BadEntry(entry),
            };
        }
        else if (entry.Count(c => c == ':') == 1)
        {
            (host, port) = (entry[..entry.IndexOf(':', StringComparison.Ordinal)], entry[(entry.IndexOf(':', StringComparison.Ordinal) + 1)..]);
        }

        if (host.Length == 0 || host.Contains('/', StringComparison.Ordinal) || host.Contains('@', StringComparison.Ordinal))
        {
            throw BadEntry(entry);
        }

        if (port is null)
        {
            return (NormalizeHost(host), null);
        }

        return int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is > 0 and <= 65535
            ? (NormalizeHost(host), p)
            : throw BadEntry(entry);
    }

    private static FormatException BadEntry(string entry) =>
        new($"{AllowListSetting}: '{entry}' is not a host or host:port (IPv6 as [::1] or [::1]:8080).");
}
