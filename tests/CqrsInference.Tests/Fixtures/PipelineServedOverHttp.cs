using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Playwright;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineServedOverHttp : PipelineWithAllRoles
{
    public int Port { get; } = NatsServerProcess.FreePort();

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Processor:HeartbeatInterval"] = "00:00:01" };

    protected override void ConfigureHost(PipelineHost host)
    {
        host.UseKestrel(Port);
        host.StartServer();
    }
}
