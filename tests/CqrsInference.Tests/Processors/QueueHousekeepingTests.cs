using System.Net.Http.Json;
using CqrsInference.Messaging;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Tests.Processors;

/// <summary>Queues' consumers come and go with their jobs, and no job is ever left without one.</summary>
public sealed class QueueHousekeepingTests(PipelineWithShortLivedQueues pipeline) : IClassFixture<PipelineWithShortLivedQueues>
{
    private static readonly TimeSpan Rounds = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_queue_emptied_and_idle_loses_its_consumer_and_a_new_job_gets_one_again()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        var tenant = await NewTenantClientAsync("idle");
        var first = await tenant.SubmitAsync(Scenarios.MlpJob([1, 1, 1, 1]));
        var queue = await Retry.Until("the queue's consumer", () => QueueOfAsync(js, "idle"), q => q is not null);

        // What a processor does: take the job and acknowledge it; the queue is empty from then on.
        await TakeAsync(js, queue!);
        await Retry.Until("the idle queue's consumer to be retired", () => QueueOfAsync(js, "idle"), q => q is null, Rounds);

        var second = await tenant.SubmitAsync(Scenarios.MlpJob([2, 2, 2, 2]));
        var again = await Retry.Until("the queue's consumer to be made again", () => QueueOfAsync(js, "idle"), q => q is not null, Rounds);

        first.Id.ShouldNotBe(second.Id);
        (await CountsAsync(js, again!)).Waiting.ShouldBe(1);
    }

    [Fact]
    public async Task A_queue_holding_jobs_whose_consumer_was_deleted_gets_it_back()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        var tenant = await NewTenantClientAsync("orphan");
        await tenant.SubmitAsync(Scenarios.MlpJob([3, 3, 3, 3]));
        await tenant.SubmitAsync(Scenarios.MlpJob([4, 4, 4, 4]));
        var queue = await Retry.Until("the queue's jobs", () => QueueOfAsync(js, "orphan"), q => q is { Waiting: 2 });

        await js.DeleteConsumerAsync(NatsTopology.JobsStream, queue!.Queue.ConsumerName);

        var back = await Retry.Until("the consumer to be made again", () => QueueOfAsync(js, "orphan"), q => q is not null, Rounds);
        back!.Waiting.ShouldBe(2);
    }

    [Fact]
    public async Task A_pull_for_a_woken_queue_waits_at_the_server_and_takes_the_job_that_arrives()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        var tenant = await NewTenantClientAsync("woken");
        await tenant.SubmitAsync(Scenarios.MlpJob([5, 5, 5, 5]));
        var queue = await Retry.Until("the queue's job", () => QueueOfAsync(js, "woken"), q => q is { Waiting: 1 });
        var source = new NatsJobSource(new JobQueues(js, new TopologyOptions()), js, new ProcessorOptions());

        var taken = new List<JobDelivery>();
        await foreach (var delivery in source.PullAsync(queue!.Queue, 1, QueueFetcher.WokenPullWait, CancellationToken.None))
        {
            taken.Add(delivery);
            await delivery.Ack.AckAsync();
        }

        taken.Count.ShouldBe(1);
    }

    private async Task<HttpClient> NewTenantClientAsync(string tenant)
    {
        using var created = await pipeline.Operator.PostAsJsonAsync("/v1/admin/keys", new { tenant, roles = new[] { "submit", "read" } });
        var client = pipeline.Host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("key").GetString());
        return client;
    }

    private static async Task<QueueState?> QueueOfAsync(INatsJSContext js, string tenant) =>
        (await new JobQueues(js, new TopologyOptions()).ListAsync("mlp-test", CancellationToken.None)).SingleOrDefault(q => q.Queue.Tenant == tenant);

    private static async Task<QueueState> CountsAsync(INatsJSContext js, QueueState queue) =>
        (await QueueOfAsync(js, queue.Queue.Tenant))!;

    private static async Task TakeAsync(INatsJSContext js, QueueState queue)
    {
        var consumer = await js.GetConsumerAsync(NatsTopology.JobsStream, queue.Queue.ConsumerName);
        await foreach (var msg in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 1, Expires = TimeSpan.FromSeconds(5) }))
        {
            await msg.AckAsync(new AckOpts { DoubleAck = true });
        }
    }
}
