using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.JetStream;

namespace CqrsInference.Tests.Recording;

public sealed class RecorderGapTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    [Fact]
    public async Task An_event_delivered_elsewhere_and_never_acknowledged_is_still_recorded_without_waiting_for_redelivery()
    {
        var warm = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([1, 1, 1, 1]));
        await pipeline.Client.WaitForStatusAsync(warm.Id, "succeeded");

        // Another client pulls one message from the recorder's durable and never acknowledges it:
        // what a connection lost mid-fetch leaves behind (redelivered only after the 60 s ack wait).
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var consumer = await js.GetConsumerAsync(NatsTopology.EventsStream, NatsTopology.RecorderConsumer(0));
            var stolen = Task.Run(async () =>
            {
                await foreach (var msg in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 1, Expires = TimeSpan.FromSeconds(20) }))
                {
                    return msg.Subject;
                }

                return null;
            });
            await Retry.Until("the thief's pull request to wait beside the recorder's", async () =>
            {
                await consumer.RefreshAsync();
                return consumer.Info.NumWaiting;
            }, n => n >= 2);

            // Jobs until one of them lands in partition 0, where the thief waits.
            var jobs = new List<Guid>();
            for (var i = 0; i < 60 && !stolen.IsCompleted; i++)
            {
                var job = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([i, 2, 3, 4]));
                job.Status.ShouldBe(HttpStatusCode.Accepted);
                jobs.Add(job.Id);
                await Task.WhenAny(stolen, Task.Delay(100));
            }

            (await stolen).ShouldNotBeNull("the thief got one of the new events");

            // Recorded in order long before the stolen message's redelivery.
            foreach (var id in jobs)
            {
                await Retry.Until(
                    $"job {id}'s events to be recorded",
                    async () =>
                    {
                        using var response = await pipeline.Client.GetAsync($"/v1/jobs/{id}/events");
                        return response.IsSuccessStatusCode
                            ? (await response.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray().Select(e => e.GetProperty("type").GetString()).ToList()
                            : [];
                    },
                    types => types.SequenceEqual(["v1.job_submitted", "v1.job_succeeded"]),
                    TimeSpan.FromSeconds(20));
            }
        }
    }
}
