using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Projections;
using Marten;
using Npgsql;

namespace CqrsInference.Bench;

/// <summary>
/// Does what the system does per request and periodically cost the same whatever the history
/// (issue 16)? The whole application (api, processor, projections) with an empty store: one job
/// run, then /health, /metrics and GET /v1/jobs/{id} timed; stopped; the store filled with
/// <c>events</c> events of finished jobs (binary COPY); started again and left until the roll-ups
/// and the sealer have caught up; the same calls timed again, and the ratios printed.
/// </summary>
internal static class HistoryBench
{
    private const int WarmUp = 100;
    private const int Measured = 1000;

    public static async Task<int> RunAsync(BenchSettings settings, int events)
    {
        var roles = new Dictionary<string, string> { ["Processor__Models__0"] = "mlp-test" };
        Guid job;
        Dictionary<string, List<double>> empty;
        await using (var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving mlp-test", roles))
        {
            using var http = settings.CreateClient();
            job = await Measures.SubmitAsync(http, Measures.MlpBody(1));
            await UntilAsync("the job to succeed", async () => (await http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job}")).GetProperty("status").GetString() == "succeeded");
            await SettledAsync(settings, http);
            Console.WriteLine($"empty store: timing {Measured} calls of each endpoint");
            empty = await MeasureAsync(http, job);
            await app.StopAsync();
        }

        var load = Stopwatch.StartNew();
        Console.WriteLine($"loading {events:N0} events ({events / 3:N0} finished jobs) into schema {settings.Schema}");
        using (var store = DocumentStore.For(o => o.Configure(settings.Postgres, settings.Schema)))
        {
            await HistoryLoader.LoadAsync(settings, store, events);
        }

        Console.WriteLine($"  loaded in {load.Elapsed.TotalSeconds:F1} s");
        await using (var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving mlp-test", roles))
        {
            using var http = settings.CreateClient();
            var settle = Stopwatch.StartNew();
            await SettledAsync(settings, http);
            Console.WriteLine($"  roll-ups caught up and every event sealed {settle.Elapsed.TotalSeconds:F1} s after start");
            Console.WriteLine($"{events:N0} events: timing {Measured} calls of each endpoint");
            Print(empty, await MeasureAsync(http, job), await HighestAsync(settings));
            await app.StopAsync();
        }

        return 0;
    }

    /// <summary>Sequential calls, after a warm-up, of each endpoint in turn.</summary>
    private static async Task<Dictionary<string, List<double>>> MeasureAsync(HttpClient http, Guid job)
    {
        var times = new Dictionary<string, List<double>>();
        foreach (var path in new[] { "/health", "/metrics", $"/v1/jobs/{job}" })
        {
            var name = path.StartsWith("/v1/jobs/", StringComparison.Ordinal) ? "GET /v1/jobs/{id}" : path;
            times[name] = [];
            for (var i = 0; i < WarmUp + Measured; i++)
            {
                var watch = Stopwatch.StartNew();
                using var response = await http.GetAsync(path);
                await response.Content.ReadAsByteArrayAsync();
                response.EnsureSuccessStatusCode();
                if (i >= WarmUp)
                {
                    times[name].Add(watch.Elapsed.TotalMilliseconds);
                }
            }
        }

        return times;
    }

    private static void Print(Dictionary<string, List<double>> empty, Dictionary<string, List<double>> full, long events)
    {
        Console.WriteLine();
        Console.WriteLine($"| call | empty store p50 / p99 | {events:N0} events p50 / p99 | ratio p50 / p99 |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, before) in empty)
        {
            var after = full[name];
            var (b50, b99, a50, a99) = (Measures.Percentile(before, 50), Measures.Percentile(before, 99), Measures.Percentile(after, 50), Measures.Percentile(after, 99));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {b50:F2} / {b99:F2} ms | {a50:F2} / {a99:F2} ms | {a50 / b50:F2} / {a99 / b99:F2} |"));
        }
    }

    /// <summary>The async roll-ups have caught up with the log and the sealer has sealed up to where the log stood.</summary>
    private static async Task SettledAsync(BenchSettings settings, HttpClient http)
    {
        var highest = await HighestAsync(settings);
        await UntilAsync("the roll-ups to catch up", async () =>
        {
            var lag = await http.GetFromJsonAsync<JsonElement>("/v1/analytics/lag");
            var shards = lag.GetProperty("projections").EnumerateArray().ToList();
            return shards.Count > 0 && shards.All(p => p.GetProperty("sequence").GetInt64() >= highest);
        });
        await UntilAsync("every event to be sealed", async () => await ScalarAsync(settings, $"select coalesce(max(seq_id), 0) from {settings.Schema}.cqrsi_audit_seal") >= highest);
    }

    private static Task<long> HighestAsync(BenchSettings settings) =>
        ScalarAsync(settings, $"select case when is_called then last_value else 0 end from {settings.Schema}.mt_events_sequence");

    private static async Task<long> ScalarAsync(BenchSettings settings, string sql)
    {
        await using var connection = new NpgsqlConnection(settings.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private static async Task UntilAsync(string what, Func<Task<bool>> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(10))
            {
                throw new TimeoutException($"Timed out waiting for {what}.");
            }

            await Task.Delay(250);
        }
    }
}
