using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Playwright;

namespace CqrsInference.Tests.Fixtures;

public class PipelineServedOverHttp : PipelineWithAllRoles
{
    public int Port { get; } = NatsServerProcess.FreePort();

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    /// <summary>A tenant whose rate limit a few submits at once exceed (the rest keep the defaults).</summary>
    public const string ThrottledTenant = "cli-throttled";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Processor:HeartbeatInterval"] = "00:00:01",
        [$"Api:RateLimit:Tenants:{ThrottledTenant}:PermitsPerSecond"] = "2",
        [$"Api:RateLimit:Tenants:{ThrottledTenant}:Burst"] = "2",
    };

    protected override void ConfigureHost(PipelineHost host)
    {
        host.UseKestrel(Port);
        host.StartServer();
    }
}

/// <summary>
/// Served over HTTP, with fault injection on (a job that asks for <c>cqrsi-test-fault</c> fails within
/// a test's patience) and a second region that no processor serves or overflows to, where a job
/// stays queued until it is cancelled.
/// </summary>
public sealed class PipelineServedOverHttpWithFaults : PipelineServedOverHttp
{
    /// <summary>The region whose jobs stay queued.</summary>
    public const string UnservedRegion = "unserved";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>(base.Settings!)
    {
        ["Processor:FaultInjection"] = "true",
        ["Processor:RetryBaseDelay"] = "00:00:00.100",
        ["Topology:MaxDeliver"] = "3",
        ["Submit:Regions:0"] = "local",
        ["Submit:Regions:1"] = UnservedRegion,
        ["Processor:Scheduling:Overflow"] = "false",
    };
}
