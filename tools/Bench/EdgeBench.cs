using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Processors.Edge;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace CqrsInference.Bench;

/// <summary>
/// Edge sites (issue 8): one site (its own nats-server, a leaf node of the core with domain
/// <c>bench1</c>) runs Silero VAD over spoken clips. Measures raw bytes in against event bytes out
/// with the link up, then cuts the link (stops the core's nats-server) for a given time while the
/// site keeps producing, restores it, and times how long the backlog takes to drain into the core's
/// read model.
/// </summary>
internal static class EdgeBench
{
    private const string Site = "bench1";

    public static async Task<int> RunAsync(BenchSettings settings, int items, int outageSeconds)
    {
        var edgeNats = Environment.GetEnvironmentVariable("BENCH_EDGE_NATS") ?? throw new InvalidOperationException("BENCH_EDGE_NATS is not set (run bench.sh edge)");
        var clipsDirectory = Environment.GetEnvironmentVariable("BENCH_EDGE_CLIPS") ?? throw new InvalidOperationException("BENCH_EDGE_CLIPS is not set");
        var benchDirectory = Environment.GetEnvironmentVariable("BENCH_DIR") ?? throw new InvalidOperationException("BENCH_DIR is not set");
        var clips = Directory.GetFiles(clipsDirectory, "*.wav").Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        var input = Path.Combine(benchDirectory, "edge", "input");
        var state = Path.Combine(benchDirectory, "edge", "state");
        Directory.CreateDirectory(input);

        await using var core = await AppProcess.StartAsync(settings, "api,projections", "ready", new Dictionary<string, string> { ["Edge__Sites__0__Name"] = Site });
        await using var edge = await AppProcess.StartAsync(settings, "edge", "Serving edge site", new Dictionary<string, string>
        {
            ["Nats__Url"] = edgeNats,
            ["EdgeSite__Name"] = Site,
            ["EdgeSite__InputDirectory"] = input,
            ["EdgeSite__StateDirectory"] = state,
            ["EdgeSite__HeartbeatInterval"] = "00:00:05",
            ["EdgeSite__PollInterval"] = "00:00:00.050",
        });
        using var http = settings.CreateClient();
        var fed = new List<(long Bytes, double AudioSeconds)>();
        void Feed(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var clip = clips[fed.Count % clips.Count];
                var name = $"item-{fed.Count:D6}.wav";
                File.WriteAllBytes(Path.Combine(benchDirectory, "edge", name), clip);
                File.Move(Path.Combine(benchDirectory, "edge", name), Path.Combine(input, name));
                fed.Add((clip.Length, WavFile.ReadMono16k(clip).Length / (double)WavFile.TargetRate));
            }
        }

        // 1. Link up: raw bytes in vs event bytes out, and how fast items reach the core.
        Console.WriteLine($"link up: {items} spoken clips ({clips.Count} distinct, espeak-ng) to site {Site}");
        var watch = Stopwatch.StartNew();
        Feed(items);
        var site = await WaitForItemsAsync(http, items, TimeSpan.FromMinutes(5));
        var linkUp = watch.Elapsed;
        var raw = site.GetProperty("rawBytes").GetInt64();
        var sent = site.GetProperty("eventBytes").GetInt64();
        var segments = site.GetProperty("speechSegments").GetInt64();

        // 2. The link goes (the core's nats-server stops); the site keeps producing at a steady rate.
        Console.WriteLine($"outage: core nats-server stopped for {outageSeconds} s while the site gets {items} more clips");
        await RunLibAsync("cqrsi_stop_nats \"$BENCH_DIR/nats\"");
        var outage = Stopwatch.StartNew();
        for (var i = 0; i < items; i++)
        {
            Feed(1);
            var due = TimeSpan.FromSeconds(outageSeconds * 0.8 * (i + 1) / items);
            if (outage.Elapsed < due)
            {
                await Task.Delay(due - outage.Elapsed);
            }
        }

        while (DoneCount(state) < 2 * items)
        {
            await Task.Delay(50);
        }

        var producedAfter = outage.Elapsed;
        if (outage.Elapsed < TimeSpan.FromSeconds(outageSeconds))
        {
            await Task.Delay(TimeSpan.FromSeconds(outageSeconds) - outage.Elapsed);
        }

        var backlog = await SiteStreamAsync(edgeNats);

        // 3. The link comes back: time until the core's read model holds every item.
        await RunLibAsync("CQRSI_NATS_EXTRA_CONF=\"$BENCH_CORE_NATS_EXTRA\" cqrsi_start_nats \"$BENCH_DIR/nats\" \"$BENCH_NATS_PORT\" \"$BENCH_NATS_MONITOR_PORT\"");
        var drain = Stopwatch.StartNew();
        var leafUp = WhenAsync(drain, async () =>
        {
            using var monitor = new HttpClient();
            var leafz = await monitor.GetFromJsonAsync<JsonElement>($"http://127.0.0.1:{Environment.GetEnvironmentVariable("BENCH_NATS_MONITOR_PORT")}/leafz");
            return leafz.GetProperty("leafnodes").GetInt32() > 0;
        });
        var sourced = WhenAsync(drain, async () =>
        {
            await using var nats = new NatsClient(settings.NatsUrl);
            var stream = await nats.CreateJetStreamContext().GetStreamAsync(EdgeTopology.CoreStream, new StreamInfoRequest());
            return (long)stream.Info.State.Messages >= backlog.Messages;
        });
        TimeSpan? first = null;
        JsonElement after;
        while (true)
        {
            after = await SiteAsync(http);
            var count = after.ValueKind == JsonValueKind.Object ? after.GetProperty("items").GetInt64() : 0;
            first ??= count > items ? drain.Elapsed : null;
            if (count >= 2 * items)
            {
                break;
            }

            if (drain.Elapsed > TimeSpan.FromMinutes(5))
            {
                throw new TimeoutException($"The backlog did not drain in 5 minutes ({count} of {2 * items} items).\n{core.Output}");
            }

            await Task.Delay(20);
        }

