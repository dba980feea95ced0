using System.Net;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// Each stream's own limits (<c>Topology:JobsMaxMsgs</c>, …): set at start on new and existing
/// streams, discarding new messages rather than old ones, so a full work queue refuses submits
/// (503 with Retry-After) and loses none it accepted.
/// </summary>
public sealed class StreamLimitsTests : IAsyncLifetime
{
    private NatsServerProcess _nats = null!;
    private readonly string _schema = TestEnvironment.NewSchema();

    public async Task InitializeAsync() => _nats = await NatsServerProcess.StartAsync();

    public async Task DisposeAsync() => await _nats.DisposeAsync();

    [Fact]
    public async Task A_work_queue_full_by_its_own_limit_refuses_submits_with_503_and_every_job_it_accepted_succeeds_once_raised()
    {
        var accepted = new List<Guid>();
        await using (var full = new PipelineHost(_nats.Url, _schema, "api,projections", new Dictionary<string, string?> { ["Topology:JobsMaxMsgs"] = "3" }))
        {
            using var client = full.CreateClient();
            var refused = await Retry.Until("a submit to be refused by the full queue", async () =>
            {
                var job = await client.SubmitAsync(Scenarios.MlpJob([accepted.Count, 1, 1, 1]));
                if (job.Status == HttpStatusCode.Accepted)
                {
                    accepted.Add(job.Id);
                }

                return job;
            }, job => job.Status != HttpStatusCode.Accepted);

            refused.Status.ShouldBe(HttpStatusCode.ServiceUnavailable);
            refused.Body.GetProperty("detail").GetString()!.ShouldContain("Topology:JobsMaxMsgs");
            using var again = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs") { Content = new StringContent(Scenarios.MlpJob([9, 9, 9, 9]), System.Text.Encoding.UTF8, "application/json") };
            using var answer = await client.SendAsync(again);
            answer.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
            answer.Headers.RetryAfter.ShouldNotBeNull();
            answer.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
            accepted.Count.ShouldBeGreaterThanOrEqualTo(3);
            (await StreamConfigAsync(NatsTopology.JobsStream)).ShouldSatisfyAllConditions(
                c => c.MaxMsgs.ShouldBe(3),
                c => c.Discard.ShouldBe(StreamConfigDiscard.New));
        }

        // The same streams, started again with room and a processor: the limit is applied to the
        // existing stream, and every job accepted (those that waited in the event log too) succeeds.
        await using var roomy = new PipelineHost(_nats.Url, _schema, "api,processor,projections", new Dictionary<string, string?> { ["Topology:JobsMaxMsgs"] = "1000" });
        using var operatorClient = roomy.CreateClient();
        operatorClient.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
        foreach (var id in accepted)
        {
            await operatorClient.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(60));
        }

        (await StreamConfigAsync(NatsTopology.JobsStream)).MaxMsgs.ShouldBe(1000);
        (await StreamConfigAsync(NatsTopology.EventsStream)).Discard.ShouldBe(StreamConfigDiscard.New, "the event log never drops an unrecorded event for room");
        (await StreamConfigAsync(WebhookQueue.Stream)).ShouldSatisfyAllConditions(
            c => c.MaxMsgs.ShouldBe(new TopologyOptions().WebhooksMaxMsgs),
            c => c.Discard.ShouldBe(StreamConfigDiscard.New));
    }

    private async Task<StreamConfig> StreamConfigAsync(string stream)
    {
        await using var client = new NatsClient(_nats.Url);
        return (await client.CreateJetStreamContext().GetStreamAsync(stream)).Info.Config;
    }
}
