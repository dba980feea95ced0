using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;

namespace CqrsInference.Bench;

/// <summary>
/// One synchronous request's answer: its latency (request → answer), whether the job finished
/// (succeeded within the request), which path served it (<c>servedBy</c>) and the job's id (null
/// for the inline baseline, and for a request that got no answer).
/// </summary>
internal readonly record struct Answer(double Ms, bool Finished, string? ServedBy, Guid? Id);

/// <summary>A run of synchronous requests: throughput and every answer.</summary>
internal sealed record SyncRun(double PerSecond, IReadOnlyList<Answer> Answers)
{
    /// <summary>The latency at percentile <paramref name="p"/> of the requests that finished, in ms.</summary>
    public double P(double p) => Measures.Percentile(Answers.Where(a => a.Finished).Select(a => a.Ms), p);

    /// <summary>Requests that did not end with a succeeded job in the answer (no answer, an error, a 202 or a failed job).</summary>
    public int Unfinished => Answers.Count(a => !a.Finished);

    public int Served(string path) => Answers.Count(a => a.ServedBy == path);

    public IEnumerable<Guid> Ids => Answers.Where(a => a.Id is not null).Select(a => a.Id!.Value);
}

/// <summary>
/// Load for request → answer paths (the inline baseline, and <c>POST /v1/jobs?wait=</c>): closed
/// loop (a fixed number of callers, each sending its next request when the last is answered) and
/// open loop (requests leave at a fixed rate whether earlier ones were answered or not).
/// </summary>
internal static class SyncLoad
{
    public static async Task<SyncRun> ClosedLoopAsync(int jobs, int concurrency, Func<int, Task<Answer>> send)
    {
        var answers = new Answer[jobs];
        var next = -1;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < jobs)
            {
                answers[i] = await send(i);
            }
        }));
        return new SyncRun(jobs / wall.Elapsed.TotalSeconds, answers);
    }

    public static async Task<SyncRun> OpenLoopAsync(double rate, TimeSpan duration, Func<int, Task<Answer>> send)
    {
        var count = Math.Max(1, (int)(rate * duration.TotalSeconds));
        var sends = new List<Task<Answer>>(count);
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var due = TimeSpan.FromSeconds(i / rate) - Stopwatch.GetElapsedTime(start);
            if (due > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(due);
            }

            var index = i;
            sends.Add(Task.Run(() => send(index)));
        }

        var answers = await Task.WhenAll(sends);
        return new SyncRun(count / Stopwatch.GetElapsedTime(start).TotalSeconds, answers);
    }

    /// <summary>A request to the inline baseline (<see cref="InlineBaseline"/>).</summary>
    public static Func<int, Task<Answer>> Inline(HttpClient http, Func<int, string> body) => async i =>
    {
        var started = Stopwatch.GetTimestamp();
        using var response = await http.PostAsync("/infer", new StringContent(body(i), Encoding.UTF8, "application/json"));
        return new Answer(Stopwatch.GetElapsedTime(started).TotalMilliseconds, response.IsSuccessStatusCode, null, null);
    };

    /// <summary>A synchronous submit (<c>POST /v1/jobs?wait=</c>); a request that gets no answer counts as unfinished.</summary>
    public static Func<int, Task<Answer>> Submit(HttpClient http, string wait, Func<int, string> body) => async i =>
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var response = await http.PostAsync($"/v1/jobs?wait={wait}", new StringContent(body(i), Encoding.UTF8, "application/json"));
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.Accepted))
            {
                return new Answer(ms, false, null, null);
            }

            using var job = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync());
            var root = job.RootElement;
            var servedBy = root.TryGetProperty("servedBy", out var served) ? served.GetString() : null;
            var finished = response.StatusCode == HttpStatusCode.OK && root.GetProperty("status").GetString() == "succeeded";
            return new Answer(ms, finished, servedBy, root.GetProperty("id").GetGuid());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new Answer(Stopwatch.GetElapsedTime(started).TotalMilliseconds, false, null, null);
        }
    };
}
