using System.Globalization;

namespace CqrsInference.Bench;

/// <summary>
/// The interactive path against the queued path and the inline baseline, in one invocation (issue
/// 17): for mlp-test and PP-OCRv4, the inline baseline (the model in-process, no queue, no events),
/// then synchronous submits (<c>POST /v1/jobs?wait=</c>) with <c>"mode":"interactive"</c> and with
/// the default (queued) mode, each in closed loop and in open loop at half the closed-loop rate,
/// request → answer. Rounds alternate the paths' order; the summary gives medians over rounds, the
/// ratios to the baseline, the share of answers served by the interactive path, and, read from the
/// event store after the run, whether every job the benchmark submitted was recorded exactly once.
/// </summary>
internal static class InteractiveBench
{
    public const int Rounds = 3;

    /// <summary>How long each synchronous submit may wait for its job (a finished job answers 200).</summary>
    public const string Wait = "10s";

    public static readonly TimeSpan OpenLoopFor = TimeSpan.FromSeconds(4);

    public static readonly IReadOnlyList<BenchPath> Paths = [new("interactive", "interactive"), new("queued", null)];

    public static async Task<int> RunAsync(BenchSettings settings, int jobs, int concurrency)
    {
        var workloads = await WorkloadsAsync(jobs, concurrency);
        Console.WriteLine($"interactive: {Rounds} rounds of {string.Join(" and ", workloads.Select(w => $"{w.Model} {w.Jobs} jobs × {w.Concurrency} concurrent"))}, "
            + $"each path closed loop then open loop for {OpenLoopFor.TotalSeconds:F0} s at half that rate; ?wait={Wait}");
        var inline = await InlineAsync(settings, workloads);

        // Every role in one process, as ./run.sh runs it.
        await using var app = await AppProcess.StartAsync(settings, "api,processor,projections", "Serving ppocr-rec",
            new Dictionary<string, string> { ["Processor__Models__0"] = "mlp-test", ["Processor__Models__1"] = "ppocr-rec" });
        using var api = settings.CreateClient();
        var submitted = Paths.ToDictionary(p => p.Name, _ => new List<Guid>());
        foreach (var workload in workloads)
        {
            foreach (var path in Paths)
            {
                var warmUp = await SyncLoad.ClosedLoopAsync(workload.WarmUp, workload.Concurrency, Send(api, workload, path));
                submitted[path.Name].AddRange(warmUp.Ids);
            }
        }

        var runs = await MeasureAsync(api, workloads);
        foreach (var run in runs)
        {
            submitted[run.Path.Name].AddRange(run.Ids);
        }

        Console.WriteLine("counting every submitted job's recorded events (mt_events) once the recorders have caught up");
        var books = new Dictionary<string, EventCounts>();
        foreach (var (path, ids) in submitted)
        {
            books[path] = await RecordedEvents.WaitAndCountAsync(settings, ids, TimeSpan.FromMinutes(2));
        }

        InteractiveReport.Print(workloads, inline, runs, books);
        return books.Values.All(b => b.ExactlyOnce) ? 0 : 1;
    }

    private static async Task<IReadOnlyList<Workload>> WorkloadsAsync(int jobs, int concurrency)
    {
        var line = await File.ReadAllBytesAsync(Environment.GetEnvironmentVariable("BENCH_OCR_IMAGE") ?? throw new InvalidOperationException("BENCH_OCR_IMAGE is not set"));
        var ocrBody = $$"""{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["{{Convert.ToBase64String(line)}}"]}]}""";
        return
        [
            new Workload("mlp-test", jobs, concurrency, 300, Measures.MlpBody),
            new Workload("ppocr-rec", Math.Max(40, jobs / 20), Math.Min(concurrency, 8), 20, _ => ocrBody),
        ];
    }

    /// <summary>The baseline, before the application starts (so that it has the machine to itself): a closed loop per model and round.</summary>
    private static async Task<Dictionary<string, List<SyncRun>>> InlineAsync(BenchSettings settings, IReadOnlyList<Workload> workloads)
    {
        await using var inline = await InlineBaseline.StartAsync(settings, 18090, [.. workloads.Select(w => w.Model)]);
        using var http = new HttpClient { BaseAddress = new Uri(inline.Url) };
        var runs = workloads.ToDictionary(w => w.Model, _ => new List<SyncRun>());
        foreach (var workload in workloads)
        {
            await SyncLoad.ClosedLoopAsync(workload.WarmUp, workload.Concurrency, SyncLoad.Inline(http, workload.Body));
        }

        for (var round = 1; round <= Rounds; round++)
        {
            foreach (var workload in workloads)
            {
                var run = await SyncLoad.ClosedLoopAsync(workload.Jobs, workload.Concurrency, SyncLoad.Inline(http, workload.Body));
                runs[workload.Model].Add(run);
                Console.WriteLine($"  round {round} {workload.Model} inline: {run.PerSecond:F1}/s, p50 {run.P(50):F2} ms, p99 {run.P(99):F2} ms");
            }
        }

        return runs;
    }

    private static async Task<List<PathRun>> MeasureAsync(HttpClient api, IReadOnlyList<Workload> workloads)
    {
        var runs = new List<PathRun>();
        for (var round = 1; round <= Rounds; round++)
        {
            foreach (var workload in workloads)
            {
                // Alternate which path goes first, so that neither always runs on a warmer (or fuller) system.
                foreach (var path in round % 2 == 1 ? Paths : Paths.Reverse())
                {
                    var send = Send(api, workload, path);
                    var closed = await SyncLoad.ClosedLoopAsync(workload.Jobs, workload.Concurrency, send);
                    var rate = Math.Max(2, closed.PerSecond / 2);
                    var open = await SyncLoad.OpenLoopAsync(rate, OpenLoopFor, send);
                    runs.Add(new PathRun(workload.Model, path, round, closed, rate, open));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  round {round} {workload.Model} {path.Name}: closed {closed.PerSecond:F1}/s p50 {closed.P(50):F2} ms; open at {rate:F1}/s p50 {open.P(50):F2} p99 {open.P(99):F2} ms; "
                        + $"served interactively {closed.Served(BenchPath.Interactive) + open.Served(BenchPath.Interactive)} of {closed.Answers.Count + open.Answers.Count}, unfinished {closed.Unfinished + open.Unfinished}"));
                }
            }
        }

        return runs;
    }

    private static Func<int, Task<Answer>> Send(HttpClient api, Workload workload, BenchPath path) =>
        SyncLoad.Submit(api, Wait, i => path.Body(workload.Body(i)));
}

/// <summary>A model's load: jobs per closed loop, callers, warm-up jobs, and the body of job i.</summary>
internal sealed record Workload(string Model, int Jobs, int Concurrency, int WarmUp, Func<int, string> Body);

/// <summary>A path through the API: the job's <c>mode</c> (null: the default, queued).</summary>
internal sealed record BenchPath(string Name, string? Mode)
{
    /// <summary>What <c>servedBy</c> says of a job run on the interactive path.</summary>
    public const string Interactive = "interactive";

    /// <summary>The job body with this path's mode (the bodies are compact JSON objects).</summary>
    public string Body(string job) => Mode is null ? job : $"{job[..^1]},\"mode\":\"{Mode}\"}}";
}

/// <summary>One round of one path for one model: closed loop, then open loop at <paramref name="Rate"/>.</summary>
internal sealed record PathRun(string Model, BenchPath Path, int Round, SyncRun Closed, double Rate, SyncRun Open)
{
    public IEnumerable<Guid> Ids => Closed.Ids.Concat(Open.Ids);
}
