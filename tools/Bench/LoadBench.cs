using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using NATS.Net;

namespace CqrsInference.Bench;

/// <summary>
/// The end-to-end load benchmark with its baseline in the same invocation: the inline endpoint
/// (same models, no queue, no event store), then the pipeline in closed loop (saturation) and open
/// loop (a fixed rate: half the closed-loop throughput), for the generated model and for PP-OCRv4;
/// with queue-wait, submit and end-to-end percentiles, event-store append rate, roll-up lag and
/// CPU time per component. Bounded in count and time; loopback only.
/// </summary>
internal static class LoadBench
{
    public static async Task<int> RunAsync(BenchSettings settings, int jobs, int concurrency)
    {
        var line = await File.ReadAllBytesAsync(Environment.GetEnvironmentVariable("BENCH_OCR_IMAGE") ?? throw new InvalidOperationException("BENCH_OCR_IMAGE is not set"));
        var ocrBody = $$"""{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["{{Convert.ToBase64String(line)}}"]}]}""";
        const int ocrJobs = 200;
        var results = new List<string>();

        // 1. Baseline: inline, same models, same machine.
        LatencyRun inlineMlp, inlineOcr;
        await using (var inline = await InlineBaseline.StartAsync(settings, 18090, "mlp-test", "ppocr-rec"))
        {
            using var http = new HttpClient { BaseAddress = new Uri(inline.Url) };
            await ClosedLoopInlineAsync(http, 300, concurrency, Measures.MlpBody);
            inlineMlp = await ClosedLoopInlineAsync(http, jobs, concurrency, Measures.MlpBody);
            inlineOcr = await ClosedLoopInlineAsync(http, ocrJobs, 8, _ => ocrBody);
        }

        Console.WriteLine($"inline baseline: mlp-test {inlineMlp.PerSecond:F0}/s, ppocr-rec {inlineOcr.PerSecond:F1}/s");

        // 2. The pipeline, every role in one process, as ./run.sh runs it.
        await using var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving ppocr-rec",
            new Dictionary<string, string> { ["Processor__Models__0"] = "mlp-test", ["Processor__Models__1"] = "ppocr-rec" });
        using var api = settings.CreateClient();
        await using var nats = new NatsClient(settings.NatsUrl);
        var watcher = new CompletionWatcher(nats, "log.*.events.>");
        await watcher.StartAsync();
        await PipelineClosedLoopAsync(api, watcher, 300, concurrency, Measures.MlpBody, lag: null);

        var cpu = CpuMeter.ForBench(app.Pid);
        var sequenceBefore = await HighestSequenceAsync(api);
        var lagSamples = new List<long>();
        var closed = await PipelineClosedLoopAsync(api, watcher, jobs, concurrency, Measures.MlpBody, lagSamples);
        var caughtUp = await WaitForRollUpsAsync(api, closed.Wall);
        var appended = await HighestSequenceAsync(api) - sequenceBefore;
        var cpuShares = cpu.Stop();

        // The steady state: the runtime's code generation has settled (the first few thousand jobs
        // include tier-0 and instrumented code), measured for at least 10 s.
        var steadyJobs = Math.Max(jobs, (int)(closed.PerSecond * 10));
        var steady = await PipelineClosedLoopAsync(api, watcher, steadyJobs, concurrency, Measures.MlpBody, lag: null);
        var rate = Math.Max(10, steady.PerSecond / 2);
        var open = await PipelineOpenLoopAsync(api, watcher, rate, TimeSpan.FromSeconds(8), Measures.MlpBody);
        var ocr = await PipelineClosedLoopAsync(api, watcher, ocrJobs, 8, _ => ocrBody, lag: null);

