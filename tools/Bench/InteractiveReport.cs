using System.Globalization;

namespace CqrsInference.Bench;

/// <summary>The summary block of <see cref="InteractiveBench"/>: medians over rounds, ratios, goals, the event counts.</summary>
internal static class InteractiveReport
{
    public static void Print(IReadOnlyList<Workload> workloads, Dictionary<string, List<SyncRun>> inline, List<PathRun> runs, Dictionary<string, EventCounts> books)
    {
        Console.WriteLine();
        Console.WriteLine($"## interactive: medians over {InteractiveBench.Rounds} rounds (request → answer, POST /v1/jobs?wait={InteractiveBench.Wait})");
        Console.WriteLine();
        Console.WriteLine("| model | path | loop | jobs/s | p50 / p90 / p99 (ms) | served by interactive | unfinished |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var workload in workloads)
        {
            var baseline = inline[workload.Model];
            Console.WriteLine($"| {workload.Model} | inline baseline | closed, {workload.Concurrency} concurrent | {Median(baseline, r => r.PerSecond):F1} | {Latencies(baseline)} | — | {baseline.Sum(r => r.Unfinished)} |");
            foreach (var path in InteractiveBench.Paths)
            {
                var mine = runs.Where(r => r.Model == workload.Model && r.Path == path).ToList();
                var closed = mine.Select(r => r.Closed).ToList();
                var open = mine.Select(r => r.Open).ToList();
                Console.WriteLine($"| {workload.Model} | {path.Name} | closed, {workload.Concurrency} concurrent | {Median(closed, r => r.PerSecond):F1} | {Latencies(closed)} | {Share(closed)} | {closed.Sum(r => r.Unfinished)} |");
                Console.WriteLine($"| {workload.Model} | {path.Name} | open at {Median(mine, r => r.Rate):F1}/s (half the closed loop) | {Median(open, r => r.PerSecond):F1} | {Latencies(open)} | {Share(open)} | {open.Sum(r => r.Unfinished)} |");
            }
        }

        PrintRatios(workloads, inline, runs);
        PrintBooks(books);
    }

    private static void PrintRatios(IReadOnlyList<Workload> workloads, Dictionary<string, List<SyncRun>> inline, List<PathRun> runs)
    {
        double Closed(string model, string path, Func<SyncRun, double> value) =>
            Median(runs.Where(r => r.Model == model && r.Path.Name == path).Select(r => r.Closed), value);
        double Inline(string model, Func<SyncRun, double> value) => Median(inline[model], value);

        Console.WriteLine();
        Console.WriteLine($"| ratio (closed loop, medians) | {string.Join(" | ", workloads.Select(w => w.Model))} |");
        Console.WriteLine($"|---|{string.Concat(workloads.Select(_ => "---|"))}");
        foreach (var path in InteractiveBench.Paths.Select(p => p.Name))
        {
            Console.WriteLine($"| throughput {path} / inline | {string.Join(" | ", workloads.Select(w => F2(Closed(w.Model, path, r => r.PerSecond) / Inline(w.Model, r => r.PerSecond))))} |");
            Console.WriteLine($"| p50 latency {path} / inline | {string.Join(" | ", workloads.Select(w => F2(Closed(w.Model, path, r => r.P(50)) / Inline(w.Model, r => r.P(50)))))} |");
        }

        var mlpOpenP99 = Median(runs.Where(r => r.Model == "mlp-test" && r.Path.Name == "interactive").Select(r => r.Open), r => r.P(99));
        Console.WriteLine();
        Console.WriteLine("| goal (issue 17) | measured | met |");
        Console.WriteLine("|---|---|---|");
        foreach (var workload in workloads)
        {
            var ratio = Closed(workload.Model, "interactive", r => r.PerSecond) / Inline(workload.Model, r => r.PerSecond);
            Console.WriteLine($"| interactive throughput ≥ 0.5 × inline, {workload.Model} | {F2(ratio)} × | {(ratio >= 0.5 ? "yes" : "no")} |");
        }

        Console.WriteLine($"| open-loop p99 < 5 ms, mlp-test interactive | {F2(mlpOpenP99)} ms | {(mlpOpenP99 < 5 ? "yes" : "no")} |");
    }

    private static void PrintBooks(Dictionary<string, EventCounts> books)
    {
        Console.WriteLine();
        Console.WriteLine("| recorded exactly once (mt_events, every job submitted, warm-ups included) | jobs | no submission | > 1 submission | no ending | > 1 ending |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (path, counts) in books)
        {
            Console.WriteLine($"| {path} | {counts.Jobs} | {counts.NoSubmission} | {counts.ManySubmissions} | {counts.NoEnding} | {counts.ManyEndings} |");
        }

        Console.WriteLine();
        Console.WriteLine(books.Values.All(b => b.ExactlyOnce)
            ? "every job recorded exactly once: yes"
            : "every job recorded exactly once: NO (see the counts above)");
    }

    private static string Latencies(List<SyncRun> runs) =>
        $"{F2(Median(runs, r => r.P(50)))} / {F2(Median(runs, r => r.P(90)))} / {F2(Median(runs, r => r.P(99)))}";

    /// <summary>The share of all answers (every round) that the interactive path served.</summary>
    private static string Share(List<SyncRun> runs)
    {
        var answers = runs.Sum(r => r.Answers.Count);
        return answers == 0 ? "—" : string.Create(CultureInfo.InvariantCulture, $"{100.0 * runs.Sum(r => r.Served(BenchPath.Interactive)) / answers:F1}%");
    }

    /// <summary>The median over rounds, through the same histogram as every percentile here (<see cref="Measures.Percentile"/>).</summary>
    private static double Median<T>(IEnumerable<T> runs, Func<T, double> value) => Measures.Percentile(runs.Select(value), 50);

    private static string F2(double value) => value.ToString("F2", CultureInfo.InvariantCulture);
}