        var drained = drain.Elapsed;
        var backlogEvents = after.GetProperty("speechSegments").GetInt64() - segments + items;
        var audio = fed.Take(items).Sum(f => f.AudioSeconds);
        Console.WriteLine();
        Console.WriteLine("| metric | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| sample feed | {items} WAV clips, {audio:F1} s of speech audio (espeak-ng, 22.05 kHz 16-bit mono) |");
        Console.WriteLine($"| raw bytes in (kept at the site) | {raw:N0} B |");
        Console.WriteLine($"| event bytes out (subject + headers + JSON of {segments} speech + {items} item events) | {sent:N0} B |");
        Console.WriteLine($"| raw : event bytes | {(double)raw / sent:F0} : 1 ({100.0 * sent / raw:F2}% of the raw bytes cross the link) |");
        Console.WriteLine($"| link up: feed → all {items} items in the core's read model | {linkUp.TotalSeconds:F2} s ({items / linkUp.TotalSeconds:F0} items/s, {audio / linkUp.TotalSeconds:F0}× real time) |");
        Console.WriteLine($"| outage | {outageSeconds} s; the site produced {items} more items in {producedAfter.TotalSeconds:F1} s |");
        Console.WriteLine($"| backlog at reconnect | {backlogEvents} events ({items} items) waiting in EDGE_{Site}; the site's stream holds {backlog.Messages} messages, {backlog.Bytes:N0} B in all |");
        Console.WriteLine($"| core nats-server restart → leaf link up again | {(await leafUp).TotalSeconds:F2} s |");
        Console.WriteLine($"| core nats-server restart → whole backlog sourced into the core's CQRSI_EDGE | {(await sourced).TotalSeconds:F2} s |");
        Console.WriteLine($"| reconnect → first backlog item in the read model | {first?.TotalSeconds:F2} s |");
        Console.WriteLine($"| reconnect → whole backlog in the read model (drain) | {drained.TotalSeconds:F2} s ({((drained - (first ?? drained)).TotalSeconds is var spread && spread > 0.05 ? $"{backlogEvents / spread:F0} events/s after the first" : "all in the first batches")}) |");
        return 0;
    }

    /// <summary>When (on <paramref name="clock"/>) the probe first holds; probe failures count as not yet.</summary>
    private static async Task<TimeSpan> WhenAsync(Stopwatch clock, Func<Task<bool>> probe)
    {
        while (clock.Elapsed < TimeSpan.FromMinutes(5))
        {
            try
            {
                if (await probe())
                {
                    return clock.Elapsed;
                }
            }
            catch (Exception e) when (e is HttpRequestException or NATS.Client.Core.NatsException or TimeoutException)
            {
            }

            await Task.Delay(20);
        }

        return TimeSpan.MaxValue;
    }

    private static async Task<JsonElement> WaitForItemsAsync(HttpClient http, int count, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var site = await SiteAsync(http);
            if (site.ValueKind == JsonValueKind.Object && site.GetProperty("items").GetInt64() >= count)
            {
                return site;
            }

            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"The core did not record {count} items of {Site} in {timeout}.");
            }

            await Task.Delay(20);
        }
    }

    private static async Task<JsonElement> SiteAsync(HttpClient http)
    {
        try
        {
            var sites = await http.GetFromJsonAsync<JsonElement>("/v1/analytics/edge/sites");
            return sites.EnumerateArray().FirstOrDefault(s => s.GetProperty("site").GetString() == Site);
        }
        catch (HttpRequestException)
        {
            return default;
        }
    }

    private static int DoneCount(string state)
    {
        var path = Path.Combine(state, "done.log");
        return File.Exists(path) ? File.ReadAllLines(path).Length : 0;
    }

    private static async Task<(long Messages, long Bytes)> SiteStreamAsync(string url)
    {
        await using var nats = new NatsClient(url);
        var stream = await nats.CreateJetStreamContext().GetStreamAsync(EdgeTopology.SiteStream(Site), new StreamInfoRequest());
        return ((long)stream.Info.State.Messages, (long)stream.Info.State.Bytes);
    }

    /// <summary>
    /// Runs a scripts/lib.sh function (the same start and stop the scripts use), up to 3 times: on a
    /// loaded machine <c>cqrsi_start_nats</c> can see the monitor port answer before the server has
    /// written its pid file, and it is safe to repeat.
    /// </summary>
    private static async Task RunLibAsync(string command)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var process = Process.Start(new ProcessStartInfo("bash", ["-c", $"source scripts/lib.sh && {command}"]))!;
            await process.WaitForExitAsync();
            if (process.ExitCode == 0)
            {
                return;
            }

            if (attempt == 3)
            {
                throw new InvalidOperationException($"'{command}' failed with exit code {process.ExitCode}");
            }

            await Task.Delay(500);
        }
    }
}
