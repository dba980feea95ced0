using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CqrsInference.Bench;
using NATS.Client.Core;
using NATS.Net;

// Bounded benchmarks against real servers on loopback (see bench.sh and docs/BENCHMARKS.md).
//   e2e [jobs] [concurrency]      submit -> succeeded through the whole pipeline, mlp-test model
//   ocr-batching [jobs]           PP-OCRv4 items/s with dynamic batching vs batch size 1
//   replay [jobs]                 record a history (3 events a job), then replay and verify it
//   analytics [events]            bulk-load events, time the async roll-ups' catch-up and the analytics queries
//   load [jobs] [concurrency]     inline baseline vs the pipeline (closed and open loop), mlp-test and PP-OCRv4
//   overflow [inference ms] [baseline jobs/s] [burst s]   two regions, a 10x burst in one, overflow off vs on
//   edge [items] [outage seconds] an edge site: raw bytes in vs event bytes out; backlog drain after an outage
//   recorder [events]             the recorders alone on a pre-filled log, next to a raw Marten bulk append
//   soak [seconds] [rate] [mode] [unrecorded]  open-loop load at a fixed rate, per 5-second window (mode interactive: synchronous
//                                 interactive submits; unrecorded: the application without its projections role)
//   bulk [jobs] [per request]     single submits vs bulk submits of the same jobs
//   batch [jobs]                  single submits vs one batch (POST /v1/batches) of the same jobs
//   history [events]              /health, /metrics, GET /v1/jobs/{id} on an empty store, then after loading events
//   interactive [jobs] [concurrency]  inline baseline vs synchronous submits, mode interactive vs queued, closed and open loop
//   shadow [jobs] [jobs/s] [rounds] open-loop mlp-test load without, then with a shadow version configured, alternated: primary p50/p99 and their ratio
//   failover [jobs/s] [seconds] [inference ms]  three regions; mirror lag under load, then east is killed: takeover time, backlog served, jobs lost
var scenario = args.ElementAtOrDefault(0) ?? "e2e";
var settings = new BenchSettings(
    AppDll: Environment.GetEnvironmentVariable("BENCH_APP_DLL") ?? throw new InvalidOperationException("BENCH_APP_DLL is not set (run bench.sh)"),
    NatsUrl: Environment.GetEnvironmentVariable("BENCH_NATS") ?? "nats://127.0.0.1:14222",
    Postgres: Environment.GetEnvironmentVariable("BENCH_PG") ?? "Host=127.0.0.1;Port=55434;Database=cqrsi;Username=postgres;Maximum Pool Size=50",
    ModelsDirectory: Environment.GetEnvironmentVariable("BENCH_MODELS") ?? ".models",
    Manifest: Environment.GetEnvironmentVariable("BENCH_MANIFEST") ?? "models/manifest.json",
    ApiUrl: "http://127.0.0.1:18080",
    Schema: "bench_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture));

Console.WriteLine($"# CqrsInference benchmark '{scenario}' on {Environment.ProcessorCount} cores, {RuntimeInformation()}");
return scenario switch
{
    "e2e" => await EndToEndAsync(settings, Arg(1, 5000), Arg(2, 32)),
    "ocr-batching" => await OcrBatchingAsync(settings, Arg(1, 400)),
    "replay" => await ReplayAsync(settings, Arg(1, 34_000)),
    "analytics" => await AnalyticsBench.RunAsync(settings, Arg(1, 1_000_000)),
    "load" => await LoadBench.RunAsync(settings, Arg(1, 3000), Arg(2, 32)),
    "overflow" => await OverflowBench.RunAsync(settings, Arg(1, 50), Arg(2, 10), Arg(3, 4)),
    "edge" => await EdgeBench.RunAsync(settings, Arg(1, 200), Arg(2, 30)),
    "recorder" => await RecorderBench.RunAsync(settings, Arg(1, 100_000)),
    "soak" when SoakArgs() is (var seconds, var rate, var interactive, var recording) =>
        await SoakBench.RunAsync(settings, seconds, rate, interactive, recording),
    "bulk" => await BulkBench.RunAsync(settings, Arg(1, 20_000), Arg(2, 100)),
    "batch" => await BatchBench.RunAsync(settings, Arg(1, 2000)),
    "history" => await HistoryBench.RunAsync(settings, Arg(1, 2_000_000)),
    "outage" => await OutageBench.RunAsync(settings, Arg(1, 60), Arg(2, 50), Arg(3, 20), Arg(4, 10)),
    "interactive" => await InteractiveBench.RunAsync(settings, Arg(1, 2000), Arg(2, 32)),
    "shadow" => await ShadowBench.RunAsync(settings, Arg(1, 2000), Arg(2, 100), Arg(3, 3)),
    "failover" => await FailoverBench.RunAsync(settings, Arg(1, 25), Arg(2, 20), Arg(3, 0)),
    _ => Usage(),
};

int Arg(int index, int fallback) => args.Length > index ? int.Parse(args[index], CultureInfo.InvariantCulture) : fallback;

// soak's arguments: up to two numbers (seconds, rate), then its words in any order: a mode (queued or
// interactive, not both) and unrecorded. Null when they are not soak's.
(int Seconds, int Rate, bool Interactive, bool Recording)? SoakArgs()
{
    var numbers = args.Skip(1).TakeWhile(a => int.TryParse(a, CultureInfo.InvariantCulture, out _)).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray();
    var words = args.Skip(1 + numbers.Length).ToArray();
    var valid = numbers.Length <= 2 && words.Distinct().Count() == words.Length
        && words.All(w => w is "queued" or "interactive" or "unrecorded") && !(words.Contains("queued") && words.Contains("interactive"));
    return valid ? (numbers.Length > 0 ? numbers[0] : 120, numbers.Length > 1 ? numbers[1] : 500,
        words.Contains("interactive"), !words.Contains("unrecorded")) : null;
}

static int Usage()
{
    Console.Error.WriteLine("usage: bench e2e [jobs] [concurrency] | ocr-batching [jobs] | replay [jobs] | analytics [events] | load [jobs] [concurrency] | overflow [inference ms] [baseline jobs/s] [burst s] | edge [items] [outage seconds] | recorder [events] | soak [seconds] [rate] [queued|interactive] [unrecorded] (the words in any order) | bulk [jobs] [per request] | batch [jobs] | history [events] | outage [seconds] [jobs/s] [postgres down s] [nats down s] | interactive [jobs] [concurrency] | shadow [jobs] [jobs/s] [rounds] | failover [jobs/s per region] [seconds] [inference ms]");
    return 2;
}

static string RuntimeInformation() => System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription;

static async Task<int> EndToEndAsync(BenchSettings settings, int jobs, int concurrency)
{
    await using var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving mlp-test",
        new Dictionary<string, string> { ["Processor__Models__0"] = "mlp-test" });
    using var http = settings.CreateClient();
    await using var nats = new NatsClient(settings.NatsUrl);
    var completions = new CompletionWatcher(nats, "log.*.events.*.mlp-test.*");
    await completions.StartAsync();

    Console.WriteLine("warm-up: 500 jobs");
    await RunClosedLoopAsync(http, completions, 500, concurrency);
    Console.WriteLine($"measured: {jobs} jobs, {concurrency} concurrent submitters, model mlp-test");
    var run = await RunClosedLoopAsync(http, completions, jobs, concurrency);

    // Read-model lag: from the last succeeded event on NATS until the API reads it as succeeded.
    var lag = Stopwatch.StartNew();
    foreach (var id in run.Ids.TakeLast(20))
    {
        while ((await http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}")).GetProperty("status").GetString() != "succeeded")
        {
            await Task.Delay(5);
        }
    }

    var visibleAfter = lag.Elapsed;
    Console.WriteLine();
    Console.WriteLine("| metric | value |");
    Console.WriteLine("|---|---|");
    Console.WriteLine($"| jobs | {jobs} |");
    Console.WriteLine($"| throughput submitted→succeeded | {jobs / run.Wall.TotalSeconds:F0} jobs/s |");
    Console.WriteLine($"| submit (202) latency p50 / p99 | {Measures.Percentile(run.Submit, 50):F1} / {Measures.Percentile(run.Submit, 99):F1} ms |");
    Console.WriteLine($"| submit→succeeded latency p50 / p99 | {Measures.Percentile(run.EndToEnd, 50):F1} / {Measures.Percentile(run.EndToEnd, 99):F1} ms |");
    Console.WriteLine($"| last job readable as succeeded after its event | {visibleAfter.TotalMilliseconds:F0} ms |");
    return 0;
}

static async Task<int> OcrBatchingAsync(BenchSettings settings, int jobs)
{
    var line = await File.ReadAllBytesAsync(Environment.GetEnvironmentVariable("BENCH_OCR_IMAGE") ?? throw new InvalidOperationException("BENCH_OCR_IMAGE is not set"));
    var body = $$"""{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["{{Convert.ToBase64String(line)}}"]}]}""";
    await using var api = await AppProcess.StartAsync(settings, "api,projections", "ready", new Dictionary<string, string>());
    using var http = settings.CreateClient();
    await using var nats = new NatsClient(settings.NatsUrl);
    var completions = new CompletionWatcher(nats, "log.*.events.*.ppocr-rec.*");
    await completions.StartAsync();

    var rows = new List<string>();
    foreach (var maxBatch in new[] { 1, 8, 1, 8 })
    {
        // The whole load waits in the queue before the processor starts: saturation from the first pull.
        var ids = new List<Guid>();
        for (var i = 0; i < jobs; i++)
        {
            ids.Add(await Measures.SubmitAsync(http, body));
        }

        var watch = Stopwatch.StartNew();
        await using var processor = await AppProcess.StartAsync(settings, "processor", "Serving ppocr-rec",
            new Dictionary<string, string> { ["Processor__Models__0"] = "ppocr-rec", ["Processor__MaxBatch"] = maxBatch.ToString(CultureInfo.InvariantCulture) });
        var startup = watch.Elapsed;
        await completions.WaitForAsync(ids, TimeSpan.FromMinutes(5));
        await processor.StopAsync();
        var stats = Regex.Match(processor.Output, @"stopped after (\d+) jobs: busy ([\d.]+) s in inference of ([\d.]+) s");
        var busy = double.Parse(stats.Groups[2].Value, CultureInfo.InvariantCulture);
        var active = double.Parse(stats.Groups[3].Value, CultureInfo.InvariantCulture);
        var itemsPerSecond = jobs / active;
        var device = await RecordedDeviceAsync(http, ids[^1]);
        rows.Add($"| {maxBatch} | {jobs} | {active:F2} s | {itemsPerSecond:F1} | {100 * busy / active:F1}% | {startup.TotalSeconds:F1} s | {device} |");
        Console.WriteLine(rows[^1]);
    }

    Console.WriteLine();
    Console.WriteLine("| max batch | jobs | first start → last finish | items/s | busy (in inference) | processor start + warm-up | device recorded |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    rows.ForEach(Console.WriteLine);
    return 0;
}

// The device the job's events name (cpu, cuda), once the recorder has recorded its ending.
static async Task<string> RecordedDeviceAsync(HttpClient http, Guid id)
{
    for (var tries = 0; tries < 100; tries++)
    {
        if ((await http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}")).GetProperty("device") is { ValueKind: JsonValueKind.String } device)
        {
            return device.GetString()!;
        }

        await Task.Delay(100);
    }

    return "not recorded";
}

static async Task<int> ReplayAsync(BenchSettings settings, int jobs)
{
    await using (var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving mlp-test",
        new Dictionary<string, string> { ["Processor__Models__0"] = "mlp-test" }))
    {
        using var http = settings.CreateClient();
        await using var nats = new NatsClient(settings.NatsUrl);
        var completions = new CompletionWatcher(nats, "log.*.events.*.mlp-test.*");
        await completions.StartAsync();
        Console.WriteLine($"recording a history: {jobs} jobs through the pipeline");
        var run = await RunClosedLoopAsync(http, completions, jobs, 64);
        Console.WriteLine($"  {jobs / run.Wall.TotalSeconds:F0} jobs/s");
        var wait = Stopwatch.StartNew();
        while (true)
        {
            var verify = await http.GetFromJsonAsync<JsonElement>("/v1/audit/verify");
            var last = await http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{run.Ids[^1]}");
            if (verify.GetProperty("unsealedEvents").GetInt64() == 0 && last.GetProperty("status").GetString() == "succeeded")
            {
                Console.WriteLine($"  recorded and sealed {wait.Elapsed.TotalSeconds:F1} s after the last result");
                break;
            }

            await Task.Delay(500);
        }

        await app.StopAsync();
    }

    foreach (var verb in new[] { "replay", "verify" })
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true };
        info.ArgumentList.Add(settings.AppDll);
        info.ArgumentList.Add(verb);
        info.Environment["ConnectionStrings__Postgres"] = settings.Postgres;
        info.Environment["Cqrsi__Schema"] = settings.Schema;
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Console.WriteLine($"$ {verb}  (exit {process.ExitCode}, {watch.Elapsed.TotalSeconds:F1} s including start-up)");
        Console.WriteLine(output.Replace("\r", "\n", StringComparison.Ordinal).Trim());
    }

    return 0;
}

