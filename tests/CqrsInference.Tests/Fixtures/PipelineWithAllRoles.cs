using System.Net.Http.Json;
using NATS.Client.JetStream;
using NATS.Net;

using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

/// <summary>A nats-server and the whole application (API, processors, projections) in one host.</summary>
public class PipelineWithAllRoles : IAsyncLifetime
{
    public NatsServerProcess Nats { get; private set; } = null!;

    public PipelineHost Host { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    /// <summary>A client with the platform operator's key (tenant default, every role).</summary>
    public HttpClient Operator { get; private set; } = null!;

    protected virtual string Roles => "api,processor,projections";

    /// <summary>A client with a new key of <paramref name="tenant"/> holding <paramref name="roles"/>, created by the operator.</summary>
    public async Task<HttpClient> TenantClientAsync(string tenant, params string[] roles)
    {
        using var created = await Operator.PostAsJsonAsync("/v1/admin/keys", new { tenant, name = $"{tenant} test", roles });
        created.StatusCode.ShouldBe(System.Net.HttpStatusCode.Created);
        var client = Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("key").GetString());
        return client;
    }

    protected virtual IReadOnlyDictionary<string, string?>? Settings => null;

    public virtual async Task InitializeAsync()
    {
        Nats = await NatsServerProcess.StartAsync();
        try
        {
            Host = new PipelineHost(Nats.Url, TestEnvironment.NewSchema(), Roles, Settings);
            ConfigureHost(Host);
            Client = Host.CreateClient();
            Operator = Host.CreateClient();
            Operator.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
        }
        catch
        {
            // xunit does not dispose a fixture whose start failed: stop the server it started.
            await Nats.DisposeAsync();
            throw;
        }
    }

    /// <summary>Before the host starts: e.g. serve over Kestrel for a real browser.</summary>
    protected virtual void ConfigureHost(PipelineHost host)
    {
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        Operator.Dispose();
        await Host.DisposeAsync();
        await Nats.DisposeAsync();
    }

    /// <summary>A client connection of the test's own to the same server.</summary>
    public async Task<(NatsClient Client, INatsJSContext Js)> ConnectAsync()
    {
        var client = new NatsClient(Nats.Url);
        await client.ConnectAsync();
        return (client, client.CreateJetStreamContext());
    }
}

/// <summary>The API and the projections, but no processor: scale to zero.</summary>
public sealed class PipelineWithoutProcessors : PipelineWithAllRoles
{
    protected override string Roles => "api,projections";
}

/// <summary>The API and a processor in the host; the recorders run in child processes the test starts and kills.</summary>
public sealed class PipelineWithRecordersOutside : PipelineWithAllRoles
{
    protected override string Roles => "api,processor";
}

/// <summary>No processor, and queues retired after two idle seconds.</summary>
public sealed class PipelineWithShortLivedQueues : PipelineWithAllRoles
{
    protected override string Roles => "api,projections";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Topology:QueueIdleAfter"] = "00:00:02" };
}

/// <summary>No processor, and the batch supervisor looking at one running batch a round.</summary>
public sealed class PipelineSupervisingOneBatchARound : PipelineWithAllRoles
{
    protected override string Roles => "api,projections";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Batches:SupervisePage"] = "1" };
}
