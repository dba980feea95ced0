using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections;
using JasperFx.Events;
using Marten;
using NATS.Client.JetStream;
using NATS.Net;
using Npgsql;

namespace CqrsInference.Bench;

/// <summary>
/// The recorder alone: pre-fills the event log on NATS with finished jobs (a submission and a
/// success each, as the pipeline publishes them), then starts the recorders (role projections, one
/// per partition) on an empty store and times the recording; next to it, in the same run, a raw
/// Marten bulk append of the same events (one stream per job, quick append mode, batches of the
/// recorder's size, one writer, no projections) before and after, into schemas of their own.
/// </summary>
internal static class RecorderBench
{
    private const int EventsPerJob = 2;

    public static async Task<int> RunAsync(BenchSettings settings, int events)
    {
        var jobs = events / EventsPerJob;
        var partitions = int.Parse(Environment.GetEnvironmentVariable("Topology__Partitions") ?? "2", CultureInfo.InvariantCulture);
        var history = Jobs(jobs);

        var rawBefore = await RawAppendAsync(settings, history, "before");
        await using (var nats = new NatsClient(settings.NatsUrl))
        {
            var js = nats.CreateJetStreamContext();
            await new NatsTopology(js, new TopologyOptions { Partitions = partitions }).EnsureAsync(CancellationToken.None);
            await PrefillAsync(js, history);
        }

        var recorded = await RecordAsync(settings, jobs * EventsPerJob);
        var rawAfter = await RawAppendAsync(settings, history, "after");

        var raw = (rawBefore + rawAfter) / 2;
        Console.WriteLine();
        Console.WriteLine("| writer | events | events/s |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine($"| raw Marten bulk append (quick mode, 1 writer), before | {jobs * EventsPerJob:N0} | {rawBefore:N0} |");
        Console.WriteLine($"| the recorders ({partitions} partitions): NATS log → events, streams, job status, checkpoints | {jobs * EventsPerJob:N0} | {recorded:N0} |");
        Console.WriteLine($"| raw Marten bulk append (quick mode, 1 writer), after | {jobs * EventsPerJob:N0} | {rawAfter:N0} |");
        Console.WriteLine();
        Console.WriteLine($"| recorder / raw Marten (mean of before and after) | {recorded / raw:F2} |");
        Console.WriteLine("|---|---|");
        return 0;
    }

    private sealed record FinishedJob(JobCommand Submission, V1.JobSucceeded Success);

    private static List<FinishedJob> Jobs(int count)
    {
        var start = DateTimeOffset.UtcNow;
        var x = new Tensor("x", "FP32", [1, 4], JsonSerializer.SerializeToElement(new[] { 1f, 2, 3, 4 }));
        var y = new Tensor("y", "FP32", [1, 3], JsonSerializer.SerializeToElement(new[] { 0.5f, 0.25f, 0.125f }));
        var context = new JobContext("bench", "mlp-test", "local", "cpu");
        return Enumerable.Range(0, count).Select(i =>
        {
            var id = Guid.CreateVersion7(start.AddMilliseconds(i));
            var submitted = start.AddMilliseconds(i);
            return new FinishedJob(
                new JobCommand(id, "bench", "mlp-test", "1", "local", "interactive", submitted, "digest", [x], null),
                new V1.JobSucceeded(id, 1, "bench-worker", "cpu", submitted.AddMilliseconds(3), 0.2, 1, [y], null, context,
                    new JobStart(submitted.AddMilliseconds(2), 2, "local", false)));
        }).ToList();
    }

    /// <summary>Publishes every job's submission and success through the pipeline's own publishers, pipelined.</summary>
    private static async Task PrefillAsync(INatsJSContext js, List<FinishedJob> history)
    {
        var watch = Stopwatch.StartNew();
        var queue = new NatsJobQueue(js, new JobQueues(js, new TopologyOptions()));
        var log = new NatsEventLog(js);
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < history.Count)
            {
                await queue.PublishAsync(history[i].Submission, CancellationToken.None);
            }
        }));
        next = -1;
        await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < history.Count)
            {
                await log.AppendAsync(JobRoute.Of(history[i].Submission), history[i].Success, null, CancellationToken.None);
            }
        }));
        Console.WriteLine($"pre-filled the log: {history.Count:N0} jobs, {history.Count * EventsPerJob:N0} events in {watch.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>Starts the recorders on an empty store and times them from their first recorded event to the last.</summary>
    private static async Task<double> RecordAsync(BenchSettings settings, long expected)
    {
        await using var app = await AppProcess.StartAsync(settings, "projections", "Recording", new Dictionary<string, string>());
        await using var db = NpgsqlDataSource.Create(settings.Postgres);
        long first = 0;
        var firstAt = TimeSpan.Zero;
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var highest = await HighestSequenceAsync(db, settings.Schema);
            if (first == 0 && highest > 0)
            {
                (first, firstAt) = (highest, watch.Elapsed);
            }

            if (highest >= expected)
            {
                var rate = (highest - first) / (watch.Elapsed - firstAt).TotalSeconds;
                Console.WriteLine($"recorders: {highest:N0} events recorded, {rate:N0} events/s from the first batch to the last");
                await app.StopAsync();
                return rate;
            }

            if (watch.Elapsed > TimeSpan.FromMinutes(10))
            {
                throw new TimeoutException($"The recorders recorded {highest} of {expected} events in 10 minutes:\n{app.Output}");
            }

            await Task.Delay(20);
        }
    }

    private static async Task<long> HighestSequenceAsync(NpgsqlDataSource db, string schema)
    {
        await using var command = db.CreateCommand($"select case when is_called then last_value else 0 end from {schema}.mt_events_sequence");
        try
        {
            return (long)(await command.ExecuteScalarAsync())!;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0;
        }
    }

    /// <summary>Marten's own bulk append of the same events: one stream per job, 500 jobs (1,000 events) per transaction.</summary>
    private static async Task<double> RawAppendAsync(BenchSettings settings, List<FinishedJob> history, string label)
    {
        using var store = DocumentStore.For(o =>
        {
            o.Configure(settings.Postgres, $"{settings.Schema}_raw_{label}");
            o.Events.AppendMode = EventAppendMode.Quick;
        });
        await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        var watch = Stopwatch.StartNew();
        foreach (var chunk in history.Chunk(500))
        {
            await using var session = store.LightweightSession();
            foreach (var job in chunk)
            {
                session.Events.StartStream(job.Submission.JobId, job.Submission.ToSubmitted(100), job.Success);
            }

            await session.SaveChangesAsync();
        }

        var rate = history.Count * EventsPerJob / watch.Elapsed.TotalSeconds;
        Console.WriteLine($"raw Marten bulk append ({label}): {rate:N0} events/s");
        return rate;
    }
}