static async Task<(List<Guid> Ids, List<double> Submit, List<double> EndToEnd, TimeSpan Wall)> RunClosedLoopAsync(
    HttpClient http, CompletionWatcher completions, int jobs, int concurrency)
{
    var ids = new Guid[jobs];
    var submitted = new long[jobs];
    var submitMs = new double[jobs];
    var next = -1;
    var wall = Stopwatch.StartNew();
    var workers = Enumerable.Range(0, concurrency).Select(async w =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next)) < jobs)
        {
            var body = Measures.MlpBody(i);
            submitted[i] = Stopwatch.GetTimestamp();
            ids[i] = await Measures.SubmitAsync(http, body);
            submitMs[i] = Stopwatch.GetElapsedTime(submitted[i]).TotalMilliseconds;
        }
    });
    await Task.WhenAll(workers);
    await completions.WaitForAsync(ids, TimeSpan.FromMinutes(5));
    wall.Stop();
    var endToEnd = ids.Select((id, i) => Stopwatch.GetElapsedTime(submitted[i], completions.CompletedAt(id)).TotalMilliseconds).ToList();
    return (ids.ToList(), submitMs.ToList(), endToEnd, wall.Elapsed);
}

/// <summary>Watches the results stream's subjects (core NATS) for terminal events of the benchmark's jobs.</summary>
internal sealed class CompletionWatcher(NatsClient nats, string subject)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, long> _done = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, double> _queueWait = new();

    public double QueueWaitOf(Guid id) => _queueWait.GetValueOrDefault(id, double.NaN);

    private Ending? _latest;

    /// <summary>The job whose ending was seen last, and when (a <see cref="Stopwatch"/> timestamp).</summary>
    public Ending? Latest => Volatile.Read(ref _latest);

    public bool IsDone(Guid id) => _done.ContainsKey(id);

    public async Task StartAsync()
    {
        var ready = new TaskCompletionSource();
        _ = Task.Run(async () =>
        {
            await using var subscription = await nats.Connection.SubscribeCoreAsync<byte[]>(subject);
            ready.SetResult();
            await foreach (var msg in subscription.Msgs.ReadAllAsync())
            {
                var type = msg.Headers?["Cqrsi-Event-Type"].ToString();
                if (type == "v1.job_started")
                {
                    using var started = JsonDocument.Parse(msg.Data);
                    _queueWait.TryAdd(started.RootElement.GetProperty("jobId").GetGuid(), started.RootElement.GetProperty("queueWaitMs").GetDouble());
                }
                else if (type is "v1.job_succeeded" or "v1.job_failed")
                {
                    using var document = JsonDocument.Parse(msg.Data);
                    var jobId = document.RootElement.GetProperty("jobId").GetGuid();
                    var at = Stopwatch.GetTimestamp();
                    _done.TryAdd(jobId, at);
                    Volatile.Write(ref _latest, new Ending(jobId, at));

                    // A short run carries its start on its ending.
                    if (document.RootElement.TryGetProperty("start", out var start) && start.ValueKind == JsonValueKind.Object)
                    {
                        _queueWait.TryAdd(jobId, start.GetProperty("queueWaitMs").GetDouble());
                    }
                }
            }
        });
        await ready.Task;
        await nats.PingAsync();
    }

    public long CompletedAt(Guid id) => _done[id];

    public async Task WaitForAsync(IEnumerable<Guid> ids, TimeSpan timeout)
    {
        var pending = ids.ToList();
        var deadline = Stopwatch.StartNew();
        while (pending.Any(id => !_done.ContainsKey(id)))
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"{pending.Count(id => !_done.ContainsKey(id))} jobs did not finish in {timeout}.");
            }

            await Task.Delay(10);
        }
    }
}

internal sealed record Ending(Guid Id, long At);