        Console.WriteLine();
        Console.WriteLine("| run | jobs/s | submit p50 / p95 / p99 (ms) | queue wait p50 / p95 / p99 (ms) | end to end p50 / p95 / p99 (ms) |");
        Console.WriteLine("|---|---|---|---|---|");
        Console.WriteLine($"| inline baseline, mlp-test, {concurrency} concurrent | {inlineMlp.PerSecond:F0} | — | — | {inlineMlp.Latency} |");
        Console.WriteLine($"| pipeline closed loop, mlp-test, {concurrency} concurrent | {closed.PerSecond:F0} | {closed.Submit} | {closed.QueueWait} | {closed.EndToEnd} |");
        Console.WriteLine($"| pipeline closed loop, steady state ({steadyJobs} more jobs, {steady.Wall.TotalSeconds:F0} s), mlp-test | {steady.PerSecond:F0} | {steady.Submit} | {steady.QueueWait} | {steady.EndToEnd} |");
        Console.WriteLine($"| pipeline open loop at {rate:F0}/s (half of the steady state), mlp-test | {open.PerSecond:F0} | {open.Submit} | {open.QueueWait} | {open.EndToEnd} |");
        Console.WriteLine($"| inline baseline, ppocr-rec, 8 concurrent | {inlineOcr.PerSecond:F1} | — | — | {inlineOcr.Latency} |");
        Console.WriteLine($"| pipeline closed loop, ppocr-rec, 8 concurrent | {ocr.PerSecond:F1} | {ocr.Submit} | {ocr.QueueWait} | {ocr.EndToEnd} |");
        Console.WriteLine();
        Console.WriteLine($"| ratio | mlp-test | ppocr-rec |");
        Console.WriteLine($"|---|---|---|");
        Console.WriteLine($"| throughput pipeline / inline | {closed.PerSecond / inlineMlp.PerSecond:F2} | {ocr.PerSecond / inlineOcr.PerSecond:F2} |");
        Console.WriteLine($"| throughput pipeline (steady state) / inline | {steady.PerSecond / inlineMlp.PerSecond:F2} | |");
        Console.WriteLine($"| p50 latency pipeline (end to end) / inline | {closed.EndToEndP50 / inlineMlp.P50:F1} | {ocr.EndToEndP50 / inlineOcr.P50:F2} |");
        Console.WriteLine();
        Console.WriteLine($"event store: {appended:N0} events appended during the closed loop, {appended / (closed.Wall + caughtUp).TotalSeconds:N0} events/s (until the roll-ups caught up {caughtUp.TotalSeconds:F1} s after the last result); roll-up lag max {(lagSamples.Count == 0 ? 0 : lagSamples.Max()):N0} events");
        Console.WriteLine($"CPU during the closed loop (2 cores = 200%): {cpuShares}");
        return 0;
    }

    private sealed record LatencyRun(double PerSecond, List<double> Ms)
    {
        public double P50 => Measures.Percentile(Ms, 50);

        public string Latency => Measures.Triple(Ms);
    }

    internal sealed record PipelineRun(double PerSecond, TimeSpan Wall, List<double> SubmitMs, List<double> QueueWaitMs, List<double> EndToEndMs)
    {
        public string Submit => Triple(SubmitMs);

        public string QueueWait => Triple(QueueWaitMs);

        public string EndToEnd => Triple(EndToEndMs);

        public double EndToEndP50 => Measures.Percentile(EndToEndMs, 50);

        private static string Triple(List<double> ms) => Measures.Triple(ms);
    }

    private static async Task<LatencyRun> ClosedLoopInlineAsync(HttpClient http, int jobs, int concurrency, Func<int, string> body)
    {
        var latencies = new double[jobs];
        var next = -1;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < jobs)
            {
                var started = Stopwatch.GetTimestamp();
                using var response = await http.PostAsync("/infer", new StringContent(body(i), Encoding.UTF8, "application/json"));
                response.EnsureSuccessStatusCode();
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        }));
        return new LatencyRun(jobs / wall.Elapsed.TotalSeconds, latencies.ToList());
    }

    internal static async Task<PipelineRun> PipelineClosedLoopAsync(HttpClient http, CompletionWatcher watcher, int jobs, int concurrency, Func<int, string> body, List<long>? lag)
    {
        var ids = new Guid[jobs];
        var submitted = new long[jobs];
        var submitMs = new double[jobs];
        var next = -1;
        using var sampling = new CancellationTokenSource();
        var sampler = lag is null ? Task.CompletedTask : SampleLagAsync(http, lag, sampling.Token);
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < jobs)
            {
                submitted[i] = Stopwatch.GetTimestamp();
                ids[i] = await Measures.SubmitAsync(http, body(i));
                submitMs[i] = Stopwatch.GetElapsedTime(submitted[i]).TotalMilliseconds;
            }
        }));
        await watcher.WaitForAsync(ids, TimeSpan.FromMinutes(5));
        wall.Stop();
        await sampling.CancelAsync();
        await sampler;
        return new PipelineRun(jobs / wall.Elapsed.TotalSeconds, wall.Elapsed, submitMs.ToList(),
            ids.Select(watcher.QueueWaitOf).ToList(),
            ids.Select((id, i) => Stopwatch.GetElapsedTime(submitted[i], watcher.CompletedAt(id)).TotalMilliseconds).ToList());
    }

    internal static async Task<PipelineRun> PipelineOpenLoopAsync(HttpClient http, CompletionWatcher watcher, double rate, TimeSpan duration, Func<int, string> body)
    {
        var count = (int)(rate * duration.TotalSeconds);
        var ids = new Guid[count];
        var submitted = new long[count];
        var submitMs = new double[count];
        var start = Stopwatch.GetTimestamp();
        var sends = new List<Task>(count);
        for (var i = 0; i < count; i++)
        {
            // Open loop: each job leaves at its scheduled time whether earlier ones finished or not.
            var due = TimeSpan.FromSeconds(i / rate) - Stopwatch.GetElapsedTime(start);
            if (due > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(due);
            }

            var index = i;
            sends.Add(Task.Run(async () =>
            {
                submitted[index] = Stopwatch.GetTimestamp();
                ids[index] = await Measures.SubmitAsync(http, body(index));
                submitMs[index] = Stopwatch.GetElapsedTime(submitted[index]).TotalMilliseconds;
            }));
        }

        await Task.WhenAll(sends);
        await watcher.WaitForAsync(ids, TimeSpan.FromMinutes(5));
        var wall = Stopwatch.GetElapsedTime(start);
        return new PipelineRun(count / wall.TotalSeconds, wall, submitMs.ToList(), ids.Select(watcher.QueueWaitOf).ToList(),
            ids.Select((id, i) => Stopwatch.GetElapsedTime(submitted[i], watcher.CompletedAt(id)).TotalMilliseconds).ToList());
    }

    private static async Task SampleLagAsync(HttpClient http, List<long> samples, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var lag = await http.GetFromJsonAsync<JsonElement>("/v1/analytics/lag", ct);
                samples.Add(lag.GetProperty("projections").EnumerateArray().Select(p => p.GetProperty("behind").GetInt64()).DefaultIfEmpty(0).Max());
                await Task.Delay(250, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task<long> HighestSequenceAsync(HttpClient http) =>
        (await http.GetFromJsonAsync<JsonElement>("/v1/analytics/lag")).GetProperty("highestSequence").GetInt64();

    internal static async Task<TimeSpan> WaitForRollUpsAsync(HttpClient http, TimeSpan _)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromMinutes(2))
        {
            var lag = await http.GetFromJsonAsync<JsonElement>("/v1/analytics/lag");
            if (lag.GetProperty("projections").EnumerateArray().All(p => p.GetProperty("behind").GetInt64() == 0))
            {
                break;
            }

            await Task.Delay(100);
        }

        return watch.Elapsed;
    }

    /// <summary>CPU time (user + system) of the benchmark's processes, from /proc, over an interval.</summary>
    internal sealed class CpuMeter
    {
        private readonly Dictionary<string, Func<IEnumerable<int>>> _components;
        private readonly Dictionary<string, double> _start;
        private readonly Stopwatch _wall = Stopwatch.StartNew();

        private CpuMeter(Dictionary<string, Func<IEnumerable<int>>> components)
        {
            _components = components;
            _start = components.ToDictionary(c => c.Key, c => Seconds(c.Value()));
        }

        public static CpuMeter ForBench(int appPid)
        {
            var benchDir = Environment.GetEnvironmentVariable("BENCH_DIR") ?? "";
            int? Read(string file) => File.Exists(file) && int.TryParse(File.ReadLines(file).First().Trim(), out var pid) ? pid : null;
            var postmaster = Read(Path.Combine(benchDir, "pg", "postmaster.pid"));
            var natsPid = Read(Path.Combine(benchDir, "nats", "nats.pid"));
            return new CpuMeter(new Dictionary<string, Func<IEnumerable<int>>>
            {
                ["application (API + processor + projections)"] = () => [appPid],
                ["nats-server"] = () => natsPid is { } n ? [n] : [],
                ["postgres"] = () => postmaster is { } p ? Directory.GetDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
                    .Where(pid => pid == p || ParentOf(pid) == p) : [],
                ["load generator (this process)"] = () => [Environment.ProcessId],
            });
        }

        public string Stop()
        {
            var wall = _wall.Elapsed.TotalSeconds;
            return string.Join(", ", _components.Select(c => $"{c.Key} {100 * (Seconds(c.Value()) - _start[c.Key]) / wall:F0}%"));
        }

        private static double Seconds(IEnumerable<int> pids) => pids.Sum(pid =>
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture)) / 100;
            }
            catch (IOException)
            {
                return 0;
            }
        });

        private static int ParentOf(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
            {
                return 0;
            }
        }
    }
}
