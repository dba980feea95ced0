using System.Net;
using System.Text;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Net;

using CqrsInference.Tests.Processors.Runtime;

namespace CqrsInference.Tests.Security;

/// <summary>
/// A nats-server with one user per role (config/nats-users.conf.template), and each role in its own
/// host connected as its own user: the API and the projections in this process, the processor as a
/// child process.
/// </summary>
public sealed class NatsPermissionTests(PipelineWithNatsUserPerRole pipeline) : IClassFixture<PipelineWithNatsUserPerRole>
{
    [Fact]
    public async Task The_pipeline_runs_with_a_least_privilege_user_per_role()
    {
        var job = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        var done = await pipeline.Client.WaitForStatusAsync(job.Id, "succeeded");

        done.GetProperty("worker").GetString().ShouldBe("proc-restricted");
    }

    [Fact]
    public async Task The_interactive_path_runs_with_the_same_least_privilege_users()
    {
        // The processor's first interactive answer runs cold code; under a loaded suite it may outlast
        // the API's patience and be queued instead: what matters here is that one is served interactively.
        var job = await Retry.Until("a job served interactively by the restricted processor", () => pipeline.Client.InferAsync([4, 3, 2, 1]),
            j => j.Status == HttpStatusCode.OK && j.Body.GetProperty("servedBy").GetString() == "interactive");

        job.Body.GetProperty("worker").GetString().ShouldBe("proc-restricted");
        await Retry.Until("the job to be recorded", () => pipeline.Client.RecordedCountsAsync(job.Id), c => c == (1, 1));
    }

    [Theory]
    [InlineData("processor")]
    [InlineData("projections")]
    public async Task Only_the_api_may_put_jobs_on_the_queues(string user)
    {
        await using var client = await pipeline.ConnectAsAsync(user);
        var violations = ServerErrors(client);
        var js = client.CreateJetStreamContext();
        var before = await JobMessages.CountAsync(js, NatsTopology.EventsStream);

        await client.PublishAsync("jobs.local.mlp-test.interactive.default", Encoding.UTF8.GetBytes("{}"));

        await Retry.Until("the server to refuse the publish", () => Task.FromResult(violations.ToList()),
            errors => errors.Any(e => e.Contains("Permissions Violation for Publish to \"jobs.local.mlp-test.interactive.default\"", StringComparison.OrdinalIgnoreCase)));
        (await JobMessages.CountAsync(js, NatsTopology.EventsStream)).ShouldBe(before);
    }

    [Fact]
    public async Task The_api_user_cannot_take_jobs_from_the_queues()
    {
        // No processor serves ppocr-rec here, so this job waits in its queue.
        var waiting = await pipeline.Client.SubmitAsync(RealModelTests.OcrJob([1, 2, 3]));
        waiting.Status.ShouldBe(HttpStatusCode.Accepted);
        await using var client = await pipeline.ConnectAsAsync("api");
        var violations = ServerErrors(client);
        var js = client.CreateJetStreamContext();
        await Retry.Until("the job to wait in its queue", () => JobMessages.QueuedAsync(js, "ppocr-rec"), q => q.Waiting >= 1);
        var queue = (await new JobQueues(js, new TopologyOptions()).ListAsync("ppocr-rec", CancellationToken.None)).First(q => q.Waiting > 0).Queue;

        // A pull is a publish to the consumer's next-message subject, which the API user may not make.
        await client.PublishAsync($"$JS.API.CONSUMER.MSG.NEXT.{NatsTopology.JobsStream}.{queue.ConsumerName}", Encoding.UTF8.GetBytes("{\"batch\":1}"));

        await Retry.Until("the server to refuse the pull", () => Task.FromResult(violations.ToList()),
            errors => errors.Any(e => e.Contains($"Permissions Violation for Publish to \"$JS.API.CONSUMER.MSG.NEXT.{NatsTopology.JobsStream}.{queue.ConsumerName}\"", StringComparison.OrdinalIgnoreCase)));
        var after = (await js.GetConsumerAsync(NatsTopology.JobsStream, queue.ConsumerName)).Info;
        after.NumAckPending.ShouldBe(0);
        after.NumPending.ShouldBeGreaterThanOrEqualTo(1UL);
    }

