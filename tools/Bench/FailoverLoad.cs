using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Messaging;
using NATS.Client.JetStream;

namespace CqrsInference.Bench;

/// <summary>
/// Open-loop submits to both regions' APIs at a fixed rate each; east's stop when east is lost (its
/// clients have nowhere to go until re-pointed). With <c>inferenceMs</c> each job asks the
/// processors (<c>Processor:FaultInjection</c>) to run that much longer, so a backlog builds.
/// </summary>
internal sealed class FailoverLoad(HttpClient east, HttpClient west, int rate, int inferenceMs)
{
    private readonly ConcurrentBag<(Guid Id, string Region, long At)> _accepted = [];
    private readonly ConcurrentDictionary<(string Region, int Status), int> _refused = new();
    private volatile bool _eastStopped;

    public void StopEast() => _eastStopped = true;

    public IReadOnlyDictionary<(string Region, int Status), int> Refused => _refused;

    public int AcceptedIn(string region) => _accepted.Count(a => a.Region == region);

    /// <summary>Jobs accepted (202) before <paramref name="at"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public List<(Guid Id, string Region, long At)> AcceptedBefore(long at) => _accepted.Where(a => a.At < at).ToList();

    public Task RunAsync(CancellationToken ct) => Task.WhenAll(LoopAsync("east", east, ct), LoopAsync("west", west, ct));

    private async Task LoopAsync(string region, HttpClient http, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        var sends = new List<Task>();
        for (var i = 0; !ct.IsCancellationRequested && !(region == "east" && _eastStopped); i++)
        {
            var due = TimeSpan.FromSeconds((double)i / rate) - Stopwatch.GetElapsedTime(start);
            if (due > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(due, CancellationToken.None);
            }

            var body = inferenceMs == 0 ? Measures.MlpBody(i)
                : Measures.MlpBody(i).TrimEnd('}') + $$$""","metadata":{"cqrsi-test-fault":"sleep:{{{inferenceMs}}}"}}""";
            sends.Add(Task.Run(() => SubmitAsync(region, http, body), CancellationToken.None));
        }

        await Task.WhenAll(sends);
    }

    private async Task SubmitAsync(string region, HttpClient http, string body)
    {
        try
        {
            using var response = await http.PostAsync("/v1/jobs", new StringContent(body, Encoding.UTF8, "application/json"));
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
                _accepted.Add((id, region, Stopwatch.GetTimestamp()));
                return;
            }

            _refused.AddOrUpdate((region, (int)response.StatusCode), 1, (_, n) => n + 1);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            _refused.AddOrUpdate((region, 0), 1, (_, n) => n + 1);
        }
    }
}

/// <summary>
/// West's mirror of east's log, sampled every 20 ms: its lag in messages as the mirror reports it
/// (<see cref="RegionFailover.LagAsync"/>), and in time: for each sample, how long until the
/// mirror's last sequence reached the origin's last sequence at that sample (a mirror keeps the
/// origin's sequence numbers), to the sampling period.
/// </summary>
internal sealed record MirrorLag(List<double> Messages, List<double> Milliseconds)
{
    private sealed record Sample(long At, ulong OriginSeq, ulong MirrorSeq, long Lag);

    public static async Task<MirrorLag> SampleAsync(INatsJSContext origin, RegionFailover standby, TimeSpan duration)
    {
        var samples = new List<Sample>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            var at = Stopwatch.GetTimestamp();
            var originSeq = (await origin.GetStreamAsync(NatsTopology.EventsStream)).Info.State.LastSeq;
            var (lag, _, mirrorSeq) = await standby.LagAsync(NatsTopology.EventsStream, "west", CancellationToken.None);
            samples.Add(new Sample(at, originSeq, mirrorSeq, lag));
            await Task.Delay(20);
        }

        var times = new List<double>();
        for (var i = 0; i < samples.Count; i++)
        {
            var caughtUp = samples.Skip(i).FirstOrDefault(s => s.MirrorSeq >= samples[i].OriginSeq);
            if (caughtUp is not null)
            {
                times.Add(Stopwatch.GetElapsedTime(samples[i].At, caughtUp.At).TotalMilliseconds);
            }
        }

        return new MirrorLag(samples.Select(s => (double)s.Lag).ToList(), times);
    }
}

