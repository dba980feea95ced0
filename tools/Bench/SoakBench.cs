using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using NATS.Net;
using Npgsql;

namespace CqrsInference.Bench;

/// <summary>
/// Open-loop load at a fixed rate for a fixed time (mlp-test, every role in one process, as
/// ./run.sh runs it), after a closed-loop warm-up, reported per 5-second window: jobs accepted,
/// submissions and results recorded (from the event store's own table), the read-model lag (the
/// newest result event on NATS until the API reads that job as succeeded), and submit and
/// end-to-end percentiles of the jobs sent in the window. With <c>interactive</c>, every job is a
/// synchronous interactive submit (<c>POST /v1/jobs?wait=10s</c>, <c>"mode":"interactive"</c>):
/// its "submit" latency is request → answer, and only an answer of 200 with the succeeded job counts.
/// With <c>unrecorded</c> the application runs without its projections role: nothing is recorded, so
/// the figures are those of the path alone (API, NATS, processor), for telling what the recording
/// costs the latencies from what the rest does; the recorded and lag columns are left empty.
/// </summary>
internal static class SoakBench
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(5);

    public static async Task<int> RunAsync(BenchSettings settings, int seconds, int rate, bool interactive, bool recording)
    {
        await using var app = await AppProcess.StartAsync(settings, recording ? "api,processor,projections" : "api,processor", "Serving mlp-test",
            new Dictionary<string, string> { ["Processor__Models__0"] = "mlp-test" });
        using var http = await settings.CreateApplicationClientAsync();
        await using var nats = new NatsClient(settings.NatsUrl);
        var watcher = new CompletionWatcher(nats, "log.*.events.*.mlp-test.*");
        await watcher.StartAsync();
        await using var db = NpgsqlDataSource.Create(settings.Postgres);

        var warmUp = Stopwatch.StartNew();
        var warmIds = await ClosedLoopAsync(http, 3000, 32);
        await watcher.WaitForAsync(warmIds, TimeSpan.FromMinutes(2));
        Console.WriteLine($"warm-up: 3000 jobs closed loop, {3000 / warmUp.Elapsed.TotalSeconds:F0} jobs/s");
        Console.WriteLine($"soak: {rate} jobs/s open loop for {seconds} s{(interactive ? ", each an interactive submit answered when the job ends (?wait=10s)" : "")}" +
            (recording ? "" : "; nothing recorded (the application without its projections role)"));

        var count = rate * seconds;
        var jobs = new Sent[count];
        var windows = (int)Math.Ceiling(seconds / Window.TotalSeconds);
        var lags = new ConcurrentBag<(int Window, double Ms)>();
        var recorded = new (long Submitted, long Succeeded)[windows + 1];
        var start = Stopwatch.GetTimestamp();
        using var stop = new CancellationTokenSource();
        var sampler = recording ? SampleLagAsync(http, watcher, start, lags, stop.Token) : Task.CompletedTask;
        var counter = recording ? CountRecordedAsync(db, settings.Schema, start, recorded, stop.Token) : Task.CompletedTask;
        var answer = SyncLoad.Submit(http, InteractiveBench.Wait, i => InteractiveBench.Paths.Single(p => p.Mode == BenchPath.Interactive).Body(Measures.MlpBody(i)));
        var sends = new List<Task>(count);
        for (var i = 0; i < count; i++)
        {
            var due = TimeSpan.FromSeconds((double)i / rate) - Stopwatch.GetElapsedTime(start);
            if (due > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(due);
            }

            var index = i;
            sends.Add(Task.Run(async () =>
            {
                var sentAt = Stopwatch.GetTimestamp();
                var id = interactive ? AnsweredId(await answer(index)) : await Measures.SubmitAsync(http, Measures.MlpBody(index));
                jobs[index] = new Sent(id, sentAt, Stopwatch.GetTimestamp());
            }));
        }

        await Task.WhenAll(sends);
        var sending = Stopwatch.GetElapsedTime(start);
        await watcher.WaitForAsync(jobs.Select(j => j.Id), TimeSpan.FromMinutes(5));
        await Task.Delay(Window);
        await stop.CancelAsync();
        await Task.WhenAll(sampler, counter);

        Console.WriteLine();
        var submitColumn = interactive ? "request → answer" : "submit";
        Console.WriteLine($"| window | accepted jobs/s | recorded submissions/s | recorded results/s | read-model lag max (ms) | {submitColumn} p50 / p99 (ms) | end to end p50 / p99 (ms) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        var worstLag = 0.0;
        var worstRatio = double.MaxValue;
        for (var w = 0; w < windows; w++)
        {
            var sent = jobs.Where(j => WindowOf(start, j.SentAt) == w).ToList();
            var accepted = jobs.Count(j => WindowOf(start, j.AcceptedAt) == w) / Window.TotalSeconds;
            var submissions = (recorded[w + 1].Submitted - recorded[w].Submitted) / Window.TotalSeconds;
            var results = (recorded[w + 1].Succeeded - recorded[w].Succeeded) / Window.TotalSeconds;
            var lag = lags.Where(l => l.Window == w).Select(l => l.Ms).DefaultIfEmpty(double.NaN).Max();
            var submit = sent.Select(j => Stopwatch.GetElapsedTime(j.SentAt, j.AcceptedAt).TotalMilliseconds).ToList();
            var endToEnd = sent.Select(j => Stopwatch.GetElapsedTime(j.SentAt, watcher.CompletedAt(j.Id)).TotalMilliseconds).ToList();
            worstLag = Math.Max(worstLag, double.IsNaN(lag) ? 0 : lag);
            worstRatio = Math.Min(worstRatio, accepted > 0 ? submissions / accepted : 1);
            var recordedColumns = recording ? $"{submissions:F0} | {results:F0} | {lag:F0}" : "— | — | —";
            Console.WriteLine($"| {w * Window.TotalSeconds:F0}–{(w + 1) * Window.TotalSeconds:F0} s | {accepted:F0} | {recordedColumns} | " +
                $"{Measures.Percentile(submit, 50):F1} / {Measures.Percentile(submit, 99):F1} | {Measures.Percentile(endToEnd, 50):F1} / {Measures.Percentile(endToEnd, 99):F1} |");
        }

        var allSubmit = jobs.Select(j => Stopwatch.GetElapsedTime(j.SentAt, j.AcceptedAt).TotalMilliseconds).ToList();
        var allEndToEnd = jobs.Select(j => Stopwatch.GetElapsedTime(j.SentAt, watcher.CompletedAt(j.Id)).TotalMilliseconds).ToList();
        Console.WriteLine();
        Console.WriteLine($"| whole soak | {count / sending.TotalSeconds:F0} jobs/s accepted | {(recording ? $"read-model lag max {worstLag:F0} ms | lowest recorded / accepted in a window {worstRatio:F2}" : "nothing recorded | —")} | {submitColumn} p99 {Measures.Percentile(allSubmit, 99):F1} ms | end to end p99 {Measures.Percentile(allEndToEnd, 99):F1} ms |");
        Console.WriteLine("|---|---|---|---|---|---|");
        return 0;
    }

    private sealed record Sent(Guid Id, long SentAt, long AcceptedAt);

    /// <summary>An interactive submit counts only answered 200 with its succeeded job.</summary>
    private static Guid AnsweredId(Answer answer) => answer is { Finished: true, Id: { } id }
        ? id
        : throw new InvalidOperationException($"an interactive submit was not answered with its succeeded job ({answer.Ms:F0} ms)");

    private static int WindowOf(long start, long at) => (int)(Stopwatch.GetElapsedTime(start, at) / Window);

    private static async Task<List<Guid>> ClosedLoopAsync(HttpClient http, int jobs, int concurrency)
    {
        var ids = new Guid[jobs];
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < jobs)
            {
                ids[i] = await Measures.SubmitAsync(http, Measures.MlpBody(i));
            }
        }));
        return ids.ToList();
    }

    /// <summary>
    /// Every 200 ms: the newest job seen ending on NATS, polled until the API reads it as succeeded.
    /// Each job is measured once: once the load has stopped the newest stays the same, and measuring
    /// it again would count the seconds since its ending as lag (a last window of ~5 s lag when the
    /// last job ended just inside it).
    /// </summary>
    private static async Task SampleLagAsync(HttpClient http, CompletionWatcher watcher, long start, ConcurrentBag<(int, double)> lags, CancellationToken ct)
    {
        Guid? measured = null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (watcher.Latest is { } latest && latest.At > start && latest.Id != measured)
                {
                    measured = latest.Id;
                    while ((await http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{latest.Id}", ct)).GetProperty("status").GetString() != "succeeded")
                    {
                        await Task.Delay(2, ct);
                    }

                    lags.Add((WindowOf(start, latest.At), Stopwatch.GetElapsedTime(latest.At).TotalMilliseconds));
                }

                await Task.Delay(200, ct);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>At each window's edge: the submissions and results the event store holds.</summary>
    private static async Task CountRecordedAsync(NpgsqlDataSource db, string schema, long start, (long, long)[] recorded, CancellationToken ct)
    {
        recorded[0] = await CountAsync(db, schema);
        try
        {
            for (var w = 1; w < recorded.Length; w++)
            {
                var due = (Window * w) - Stopwatch.GetElapsedTime(start);
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due, ct);
                }

                recorded[w] = await CountAsync(db, schema);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task<(long, long)> CountAsync(NpgsqlDataSource db, string schema)
    {
        // A full count: with two partitions committing concurrently, sequence numbers are not
        // committed in order, so "the events after the last one counted" would miss some.
        await using var command = db.CreateCommand(
            $"select count(*) filter (where type = 'v1.job_submitted'), count(*) filter (where type = 'v1.job_succeeded') from {schema}.mt_events");
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
