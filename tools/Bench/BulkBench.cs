using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using NATS.Net;

namespace CqrsInference.Bench;

/// <summary>
/// The same jobs submitted one per request (32 concurrent) and in bulk requests (4 concurrent),
/// alternating twice in one run, every role in one process: jobs/s accepted (all 202s back: every
/// job durable in its queue) and submitted → succeeded.
/// </summary>
internal static class BulkBench
{
    public static async Task<int> RunAsync(BenchSettings settings, int jobs, int perRequest)
    {
        // The default tenant rate (2,000 jobs/s, burst 4,000) would be what is measured: lifted.
        await using var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving mlp-test", new Dictionary<string, string>
        {
            ["Processor__Models__0"] = "mlp-test",
            ["Api__RateLimit__PermitsPerSecond"] = "1000000",
            ["Api__RateLimit__Burst"] = "1000000",
        });
        using var http = settings.CreateClient();
        await using var nats = new NatsClient(settings.NatsUrl);
        var watcher = new CompletionWatcher(nats, "log.*.events.*.mlp-test.*");
        await watcher.StartAsync();

        await RunAsync(http, watcher, "warm-up, single", 2000, 1, 32);
        await RunAsync(http, watcher, "warm-up, bulk", 2000, perRequest, 4);
        var rows = new List<(string Kind, double Accepted, double Succeeded)>();
        for (var round = 1; round <= 2; round++)
        {
            rows.Add(await RunAsync(http, watcher, "single", jobs, 1, 32));
            rows.Add(await RunAsync(http, watcher, "bulk", jobs, perRequest, 4));
        }

        Console.WriteLine();
        Console.WriteLine($"| submit | jobs | accepted jobs/s (mean of 2) | submitted → succeeded jobs/s (mean of 2) |");
        Console.WriteLine("|---|---|---|---|");
        var single = (rows.Where(r => r.Kind == "single").Average(r => r.Accepted), rows.Where(r => r.Kind == "single").Average(r => r.Succeeded));
        var bulk = (rows.Where(r => r.Kind == "bulk").Average(r => r.Accepted), rows.Where(r => r.Kind == "bulk").Average(r => r.Succeeded));
        Console.WriteLine($"| one job per request, 32 concurrent | {jobs} | {single.Item1:F0} | {single.Item2:F0} |");
        Console.WriteLine($"| {perRequest} jobs per request, 4 concurrent | {jobs} | {bulk.Item1:F0} | {bulk.Item2:F0} |");
        Console.WriteLine($"| bulk / single | | {bulk.Item1 / single.Item1:F2} | {bulk.Item2 / single.Item2:F2} |");
        return 0;
    }

    private static async Task<(string, double, double)> RunAsync(HttpClient http, CompletionWatcher watcher, string kind, int jobs, int perRequest, int concurrency)
    {
        var ids = new Guid[jobs];
        var next = -1;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int first;
            while ((first = Interlocked.Add(ref next, perRequest) - perRequest + 1) < jobs)
            {
                var count = Math.Min(perRequest, jobs - first);
                if (perRequest == 1)
                {
                    ids[first] = await Measures.SubmitAsync(http, Measures.MlpBody(first));
                    continue;
                }

                var body = $$"""{"jobs":[{{string.Join(",", Enumerable.Range(first, count).Select(Measures.MlpBody))}}]}""";
                using var response = await http.PostAsync("/v1/jobs:bulk", new StringContent(body, Encoding.UTF8, "application/json"));
                response.EnsureSuccessStatusCode();
                var accepted = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("jobs");
                for (var i = 0; i < count; i++)
                {
                    ids[first + i] = accepted[i].GetProperty("id").GetGuid();
                }
            }
        }));
        var acceptedIn = watch.Elapsed;
        await watcher.WaitForAsync(ids, TimeSpan.FromMinutes(5));
        var succeededIn = watch.Elapsed;
        var row = (kind, jobs / acceptedIn.TotalSeconds, jobs / succeededIn.TotalSeconds);
        Console.WriteLine($"{kind}: {jobs} jobs accepted at {row.Item2:F0} jobs/s, succeeded at {row.Item3:F0} jobs/s");
        return row;
    }
}
