using CqrsInference.Messaging;
using CqrsInference.Projections.Recording.JobLog;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace CqrsInference.Tests.Recording;

/// <summary>
/// Messages that leave the event log by age before a partition's recorder read that far: reported
/// as never recorded only when the recorder cannot know they were not its own. A partition idle
/// while the others went on marks how far it saw the stream (<c>SeenUpTo</c>), so the other
/// partitions' messages leaving the stream are no alarm for it.
/// </summary>
public sealed class RecorderSeenTests : IAsyncLifetime
{
    private const int Partitions = 2;
    private readonly string _schema = TestEnvironment.NewSchema();
    private NatsServerProcess _nats = null!;

    public async Task InitializeAsync() => _nats = await NatsServerProcess.StartAsync();

    public async Task DisposeAsync() => await _nats.DisposeAsync();

    [Fact]
    public async Task An_idle_partition_does_not_report_the_other_partitions_expired_messages_as_its_loss_but_reports_its_own()
    {
        // One job, in one partition: the other partition's recorder sees the stream go on without it.
        int busy;
        await using (var host = Host(new LogCapture()))
        {
            using var client = host.CreateClient();
            client.DefaultRequestHeaders.Authorization = new("Bearer", TestEnvironment.OperatorKey);
            var job = await client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
            busy = LogSubjects.PartitionOf(job.Id.ToString("N"), Partitions);
            var last = await LastSequenceAsync();
            var recorders = host.Services.GetRequiredService<Recorders>();
            await Retry.Until("the job recorded and the idle partition to have seen the stream", () => Task.FromResult(recorders.Partitions),
                p => p[busy].Position >= last && p[1 - busy].SeenUpTo >= last);
        }

        // Everything leaves the stream (as by its maximum age) while nothing runs.
        await PurgeAsync();
        var quiet = new LogCapture();
        await using (var host = Host(quiet))
        {
            var recorders = host.Services.GetRequiredService<Recorders>();
            var last = await LastSequenceAsync();
            await Retry.Until("both recorders to have started and seen the stream", () => Task.FromResult(recorders.Partitions), p => p.All(r => r.SeenUpTo >= last));
            Expired(quiet).ShouldBeEmpty("nothing of either partition was lost");
        }

        // A message of the idle partition's own that nobody recorded leaves the stream: that is loss.
        ulong lost;
        await using (var client = new NatsClient(_nats.Url))
        {
            var ack = await client.CreateJetStreamContext().PublishAsync($"log.{1 - busy}.events.local.mlp-test.{Guid.NewGuid():N}", "never recorded"u8.ToArray());
            ack.EnsureSuccess();
            lost = ack.Seq;
        }

        await PurgeAsync();
        var loud = new LogCapture();
        await using (var host = Host(loud))
        {
            _ = host.Services;
            var reported = await Retry.Until($"recorder_{1 - busy} to report sequence {lost} lost", () => Task.FromResult(string.Join(" | ", Expired(loud))),
                e => e.Contains($"recorder_{1 - busy} ", StringComparison.Ordinal));
            Expired(loud).ShouldContain(line => line.Contains($"messages {lost} to {lost} ", StringComparison.Ordinal) && line.Contains($"recorder_{1 - busy} ", StringComparison.Ordinal), reported);
        }
    }

    private WebApplicationFactory<Program> Host(LogCapture logs) =>
        new PipelineHost(_nats.Url, _schema, "api,projections", new Dictionary<string, string?> { ["Topology:Partitions"] = Partitions.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            .WithWebHostBuilder(b => b.ConfigureLogging(l => l.AddProvider(logs)));

    private async Task<ulong> LastSequenceAsync()
    {
        await using var client = new NatsClient(_nats.Url);
        return (await client.CreateJetStreamContext().GetStreamAsync(NatsTopology.EventsStream)).Info.State.LastSeq;
    }

    private async Task PurgeAsync()
    {
        await using var client = new NatsClient(_nats.Url);
        await client.CreateJetStreamContext().PurgeStreamAsync(NatsTopology.EventsStream, new StreamPurgeRequest());
    }

    /// <summary>The recorders' reports of messages that left the stream unrecorded.</summary>
    private static IEnumerable<string> Expired(LogCapture logs) =>
        logs.Entries.Where(e => e.Level >= LogLevel.Error && e.Message.Contains("left the stream", StringComparison.Ordinal)).Select(e => e.Message);
}
