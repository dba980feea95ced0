using CqrsInference.Commands.Jobs.Webhooks;

namespace CqrsInference.Tests.Jobs.Webhooks;

/// <summary>Where a webhook may point: the rules the submit and the delivery share.</summary>
public sealed class WebhookAddressRulesTests
{
    private static readonly WebhookAddressRules PublicOnly = WebhookAddressRules.PublicOnly;
    private static readonly WebhookAddressRules Development = new(["127.0.0.1:9000", "localhost", "[::1]:8080", " receiver.test "]);

    public static TheoryData<string, bool> Addresses() => new()
    {
        // Public https endpoints.
        { "https://example.com/hook", true },
        { "https://hooks.example.com:8443/a?b=c", true },
        { "https://8.8.8.8/", true },
        { "https://[2606:4700:4700::1111]/", true },
        { "https://[::ffff:8.8.8.8]/", true },
        { "https://[2002:808:808::1]/", true },
        { "https://[64:ff9b::808:808]/", true },
        { "https://172.32.0.1/", true },
        { "https://100.128.0.1/", true },
        { "https://11.0.0.1/", true },
        { "https://bücher.example/", true },

        // Not https, or credentials.
        { "http://example.com/hook", false },
        { "ftp://example.com/", false },
        { "https://user:secret@example.com/", false },
        { "https://user@example.com/", false },
        { "not a url", false },
        { "https://example.com:0/hook", false },
        { "https://example.com:65535/hook", true },

        // Loopback and unspecified, in every spelling.
        { "http://127.0.0.1:8222/connz", false },
        { "https://127.0.0.1/", false },
        { "https://127.255.255.254/", false },
        { "https://2130706433/", false },
        { "https://0x7f.1/", false },
        { "https://0x7f000001/", false },
        { "https://0177.0.0.1/", false },
        { "https://127.1/", false },
        { "https://127.000.000.001/", false },
        { "https://127。0。0。1/", false },
        { "https://127.0.0.1./", false },
        { "https://[::1]/", false },
        { "https://[0:0:0:0:0:0:0:1]/", false },
        { "https://0.0.0.0/", false },
        { "https://0/", false },
        { "https://[::]/", false },

        // Private, link-local, CGNAT, multicast, broadcast, reserved.
        { "https://10.0.0.1/", false },
        { "https://172.16.0.1/", false },
        { "https://172.31.255.255/", false },
        { "https://192.168.1.1/", false },
        { "https://169.254.169.254/latest/meta-data/", false },
        { "https://100.64.0.1/", false },
        { "https://100.127.255.255/", false },
        { "https://224.0.0.1/", false },
        { "https://239.255.255.250/", false },
        { "https://255.255.255.255/", false },
        { "https://240.0.0.1/", false },
        { "https://192.0.2.1/", false },
        { "https://[fd00::1]/", false },
        { "https://[fc00::1]/", false },
        { "https://[fe80::1]/", false },
        { "https://[fe80::1%25eth0]/", false },
        { "https://[ff02::1]/", false },

        // IPv6 forms that carry a forbidden IPv4 address.
        { "https://[::ffff:127.0.0.1]/", false },
        { "https://[::ffff:7f00:1]/", false },
        { "https://[::ffff:a9fe:a9fe]/", false },
        { "https://[::127.0.0.1]/", false },
        { "https://[::ffff:0:127.0.0.1]/", false },
        { "https://[64:ff9b::a9fe:a9fe]/", false },
        { "https://[2002:7f00:1::]/", false },
        { "https://[2002:a00:1::]/", false },

        // Names that only resolve inside the server's network.
        { "https://localhost/", false },
        { "https://LOCALHOST./", false },
        { "https://api.localhost/", false },
        { "https://printer.local/", false },
        { "https://metadata.google.internal/computeMetadata/v1/", false },
        { "https://router.home.arpa/", false },
        { "https://intranet/", false },
        { "https://1.2.3.4.5/", false },
        { "https://256.1.1.1/", false },
    };

    [Theory]
    [MemberData(nameof(Addresses))]
    public void A_webhook_goes_only_to_public_https_endpoints(string url, bool allowed)
    {
        var refusal = PublicOnly.Refusal(url);

        if (allowed)
        {
            refusal.ShouldBeNull();
        }
        else
        {
            refusal.ShouldNotBeNull().ShouldStartWith("webhook");
        }
    }

    [Theory]
    [InlineData("http://127.0.0.1:9000/hooks", true)]
    [InlineData("https://127.0.0.1:9000/hooks", true)]
    [InlineData("http://2130706433:9000/", true)] // the same host, spelt as one number
    [InlineData("http://127.0.0.1:9001/", false)] // another port
    [InlineData("http://127.0.0.1/", false)]
    [InlineData("http://127.0.0.2:9000/", false)]
    [InlineData("http://localhost:1234/", true)] // any port
    [InlineData("http://LocalHost./", true)]
    [InlineData("http://[::1]:8080/", true)]
    [InlineData("http://[::1]:8081/", false)]
    [InlineData("http://receiver.test/", true)]
    [InlineData("http://user:pw@127.0.0.1:9000/", false)] // credentials, even there
    [InlineData("http://example.com/", false)]
    [InlineData("https://example.com/", true)]
    public void The_allow_list_lets_named_hosts_through_over_http(string url, bool allowed) =>
        (Development.Refusal(url) is null).ShouldBe(allowed, Development.Refusal(url));

    [Fact]
    public void Plain_http_is_refused_with_the_setting_that_would_allow_it() =>
        PublicOnly.Refusal("http://example.com/")!.ShouldContain("Webhooks:AllowedInsecureHosts");

    [Theory]
    [InlineData("127.0.0.1:99999")]
    [InlineData("127.0.0.1:")]
    [InlineData("http://example.com")]
    [InlineData("[::1")]
    [InlineData("[::1]8080")]
    [InlineData("user@host")]
    public void A_malformed_allow_list_entry_stops_the_start(string entry) =>
        Should.Throw<FormatException>(() => new WebhookAddressRules([entry])).Message.ShouldContain(entry);

    [Theory]
    [InlineData("[FE80::1%eth0]", "fe80::1")]
    [InlineData("Example.COM.", "example.com")]
    [InlineData("::ffff:127.0.0.1", "::ffff:127.0.0.1")]
    [InlineData("127.1", "127.0.0.1")]
    public void Hosts_are_compared_as_they_are_looked_up(string host, string normalized) =>
        WebhookAddressRules.NormalizeHost(host).ShouldBe(normalized);
}
