using CqrsInference.Messaging;
using CqrsInference.Tests.Infrastructure;
using NATS.Net;

namespace CqrsInference.Tests.Recording;

/// <summary>The server's subject mapping that partitions the log, as the scripts write it and as the roles check it.</summary>
public sealed class LogPartitionTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    public async Task The_scripts_write_the_same_mapping_as_the_application(int partitions)
    {
        var written = await ScriptLib.RunAsync($"cqrsi_nats_mappings {partitions}");

        Normalized(written).ShouldBe(Normalized(LogSubjects.ServerMappings(partitions)));
    }

    [Fact]
    public async Task A_jobs_submission_and_its_events_land_in_one_partition()
    {
        await using var server = await NatsServerProcess.StartWithConfigAsync((port, dir) => $$"""
            listen: "127.0.0.1:{{port}}"
            {{LogSubjects.ServerMappings(5)}}
            """);
        await using var client = new NatsClient(server.Url);
        await using var log = await client.Connection.SubscribeCoreAsync<byte[]>("log.>");
        var jobs = Enumerable.Range(0, 40).Select(_ => Guid.CreateVersion7()).ToList();
        foreach (var job in jobs)
        {
            await client.PublishAsync(LogSubjects.Job(new JobQueue("eu", "mlp-test", "interactive", "acme"), job));
            await client.PublishAsync(LogSubjects.JobEvent("eu", "mlp-test", job));
        }

        var partitionsByJob = new Dictionary<string, HashSet<string>>();
        for (var i = 0; i < 2 * jobs.Count; i++)
        {
            var msg = await log.Msgs.ReadAsync();
            var tokens = msg.Subject.Split('.');
            partitionsByJob.TryAdd(tokens[^1], []);
            partitionsByJob[tokens[^1]].Add(tokens[1]);
        }

        partitionsByJob.Count.ShouldBe(jobs.Count);
        partitionsByJob.Values.ShouldAllBe(p => p.Count == 1);
        partitionsByJob.Values.Select(p => p.Single()).Distinct().Count().ShouldBeGreaterThan(1, "40 jobs spread over 5 partitions");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(5)]
    public async Task A_queued_jobs_stored_subject_is_computed_as_the_server_maps_it(int partitions)
    {
        // The waiting position reads a job's own message by its exact subject (no partition wildcard).
        await using var server = await NatsServerProcess.StartWithConfigAsync((port, dir) => $$"""
            listen: "127.0.0.1:{{port}}"
            {{LogSubjects.ServerMappings(partitions)}}
            """);
        await using var client = new NatsClient(server.Url);
        await using var log = await client.Connection.SubscribeCoreAsync<byte[]>("log.>");
        var queue = new JobQueue("eu", "mlp-test", "batch", "acme");
        var jobs = Enumerable.Range(0, 100).Select(_ => Guid.NewGuid()).ToList();
        foreach (var job in jobs)
        {
            await client.PublishAsync(LogSubjects.Job(queue, job));
        }

        foreach (var job in jobs)
        {
            (await log.Msgs.ReadAsync()).Subject.ShouldBe(LogSubjects.StoredJob(queue, job, partitions));
        }
    }

    [Fact]
    public async Task A_server_without_the_mapping_is_refused_with_the_reason()
    {
        await using var server = await NatsServerProcess.StartWithConfigAsync((port, dir) => $"listen: \"127.0.0.1:{port}\"");
        await using var client = new NatsClient(server.Url);

        var refusal = await Should.ThrowAsync<InvalidOperationException>(() => PartitionProbe.VerifyAsync(client.Connection, 2, CancellationToken.None));

        refusal.Message.ShouldContain("maps no partitions");
    }

    [Fact]
    public async Task A_server_mapping_more_partitions_than_the_application_records_is_refused()
    {
        await using var server = await NatsServerProcess.StartWithConfigAsync((port, dir) => $$"""
            listen: "127.0.0.1:{{port}}"
            {{LogSubjects.ServerMappings(4)}}
            """);
        await using var client = new NatsClient(server.Url);

        var refusal = await Should.ThrowAsync<InvalidOperationException>(() => PartitionProbe.VerifyAsync(client.Connection, 2, CancellationToken.None));
        await PartitionProbe.VerifyAsync(client.Connection, 4, CancellationToken.None);

        refusal.Message.ShouldContain("Topology:Partitions is 2");
    }

    private static string Normalized(string config) => string.Join("\n", config.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));
}