    [Fact]
    public async Task The_processor_user_cannot_read_the_event_log_or_listen_next_to_it()
    {
        await using var client = await pipeline.ConnectAsAsync("processor");
        var violations = ServerErrors(client);
        var js = client.CreateJetStreamContext();

        await using (await client.Connection.SubscribeCoreAsync<byte[]>("log.>"))
        {
            await Retry.Until("the server to refuse the subscription", () => Task.FromResult(violations.ToList()),
                errors => errors.Any(e => e.Contains("Permissions Violation for Subscription to \"log.>\"", StringComparison.OrdinalIgnoreCase)));
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        await Should.ThrowAsync<Exception>(async () => await js.CreateOrUpdateConsumerAsync(NatsTopology.EventsStream, new NATS.Client.JetStream.Models.ConsumerConfig("snoop"), timeout.Token));
        violations.ShouldContain(e => e.Contains($"Permissions Violation for Publish to \"$JS.API.CONSUMER.CREATE.{NatsTopology.EventsStream}", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task A_result_published_next_to_the_event_log_never_reaches_a_caller_following_the_job()
    {
        // No processor serves ppocr-rec here, so the job stays queued until it is cancelled.
        var job = await pipeline.Client.SubmitAsync(RealModelTests.OcrJob([4, 5, 6]));
        using var response = await pipeline.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{job.Id}/stream"), HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        (await reader.ReadLineAsync(timeout.Token)).ShouldBe("event: status");

        // A forged outcome on the subject processors once announced results on, from a user that may publish it.
        await using var forger = await pipeline.ConnectAsAsync("api");
        var forged = new CqrsInference.Commands.Jobs.V1.JobCancelled(job.Id, DateTimeOffset.UtcNow, "forger");
        await forger.PublishAsync($"cqrsi.job.{job.Id:N}", System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(forged, CqrsInference.Commands.Jobs.EventNames.Types[CqrsInference.Commands.Jobs.EventNames.Of(forged)], CqrsInference.Commands.WireJson.Default.Options),
            headers: EventWire.Headers(CqrsInference.Commands.Jobs.EventNames.Of(forged), trace: null));
        await forger.Connection.PingAsync();
        await Task.Delay(1000);
        (await pipeline.Client.DeleteAsync($"/v1/jobs/{job.Id}")).IsSuccessStatusCode.ShouldBeTrue();

        var events = new List<string>();
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("event: v1.", StringComparison.Ordinal) || line.Contains("forger", StringComparison.Ordinal))
            {
                events.Add(line);
            }
        }

        events.ShouldBe(["event: v1.job_cancelled"]);
    }

    [Fact]
    public async Task A_wrong_password_is_refused()
    {
        var refused = await Should.ThrowAsync<NatsException>(async () =>
        {
            await using var client = new NatsClient(new NatsOpts
            {
                Url = pipeline.Nats.Url,
                AuthOpts = NatsAuthOpts.Default with { Username = "api", Password = "not-it" },
                MaxReconnectRetry = 0,
            });
            await client.ConnectAsync();
        });

        Describe(refused).ShouldContain("Authorization Violation", Case.Insensitive);
    }

    /// <summary>The -ERR lines the server sends this connection (a permission violation is one, sent asynchronously).</summary>
    private static System.Collections.Concurrent.ConcurrentQueue<string> ServerErrors(NatsClient client)
    {
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        client.Connection.ServerError += (_, e) =>
        {
            errors.Enqueue(e.Error);
            return default;
        };
        return errors;
    }

    private static string Describe(Exception e) => e.InnerException is null ? e.Message : $"{e.Message} <- {Describe(e.InnerException)}";
}
