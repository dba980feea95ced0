using System.Net;
using CqrsInference.Commands.Messaging;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Pipeline;

public sealed class ScaleToZeroTests(NoProcessorFixture pipeline) : IClassFixture<NoProcessorFixture>
{
    [Fact]
    public async Task Job_submitted_while_no_processor_runs_stays_queued_and_succeeds_once_one_starts()
    {
        var client = pipeline.Client;
        var job = await client.SubmitAsync(Scenarios.MlpJob([4, 3, 2, 1]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        // Visible at once: the 202 came after the submission was recorded (or queued for recording).
        (await client.GetJobAsync(job.Id)).GetProperty("status").GetString().ShouldBe("queued");
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var consumer = await js.GetConsumerAsync(NatsTopology.JobsStream, NatsTopology.ProcessorConsumer("mlp-test"));
            await Retry.Until("the job to wait in the work queue", async () => (await js.GetConsumerAsync(NatsTopology.JobsStream, NatsTopology.ProcessorConsumer("mlp-test"))).Info.NumPending, n => n == 1);
            consumer.Info.NumAckPending.ShouldBe(0);
        }

        await using var processor = new PipelineHost(pipeline.Nats.Url, pipeline.Host.Schema, "processor");
        _ = processor.Server;

        var done = await client.WaitForStatusAsync(job.Id, "succeeded");
        done.GetProperty("queueWaitMs").GetDouble().ShouldBeGreaterThan(0);
    }
}
