using System.Net;
using System.Text;
using CqrsInference.Messaging;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Net;

namespace CqrsInference.Tests.Pipeline;

/// <summary>
/// A nats-server with one user per role (config/nats-users.conf.template), and each role in its own
/// host connected as its own user: the API and the projections in this process, the processor as a
/// child process.
/// </summary>
public sealed class PerRoleUsersFixture : IAsyncLifetime
{
    public NatsServerProcess Nats { get; private set; } = null!;

    public PipelineHost Api { get; private set; } = null!;

    public PipelineHost Projections { get; private set; } = null!;

    public ProcessorProcess Processor { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Nats = await NatsServerProcess.StartWithUsersAsync();
        try
        {
            var schema = TestEnvironment.NewSchema();
            Api = new PipelineHost(Nats.Url, schema, "api", User("api"));
            Client = Api.CreateClient();
            Projections = new PipelineHost(Nats.Url, schema, "projections", User("projections"));
            _ = Projections.Server;
            Processor = await ProcessorProcess.StartAsync(Nats.Url, "proc-restricted", new Dictionary<string, string>
            {
                ["Nats:User"] = "processor",
                ["Nats:Password"] = NatsServerProcess.PasswordOf("processor"),
                ["Processor:Models:0"] = "mlp-test",
            });
        }
        catch
        {
            // xunit does not dispose a fixture whose start failed: stop the server it started.
            await Nats.DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        await Processor.DisposeAsync();
        Client.Dispose();
        await Projections.DisposeAsync();
        await Api.DisposeAsync();
        await Nats.DisposeAsync();
    }

    public async Task<NatsClient> ConnectAsAsync(string user)
    {
        var client = new NatsClient(new NatsOpts
        {
            Url = Nats.Url,
            AuthOpts = NatsAuthOpts.Default with { Username = user, Password = NatsServerProcess.PasswordOf(user) },
            RequestTimeout = TimeSpan.FromSeconds(2),
        });
        await client.ConnectAsync();
        return client;
    }

    private static Dictionary<string, string?> User(string user) => new()
    {
        ["Nats:User"] = user,
        ["Nats:Password"] = NatsServerProcess.PasswordOf(user),
    };
}

public sealed class NatsPermissionTests(PerRoleUsersFixture pipeline) : IClassFixture<PerRoleUsersFixture>
{
    [Fact]
    public async Task The_pipeline_runs_with_a_least_privilege_user_per_role()
    {
        var job = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        var done = await pipeline.Client.WaitForStatusAsync(job.Id, "succeeded");

        done.GetProperty("worker").GetString().ShouldBe("proc-restricted");
    }

    [Theory]
    [InlineData("processor")]
    [InlineData("projections")]
    public async Task Only_the_api_may_put_jobs_on_the_queues(string user)
    {
        await using var client = await pipeline.ConnectAsAsync(user);
        var js = client.CreateJetStreamContext();
        var before = await JobMessages.CountAsync(js, NatsTopology.EventsStream);

        await Should.ThrowAsync<Exception>(async () =>
            await js.PublishAsync("jobs.local.mlp-test", Encoding.UTF8.GetBytes("{}"), opts: new NatsJSPubOpts { MsgId = Guid.NewGuid().ToString() }));

        (await JobMessages.CountAsync(js, NatsTopology.EventsStream)).ShouldBe(before);
    }

    [Fact]
    public async Task The_api_user_cannot_take_jobs_from_the_queues()
    {
        // No processor serves ppocr-rec here, so this job waits in its queue.
        var waiting = await pipeline.Client.SubmitAsync(RealModelTests.OcrJob([1, 2, 3]));
        waiting.Status.ShouldBe(HttpStatusCode.Accepted);
        await using var client = await pipeline.ConnectAsAsync("api");
        var js = client.CreateJetStreamContext();
        await Retry.Until("the job to wait in its queue", () => JobMessages.QueuedAsync(js, "ppocr-rec"), q => q.Waiting >= 1);
        var queue = (await new JobQueues(js, new TopologyOptions()).ListAsync("ppocr-rec", CancellationToken.None)).First(q => q.Waiting > 0).Queue;
        var consumer = await js.GetConsumerAsync(NatsTopology.JobsStream, queue.ConsumerName);

        var received = 0;
        try
        {
            await foreach (var _ in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 1, Expires = TimeSpan.FromSeconds(1) }))
            {
                received++;
            }
        }
        catch (Exception e) when (e is NatsException or TimeoutException or OperationCanceledException)
        {
        }

        received.ShouldBe(0);
        var after = (await js.GetConsumerAsync(NatsTopology.JobsStream, queue.ConsumerName)).Info;
        after.NumAckPending.ShouldBe(0);
        after.NumPending.ShouldBeGreaterThanOrEqualTo(1UL);
    }

    [Fact]
    public async Task A_wrong_password_is_refused()
    {
        await Should.ThrowAsync<Exception>(async () =>
        {
            await using var client = new NatsClient(new NatsOpts
            {
                Url = pipeline.Nats.Url,
                AuthOpts = NatsAuthOpts.Default with { Username = "api", Password = "not-it" },
                MaxReconnectRetry = 0,
            });
            await client.ConnectAsync();
        });
    }
}
