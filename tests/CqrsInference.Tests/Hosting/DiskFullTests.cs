using System.Net;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// JetStream's store full (a nats-server with a small <c>max_file_store</c>): submits answer 503
/// with Retry-After instead of 500, and once the operator gives the store room (a restart with a
/// larger limit) every job accepted before is completed.
/// </summary>
public sealed class DiskFullTests : IAsyncLifetime
{
    private NatsServerProcess _nats = null!;
    private PipelineHost _host = null!;
    private PipelineHost? _processor;

    public async Task InitializeAsync()
    {
        _nats = await NatsServerProcess.StartWithConfigAsync((port, directory) => Config(port, directory, "3MB"));
        _host = new PipelineHost(_nats.Url, TestEnvironment.NewSchema(), "api,projections", new Dictionary<string, string?>
        {
            ["ClaimCheck:MaxBytes"] = "262144",
        });
    }

    public async Task DisposeAsync()
    {
        if (_processor is not null)
        {
            await _processor.DisposeAsync();
        }

        await _host.DisposeAsync();
        await _nats.DisposeAsync();
    }

    [Fact]
    public async Task A_full_store_answers_submits_503_and_every_job_accepted_before_completes_once_there_is_room()
    {
        using var client = _host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
        var metadata = "{" + string.Join(",", Enumerable.Range(0, 16).Select(k => $"\"k{k}\":\"{new string('p', 500)}\"")) + "}";
        var accepted = new List<Guid>();
        SubmittedJob? refused = null;
        for (var i = 0; i < 2000 && refused is null; i++)
        {
            var job = await client.SubmitAsync(Scenarios.MlpJob([i, 1, 1, 1], metadata));
            if (job.Status == HttpStatusCode.Accepted)
            {
                accepted.Add(job.Id);
            }
            else
            {
                refused = job;
            }
        }

        refused.ShouldNotBeNull("the store filled up");
        refused.Status.ShouldBe(HttpStatusCode.ServiceUnavailable, refused.Body.ToString());
        accepted.Count.ShouldBeGreaterThan(10);

        // The operator gives JetStream room; a processor takes the backlog.
        await _nats.StopProcessAsync();
        await _nats.ReconfigureAsync((port, directory) => Config(port, directory, "256MB"));
        await _nats.StartProcessAsync();
        _processor = new PipelineHost(_nats.Url, _host.Schema, "processor");
        _ = _processor.Server;
        foreach (var id in accepted)
        {
            await client.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(90));
        }

        (await client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]))).Status.ShouldBe(HttpStatusCode.Accepted);
        _host.Services.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested.ShouldBeFalse();
    }

    private static string Config(int port, string directory, string maxFileStore) => $$"""
        listen: "127.0.0.1:{{port}}"
        jetstream { store_dir: "{{directory}}/js", max_file_store: {{maxFileStore}} }
        {{NatsServerProcess.Mappings}}
        """;
}
