using System.Net;
using CqrsInference.Api.Hosting;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using NATS.Client.Core;

namespace CqrsInference.Tests.Deployment;

/// <summary>
/// NATS over TLS with users: a nats-server whose certificate a CA of the test's own signed
/// (<see cref="TestCertificates"/>), the application told that CA (<c>Nats:Tls:CaFile</c>) and its
/// user; clients that do not trust the CA, or bring a wrong password, or no certificate to a server
/// that verifies clients, are refused.
/// </summary>
public sealed class NatsTlsTests : IAsyncLifetime
{
    private const string Password = "tls-host-password";

    private TestCertificates _certificates = null!;
    private NatsServerProcess _nats = null!;

    public async Task InitializeAsync()
    {
        _certificates = await TestCertificates.CreateAsync();
        _nats = await StartServerAsync(verifyClients: false);
    }

    public async Task DisposeAsync()
    {
        await _nats.DisposeAsync();
        _certificates.Dispose();
    }

    [Fact]
    public async Task A_job_runs_through_api_processor_and_projections_connected_over_tls_as_a_user()
    {
        await using var host = new PipelineHost(TlsUrl(_nats), TestEnvironment.NewSchema(), "api,processor,projections", new Dictionary<string, string?>
        {
            ["Nats:Tls:CaFile"] = _certificates.CaFile,
            ["Nats:User"] = "host",
            ["Nats:Password"] = Password,
        });
        using var client = host.CreateClient();

        var job = await client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));

        job.Status.ShouldBe(HttpStatusCode.Accepted);
        await client.WaitForStatusAsync(job.Id, "succeeded");
    }

    [Fact]
    public async Task Clients_that_do_not_trust_the_ca_or_bring_a_wrong_password_are_refused()
    {
        (await TryConnectAsync(_nats, new() { ["Nats:Tls:CaFile"] = _certificates.CaFile, ["Nats:User"] = "host", ["Nats:Password"] = Password })).ShouldBeNull();

        (await TryConnectAsync(_nats, new() { ["Nats:User"] = "host", ["Nats:Password"] = Password })).ShouldNotBeNull();
        (await TryConnectAsync(_nats, new() { ["Nats:Tls:CaFile"] = _certificates.CaFile, ["Nats:User"] = "host", ["Nats:Password"] = "wrong" })).ShouldNotBeNull();
        (await TryConnectAsync(_nats, new() { ["Nats:Tls:CaFile"] = _certificates.CaFile })).ShouldNotBeNull();
    }

    [Fact]
    public async Task A_server_that_verifies_clients_admits_only_a_client_with_a_certificate_of_its_ca()
    {
        await using var verifying = await StartServerAsync(verifyClients: true);
        var user = new Dictionary<string, string?> { ["Nats:Tls:CaFile"] = _certificates.CaFile, ["Nats:User"] = "host", ["Nats:Password"] = Password };

        (await TryConnectAsync(verifying, new(user) { ["Nats:Tls:CertFile"] = _certificates.ClientCertFile, ["Nats:Tls:KeyFile"] = _certificates.ClientKeyFile })).ShouldBeNull();
        (await TryConnectAsync(verifying, user)).ShouldNotBeNull();
    }

    [Fact]
    public void A_tls_file_that_cannot_be_read_or_a_certificate_without_its_key_stops_the_start_naming_the_setting()
    {
        Should.Throw<InvalidOperationException>(() => Options(new() { ["Nats:Tls:CaFile"] = Path.Combine(_certificates.Directory, "missing.pem") }))
            .Message.ShouldContain("Nats:Tls:CaFile");
        Should.Throw<InvalidOperationException>(() => Options(new() { ["Nats:CredsFile"] = Path.Combine(_certificates.Directory, "missing.creds") }))
            .Message.ShouldContain("Nats:CredsFile");
        Should.Throw<InvalidOperationException>(() => Options(new() { ["Nats:Tls:CertFile"] = _certificates.ClientCertFile }))
            .Message.ShouldContain("Nats:Tls:KeyFile");
        Should.Throw<InvalidOperationException>(() => Options(new() { ["Nats:Tls:Mode"] = "sometimes" }))
            .Message.ShouldContain("Nats:Tls:Mode");
    }

    [Fact]
    public void A_ca_means_tls_is_required_and_no_tls_setting_leaves_it_to_the_server()
    {
        Options(new() { ["Nats:Tls:CaFile"] = _certificates.CaFile }).TlsOpts.Mode.ShouldBe(TlsMode.Require);
        Options(new() { ["Nats:Tls:CaFile"] = _certificates.CaFile, ["Nats:Tls:Mode"] = "implicit" }).TlsOpts.Mode.ShouldBe(TlsMode.Implicit);
        Options([]).TlsOpts.Mode.ShouldBe(TlsMode.Auto);
    }

    private static string TlsUrl(NatsServerProcess server) => $"tls://127.0.0.1:{server.Port}";

    private static NatsOpts Options(Dictionary<string, string?> settings) =>
        NatsConnectionSettings.Apply(NatsOpts.Default, new ConfigurationBuilder().AddInMemoryCollection(settings).Build());

    /// <summary>Connects as the application would with these settings: null when admitted, else why not.</summary>
    private static async Task<Exception?> TryConnectAsync(NatsServerProcess server, Dictionary<string, string?> settings)
    {
        var opts = Options(new(settings) { ["Nats:Url"] = TlsUrl(server) }) with { ConnectTimeout = TimeSpan.FromSeconds(5) };
        await using var connection = new NatsConnection(opts);
        try
        {
            await connection.ConnectAsync();
            await connection.PingAsync();
            return null;
        }
        catch (NatsException e)
        {
            return e;
        }
    }

    private Task<NatsServerProcess> StartServerAsync(bool verifyClients) =>
        NatsServerProcess.StartWithConfigAsync((port, directory) => $$"""
            listen: "127.0.0.1:{{port}}"
            jetstream { store_dir: "{{directory}}/js" }
            tls {
              cert_file: "{{_certificates.ServerCertFile}}"
              key_file: "{{_certificates.ServerKeyFile}}"
              ca_file: "{{_certificates.CaFile}}"
              verify: {{(verifyClients ? "true" : "false")}}
              timeout: 2
            }
            authorization { users = [ { user: "host", password: "{{Password}}" } ] }
            {{NatsServerProcess.Mappings}}
            """);
}