/// <summary>What the failover bench prints: one markdown table.</summary>
internal sealed record FailoverResult(
    MirrorLag Lag, long KilledAt, FailoverBench.Takeover Takeover, long TookOverAt, int Backlog, long ServedAt,
    List<(Guid Id, string Region, long At)> AcceptedBeforeKill, List<(Guid Id, string Region, long At)> Lost, FailoverLoad Load, (int Jobs, long ServedAt) Held)
{
    public void Print()
    {
        var copied = Takeover.Body.GetProperty("copied");
        Console.WriteLine();
        Console.WriteLine("| metric | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| mirror lag (LagAsync) p50 / p99 / max | {Measures.Percentile(Lag.Messages, 50):F0} / {Measures.Percentile(Lag.Messages, 99):F0} / {Lag.Messages.DefaultIfEmpty().Max():F0} messages over {Lag.Messages.Count} samples |");
        Console.WriteLine($"| mirror lag in time p50 / p99 / max (to the 20 ms sampling) | {Measures.Percentile(Lag.Milliseconds, 50):F0} / {Measures.Percentile(Lag.Milliseconds, 99):F0} / {Lag.Milliseconds.DefaultIfEmpty().Max():F0} ms |");
        Console.WriteLine($"| takeover: kill → 200 from POST /v1/admin/failover | {Stopwatch.GetElapsedTime(KilledAt, TookOverAt).TotalSeconds:F1} s (the successful call {Takeover.Call.TotalSeconds:F1} s; refused before it: {Refusals()}) |");
        Console.WriteLine($"| takeover copied | log {(copied.TryGetProperty(NatsTopology.EventsStream, out var log) ? log.GetInt64() : -1)} messages; {Takeover.Body.GetProperty("submissions").GetInt32()} jobs in the copy, {Takeover.Body.GetProperty("endedJobs").GetInt32()} of them ended |");
        Console.WriteLine($"| mirrored backlog (accepted before the kill, no ending seen at the takeover) | {Backlog} jobs |");
        Console.WriteLine($"| backlog served: takeover → last ending | {Stopwatch.GetElapsedTime(TookOverAt, ServedAt).TotalSeconds:F1} s (kill → last ending {Stopwatch.GetElapsedTime(KilledAt, ServedAt).TotalSeconds:F1} s) |");
        Console.WriteLine($"| jobs accepted before the kill (east / west API) | {AcceptedBeforeKill.Count(a => a.Region == "east")} / {AcceptedBeforeKill.Count(a => a.Region == "west")} |");
        Console.WriteLine($"| lost: accepted before the kill, not in west's log at the end (east / west API) | {Lost.Count(a => a.Region == "east")} / {Lost.Count(a => a.Region == "west")} |");
        Console.WriteLine($"| lost jobs accepted within 1 s of the kill | {Lost.Count(a => Stopwatch.GetElapsedTime(a.At, KilledAt) < TimeSpan.FromSeconds(1))} |");
        var afterKill = Load.AcceptedBefore(long.MaxValue).Where(a => a.At >= KilledAt).ToList();
        Console.WriteLine($"| west's submits accepted after the kill: before the takeover answered / after (in flight when the submits stopped) | {afterKill.Count(a => a.At < TookOverAt)} / {afterKill.Count(a => a.At >= TookOverAt)} |");
        Console.WriteLine($"| west's jobs held while east was lost (accepted kill → takeover): takeover → last ending | {Held.Jobs} jobs, {Stopwatch.GetElapsedTime(TookOverAt, Held.ServedAt).TotalSeconds:F1} s |");
        Console.WriteLine($"| west's submits refused, from the kill until the takeover (status×count; 0: no answer) | {string.Join(", ", Load.Refused.Where(r => r.Key.Region == "west").Select(r => $"{r.Key.Status}×{r.Value}").DefaultIfEmpty("none"))} |");
        Console.WriteLine($"| jobs accepted in all (east / west API) | {Load.AcceptedIn("east")} / {Load.AcceptedIn("west")} |");
    }

    private string Refusals() => Takeover.Refusals.Count == 0 ? "none" : string.Join(", ", Takeover.Refusals.Select(r => $"{(r.Key == 0 ? "no answer" : r.Key.ToString(System.Globalization.CultureInfo.InvariantCulture))}×{r.Value}"));
}
