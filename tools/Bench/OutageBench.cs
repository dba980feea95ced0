using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace CqrsInference.Bench;

/// <summary>
/// Steady open-loop load (every role in one process, as ./run.sh runs it) through an operator's bad
/// minute: PostgreSQL stopped for a while, then nats-server restarted. Clients behave as the API
/// asks: each job has an Idempotency-Key and a refused or failed submit is sent again every second
/// until it is accepted. Reports jobs accepted, completed, lost (accepted, never ended) and
/// duplicated (more than one submission or ending recorded), the longest time without an accepted
/// submit, the longest time each role could not work (<see cref="OutageRoles"/>) and every 5xx by
/// endpoint (503 apart from the rest).
/// </summary>
internal static class OutageBench
{
    public static async Task<int> RunAsync(BenchSettings settings, int seconds, int rate, int postgresDown, int natsDown)
    {
        using var roles = new OutageRoles();
        await using var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving mlp-test",
            new Dictionary<string, string>(roles.Settings) { ["Processor__Models__0"] = "mlp-test" });
        using var http = settings.CreateClient();
        http.Timeout = TimeSpan.FromSeconds(30);
        var servers = new Servers();
        var statuses = new ConcurrentDictionary<string, int>();
        var acceptedAt = new ConcurrentBag<long>();
        var start = Stopwatch.GetTimestamp();
        Console.WriteLine($"outage: {rate} jobs/s for {seconds} s; PostgreSQL stopped at {seconds / 6} s for {postgresDown} s, nats-server at {seconds * 2 / 3} s for {natsDown} s");
        var faults = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(seconds / 6));
            await servers.StopPostgresAsync();
            await Task.Delay(TimeSpan.FromSeconds(postgresDown));
            await servers.StartPostgresAsync();
            await Task.Delay(TimeSpan.FromSeconds(seconds * 2 / 3) - Stopwatch.GetElapsedTime(start));
            await servers.StopNatsAsync();
            await Task.Delay(TimeSpan.FromSeconds(natsDown));
            await servers.StartNatsAsync();
        });

        var sends = new List<Task<Guid?>>();
        for (var i = 0; i < rate * seconds; i++)
        {
            var due = TimeSpan.FromSeconds((double)i / rate) - Stopwatch.GetElapsedTime(start);
            if (due > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(due);
            }

            var index = i;
            sends.Add(Task.Run(() => SubmitUntilAcceptedAsync(http, roles.Body(index), index, statuses, acceptedAt, TimeSpan.FromSeconds(seconds + 60))));
        }

        await faults;
        var accepted = (await Task.WhenAll(sends)).Select((id, index) => (id, index)).Where(j => j.id is not null).Select(j => (j.id!.Value, j.index)).ToList();
        var (completed, lost, duplicated) = await CheckAsync(http, accepted, roles, statuses);
        Report(rate * seconds, accepted.Count, completed, lost, duplicated, LongestGap(acceptedAt, start), await roles.ReportAsync(http), statuses);
        return lost == 0 && duplicated == 0 ? 0 : 1;
    }

    private static async Task<Guid?> SubmitUntilAcceptedAsync(HttpClient http, string body, int index, ConcurrentDictionary<string, int> statuses, ConcurrentBag<long> acceptedAt, TimeSpan giveUpAfter)
    {
        var until = Stopwatch.GetTimestamp() + (long)(giveUpAfter.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
                request.Headers.Add("Idempotency-Key", $"outage-bench-{index}");
                using var response = await http.SendAsync(request);
                Count(statuses, "POST /v1/jobs", response.StatusCode);
                if (response.StatusCode == HttpStatusCode.Accepted)
                {
                    acceptedAt.Add(Stopwatch.GetTimestamp());
                    return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                statuses.AddOrUpdate("POST /v1/jobs: no answer", 1, (_, n) => n + 1);
            }

            await Task.Delay(TimeSpan.FromSeconds(1));
        }

        return null;
    }

    /// <summary>Waits for every accepted job to end, then counts what its history holds.</summary>
    private static async Task<(int Completed, int Lost, int Duplicated)> CheckAsync(
        HttpClient http, List<(Guid Id, int Index)> accepted, OutageRoles roles, ConcurrentDictionary<string, int> statuses)
    {
        int completed = 0, lost = 0, duplicated = 0;
        var deadline = Stopwatch.GetTimestamp() + (long)(180 * Stopwatch.Frequency);
        foreach (var (id, index) in accepted)
        {
            JsonElement[] events = [];
            while (Stopwatch.GetTimestamp() < deadline)
            {
                using var response = await http.GetAsync($"/v1/jobs/{id}/events");
                Count(statuses, "GET /v1/jobs/{id}/events", response.StatusCode);
                events = response.IsSuccessStatusCode ? [.. (await response.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray()] : [];
                if (events.Any(e => e.GetProperty("type").GetString() is "v1.job_succeeded" or "v1.job_failed"))
                {
                    break;
                }

                await Task.Delay(200);
            }

            roles.Observe(index, events);
            var submissions = events.Count(e => e.GetProperty("type").GetString() == "v1.job_submitted");
            var endings = events.Count(e => e.GetProperty("type").GetString() is "v1.job_succeeded" or "v1.job_failed");
            completed += endings > 0 ? 1 : 0;
            lost += endings == 0 ? 1 : 0;
            duplicated += submissions > 1 || endings > 1 ? 1 : 0;
        }

        return (completed, lost, duplicated);
    }

    private static double LongestGap(IEnumerable<long> acceptedAt, long start)
    {
        var times = acceptedAt.Order().ToList();
        var gaps = times.Zip(times.Skip(1), (a, b) => (b - a) / (double)Stopwatch.Frequency);
        return Math.Max(times.Count > 0 ? (times[0] - start) / (double)Stopwatch.Frequency : 0, gaps.DefaultIfEmpty(0).Max());
    }

    private static void Count(ConcurrentDictionary<string, int> statuses, string endpoint, HttpStatusCode status)
    {
        if ((int)status >= 500)
        {
            statuses.AddOrUpdate($"{endpoint} {(int)status}", 1, (_, n) => n + 1);
        }
    }

    private static void Report(
        int jobs, int accepted, int completed, int lost, int duplicated, double longestGap, List<(string What, string Value)> roles, ConcurrentDictionary<string, int> statuses)
    {
        Console.WriteLine();
        Console.WriteLine("| metric | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| jobs sent (each retried until accepted) | {jobs} |");
        Console.WriteLine($"| accepted | {accepted} |");
        Console.WriteLine($"| completed | {completed} |");
        Console.WriteLine($"| lost (accepted, never ended) | {lost} |");
        Console.WriteLine($"| duplicated (submission or ending recorded twice) | {duplicated} |");
        Console.WriteLine($"| longest time without an accepted submit (API) | {longestGap:F1} s |");
        foreach (var (what, value) in roles)
        {
            Console.WriteLine($"| {what} | {value} |");
        }

        foreach (var (what, count) in statuses.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            Console.WriteLine($"| {what} | {count} |");
        }

        if (statuses.IsEmpty)
        {
            Console.WriteLine("| 5xx answers | 0 |");
        }
    }

    /// <summary>The bench's own servers, stopped and started with the scripts' functions (scripts/lib.sh).</summary>
    private sealed class Servers
    {
        private static readonly string Dir = Environment.GetEnvironmentVariable("BENCH_DIR")!;

        public Task StopPostgresAsync() => LibAsync($"cqrsi_stop_postgres '{Dir}/pg'");

        public Task StartPostgresAsync() => LibAsync($"cqrsi_start_postgres '{Dir}/pg' {Environment.GetEnvironmentVariable("BENCH_PG_PORT")}");

        public Task StopNatsAsync() => LibAsync($"cqrsi_stop_nats '{Dir}/nats'");

        public Task StartNatsAsync() => LibAsync(
            $"CQRSI_NATS_EXTRA_CONF=\"$BENCH_CORE_NATS_EXTRA\" cqrsi_start_nats '{Dir}/nats' {Environment.GetEnvironmentVariable("BENCH_NATS_PORT")} {Environment.GetEnvironmentVariable("BENCH_NATS_MONITOR_PORT")}");

        private static async Task LibAsync(string command)
        {
            Console.WriteLine($"  {DateTime.UtcNow:HH:mm:ss} {command.Split(' ').First(w => w.StartsWith("cqrsi_", StringComparison.Ordinal))}");
            var info = new ProcessStartInfo("bash", ["-c", $"source scripts/lib.sh && {command}"]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"'{command}' failed: {await output} {await errors}");
            }
        }
    }
}
