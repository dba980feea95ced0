using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Webhooks;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using CqrsInference.Tests.Jobs.Webhooks;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.Core;
using NATS.Net;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// A webhook owed while PostgreSQL is away (a PostgreSQL and a nats-server of the test's own, under
/// a host with every role): the dispatcher cannot read the job, and JetStream delivers the owed call
/// again and again meanwhile, but only calls made to the receiver count as attempts. With at most 2
/// attempts and an AckWait of 3 s, an outage of 12 s used up the call's attempts before it was ever
/// made when the server's delivery count was the attempt number.
/// </summary>
public sealed class WebhookOutageTests : IAsyncLifetime
{
    private readonly int _webhookPort = NatsServerProcess.FreePort();
    private NatsServerProcess _nats = null!;
    private PostgresProcess _postgres = null!;
    private PipelineHost _host = null!;
    private WebhookReceiver _receiver = null!;

    public async Task InitializeAsync()
    {
        _receiver = new WebhookReceiver(_webhookPort);
        _nats = await NatsServerProcess.StartAsync();
        _postgres = await PostgresProcess.StartAsync();
        _host = new PipelineHost(_nats.Url, TestEnvironment.NewSchema(), "api,processor,projections", new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = _postgres.ConnectionString,
            ["Webhooks:SigningKey"] = PipelineWithWebhooks.SigningKey,
            ["Webhooks:AllowedInsecureHosts:0"] = $"127.0.0.1:{_webhookPort}",
            ["Webhooks:MaxAttempts"] = "2",
            ["Webhooks:Timeout"] = "00:00:01",
        });
    }

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        foreach (var server in new IAsyncDisposable?[] { _postgres, _nats })
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
        }

        _receiver?.Dispose();
    }

    [Fact]
    public async Task A_webhook_owed_during_a_postgres_outage_is_called_once_after_it_as_attempt_1()
    {
        using var client = _host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
        var job = await client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]).TrimEnd('}') + $",\"webhook\":{JsonSerializer.Serialize(_receiver.Url)}}}");
        await client.WaitForStatusAsync(job.Id, "succeeded", TimeSpan.FromSeconds(60));
        await Retry.Until("the job's webhook to be called", () => Task.FromResult(_receiver.Calls.Count), n => n == 1, TimeSpan.FromSeconds(60));

        // The job's start is owed (as a recorder owes it) right after PostgreSQL went away.
        await _postgres.StopAsync();
        var js = _host.Services.GetRequiredService<INatsConnection>().CreateJetStreamContext();
        await new WebhookQueue(js).OweAsync([new WebhookOwed(job.Id, EventNames.JobStarted, "default")], CancellationToken.None);
        await Task.Delay(TimeSpan.FromSeconds(12));
        Started().ShouldBeEmpty();

        await _postgres.StartAgainAsync();
        await Retry.Until("the start's webhook to be called", () => Task.FromResult(Started()), calls => calls.Count > 0, TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(3));
        var started = Started().ShouldHaveSingleItem();
        started.Status.ShouldBe(200);
        started.Headers["Cqrsi-Delivery"].ShouldBe($"{job.Id}:1");
        _receiver.Calls.Count.ShouldBe(2);
    }

    private List<WebhookCall> Started() => _receiver.Calls.Where(c => c.Type == "job.started").ToList();
}
