using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections;
using CqrsInference.Projections.Analytics;
using Marten;
using Npgsql;

namespace CqrsInference.Bench;

/// <summary>
/// Bulk-loads a week of synthetic jobs (3 events each: submitted, started, succeeded) and processor
/// heartbeats straight into the event store, then measures how fast the async daemon catches the
/// usage and utilization roll-ups up, and how fast the analytics endpoints answer over the result.
/// </summary>
internal static class AnalyticsBench
{
    public static async Task<int> RunAsync(BenchSettings settings, int events)
    {
        var jobs = events / 3;
        string[] models = ["mlp-test", "ppocr-rec", "silero-vad"];
        string[] regions = ["eu", "us"];
        string[] tenants = ["acme", "globex", "initech", "umbrella", "hooli"];
        string[] devices = ["cpu", "h100"];
        var start = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var random = new Random(42);

        using var store = DocumentStore.For(o => o.Configure(settings.Postgres, settings.Schema));
        await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        Console.WriteLine($"bulk load: {jobs:N0} jobs × 3 events + heartbeats into schema {settings.Schema}");
        var load = Stopwatch.StartNew();
        const int perSession = 1000;
        for (var done = 0; done < jobs; done += perSession)
        {
            await using var session = store.LightweightSession();
            for (var i = done; i < Math.Min(jobs, done + perSession); i++)
            {
                var id = Guid.NewGuid();
                var at = start.AddSeconds(random.Next(0, 7 * 24 * 3600));
                var context = new JobContext(tenants[i % tenants.Length], models[i % models.Length], regions[i % regions.Length], devices[i % devices.Length]);
                var wait = random.Next(1, 2000);
                var run = random.Next(5, 500);
                var batch = random.Next(1, 9);
                session.Events.StartStream<Projections.JobStatus.JobStatus>(id,
                    new V1.JobSubmitted(id, context.Tenant, context.Model, "1", context.Region, "batch", at, "digest", 100, null),
                    new V1.JobStarted(id, 1, $"gpu-{i % 8}", context.DeviceClass, at.AddMilliseconds(wait), wait, context),
                    new V1.JobSucceeded(id, 1, $"gpu-{i % 8}", context.DeviceClass, at.AddMilliseconds(wait + run), run, batch, [], null, context));
            }

            await session.SaveChangesAsync();
            if ((done / perSession) % 50 == 0)
            {
                Console.WriteLine($"  {done + perSession:N0} jobs, {(done + perSession) * 3 / load.Elapsed.TotalSeconds:N0} events/s");
            }
        }

        await using (var session = store.LightweightSession())
        {
            for (var worker = 0; worker < 8; worker++)
            {
                var beats = Enumerable.Range(0, 7 * 24 * 6).Select(t => (object)new V1.ProcessorHeartbeat(
                    $"gpu-{worker}", regions[worker % 2], devices[worker % 2], 4, start.AddMinutes(10 * (t + 1)), 600, random.Next(0, 2400))).ToArray();
                session.Events.Append(EventNames.ProcessorStreamId($"gpu-{worker}"), beats);
            }

            await session.SaveChangesAsync();
        }

        var total = (await store.Advanced.FetchEventStoreStatistics()).EventSequenceNumber;
        Console.WriteLine($"loaded {total:N0} events in {load.Elapsed.TotalSeconds:F1} s ({total / load.Elapsed.TotalSeconds:N0} events/s, inline job status included)");
        await using (var connection = new NpgsqlConnection(settings.Postgres))
        {
            await connection.OpenAsync();
            await using var analyze = new NpgsqlCommand("analyze", connection);
            await analyze.ExecuteNonQueryAsync();
        }

        var catchUp = Stopwatch.StartNew();
        using (var daemon = await store.BuildProjectionDaemonAsync())
        {
            await daemon.StartAllAsync();
            await daemon.WaitForNonStaleData(TimeSpan.FromMinutes(20));
            await daemon.StopAllAsync();
        }

        catchUp.Stop();
        Console.WriteLine($"async catch-up (usage + utilization roll-ups): {total:N0} events in {catchUp.Elapsed.TotalSeconds:F1} s = {total / catchUp.Elapsed.TotalSeconds:N0} events/s");

        await using var app = await AppProcess.StartAsync(settings, "api", "ready", new Dictionary<string, string>());
        using var http = settings.CreateClient();
        var week = $"from=2026-11-01T00:00:00Z&to=2026-11-08T00:00:00Z";
        (string Name, string Path)[] queries =
        [
            ("usage by model, hourly, 7 days", $"/v1/analytics/usage?{week}&groupBy=model"),
            ("usage by model,region,tenant,device, hourly, 7 days", $"/v1/analytics/usage?{week}&groupBy=model,region,tenant,device"),
            ("usage by tenant, daily, 7 days", $"/v1/analytics/usage?{week}&groupBy=tenant&bucket=day"),
            ("utilization by worker, hourly, 7 days", $"/v1/analytics/utilization?{week}&groupBy=worker"),
        ];
        Console.WriteLine();
        Console.WriteLine("| query (admin key: all tenants) | rows | p50 | p99 |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, path) in queries)
        {
            var times = new List<double>();
            var rows = 0;
            for (var i = 0; i < 25; i++)
            {
                var watch = Stopwatch.StartNew();
                var body = await http.GetStringAsync(path);
                times.Add(watch.Elapsed.TotalMilliseconds);
                rows = System.Text.Json.JsonDocument.Parse(body).RootElement.GetArrayLength();
            }

            Console.WriteLine($"| {name} | {rows:N0} | {Measures.Percentile(times, 50):F1} ms | {Measures.Percentile(times, 99):F1} ms |");
        }

        return 0;
    }
}
