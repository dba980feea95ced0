using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Commands.Batches;
using NATS.Net;

namespace CqrsInference.Bench;

/// <summary>
/// The same N jobs submitted one per request (32 concurrent) and as one batch (<c>POST /v1/batches</c>,
/// one JSONL file), in one run, every role in one process: jobs/s accepted (the 202s back: every job
/// durable in its queue) and submitted → succeeded (every job's ending on the log).
/// </summary>
internal static class BatchBench
{
    public static async Task<int> RunAsync(BenchSettings settings, int jobs)
    {
        // The default tenant rate (2,000 jobs/s, burst 4,000) would be what is measured: lifted.
        await using var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving mlp-test", new Dictionary<string, string>
        {
            ["Processor__Models__0"] = "mlp-test",
            ["Api__RateLimit__PermitsPerSecond"] = "1000000",
            ["Api__RateLimit__Burst"] = "1000000",
        });
        using var http = settings.CreateClient();
        http.Timeout = TimeSpan.FromMinutes(5);
        await using var nats = new NatsClient(settings.NatsUrl);
        var watcher = new CompletionWatcher(nats, "log.*.events.*.mlp-test.*");
        await watcher.StartAsync();

        await SingleAsync(http, watcher, "warm-up, single", Math.Min(jobs, 1000));
        await BatchAsync(http, watcher, "warm-up, batch", Math.Min(jobs, 1000));
        var single = await SingleAsync(http, watcher, "single", jobs);
        var batch = await BatchAsync(http, watcher, "batch", jobs);

        Console.WriteLine();
        Console.WriteLine("| submit | jobs | accepted jobs/s | submitted → succeeded jobs/s |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| one job per request (POST /v1/jobs), 32 concurrent | {jobs} | {single.Accepted:F0} | {single.Succeeded:F0} |");
        Console.WriteLine($"| one batch (POST /v1/batches, JSONL) | {jobs} | {batch.Accepted:F0} | {batch.Succeeded:F0} |");
        Console.WriteLine($"| batch / single | | {batch.Accepted / single.Accepted:F2} | {batch.Succeeded / single.Succeeded:F2} |");
        return 0;
    }

    private static async Task<(double Accepted, double Succeeded)> SingleAsync(HttpClient http, CompletionWatcher watcher, string kind, int jobs)
    {
        var ids = new Guid[jobs];
        var next = -1;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 32).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < jobs)
            {
                ids[i] = await Measures.SubmitAsync(http, Measures.MlpBody(i));
            }
        }));
        return await FinishAsync(watcher, kind, ids, watch);
    }

    private static async Task<(double Accepted, double Succeeded)> BatchAsync(HttpClient http, CompletionWatcher watcher, string kind, int jobs)
    {
        var file = new StringBuilder();
        for (var i = 0; i < jobs; i++)
        {
            file.Append(Measures.MlpBody(i)[..^1]).Append(",\"customId\":\"").Append(i).Append("\"}\n");
        }

        var watch = Stopwatch.StartNew();
        using var content = new StringContent(file.ToString(), Encoding.UTF8);
        content.Headers.ContentType = new("application/jsonl");
        using var response = await http.PostAsync("/v1/batches", content);
        response.EnsureSuccessStatusCode();
        var batchId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("batch").GetProperty("id").GetGuid();
        return await FinishAsync(watcher, kind, Enumerable.Range(1, jobs).Select(line => BatchJobs.JobId(batchId, line)).ToArray(), watch);
    }

    private static async Task<(double, double)> FinishAsync(CompletionWatcher watcher, string kind, Guid[] ids, Stopwatch watch)
    {
        var acceptedIn = watch.Elapsed;
        await watcher.WaitForAsync(ids, TimeSpan.FromMinutes(5));
        var succeededIn = watch.Elapsed;
        var row = (ids.Length / acceptedIn.TotalSeconds, ids.Length / succeededIn.TotalSeconds);
        Console.WriteLine($"{kind}: {ids.Length} jobs accepted at {row.Item1:F0} jobs/s, succeeded at {row.Item2:F0} jobs/s");
        return row;
    }
}
