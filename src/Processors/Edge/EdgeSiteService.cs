using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// The edge role: runs inference where the raw data is. Watches the input folder for WAV files
/// (speech found with Silero VAD) and PNG/JPEG frames (a line of text read with PP-OCRv4), and,
/// with <see cref="EdgeSiteOptions.Mqtt"/>, the same items published over MQTT, and
/// publishes the detections, then one
/// <see cref="V1.EdgeItemProcessed"/> per item, to the site's own JetStream (its nats-server, a
/// leaf node of the core), which stores them while the link to the core is down. Raw audio never
/// leaves the site. An item is marked done in the local checkpoint only after all of its events are
/// stored; an item redone after a crash republishes the same message ids, which the stream drops.
/// </summary>
internal sealed partial class EdgeSiteService(
    INatsJSContext js,
    ModelCatalog catalog,
    EdgeSiteOptions options,
    TimeProvider clock,
    ILogger<EdgeSiteService> logger) : BackgroundService
{
    private readonly string _worker = $"{Environment.MachineName}-{Environment.ProcessId}";
    private static readonly string[] Extensions = [".wav", ".png", ".jpg", ".jpeg"];
    private EdgeCheckpoint? _checkpoint;
    private TextLineReader? _reader;
    private double _busySinceHeartbeat;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!EdgeEventNames.IsValidSite(options.Name))
        {
            throw new InvalidOperationException($"EdgeSite:Name must be 1-32 letters, digits, '-' or '_'; got '{options.Name}'.");
        }

        if (!catalog.TryGet(options.Model, out var model))
        {
            throw new InvalidOperationException($"EdgeSite:Model '{options.Model}' is not in the model manifest.");
        }

        Directory.CreateDirectory(options.InputDirectory);
        _checkpoint = EdgeCheckpoint.Open(Path.Combine(options.StateDirectory, "done.log"));
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var detector = new SpeechDetector(new InferenceSession(catalog.PathOf(model.File), sessionOptions), options);
        await EnsureStreamAsync(stoppingToken);
        var raw = options.Mqtt
            ? await RetryAsync("creating the raw-input stream", () => EdgeTopology.EnsureRawAsync(js, options.Name, options.StreamMaxAge, stoppingToken), stoppingToken)
            : null;
        LogServing(logger, options.Name, options.InputDirectory, _checkpoint.Count);
        try
        {
            await RunAsync(detector, raw, stoppingToken);
        }
        finally
        {
            _reader?.Dispose();
        }
    }

    private async Task RunAsync(SpeechDetector detector, INatsJSConsumer? raw, CancellationToken stoppingToken)
    {
        var lastBeat = clock.GetTimestamp();
        while (!stoppingToken.IsCancellationRequested)
        {
            var pending = Pending();
            foreach (var file in pending)
            {
                if (stoppingToken.IsCancellationRequested || !await ProcessWithRetryAsync(detector, file, stoppingToken))
                {
                    break;
                }

                if (clock.GetElapsedTime(lastBeat) >= options.HeartbeatInterval)
                {
                    lastBeat = await HeartbeatAsync(lastBeat, pending.Count, stoppingToken);
                }
            }

            var fromMqtt = raw is null ? 0 : await ProcessRawAsync(detector, raw, stoppingToken);
            if (clock.GetElapsedTime(lastBeat) >= options.HeartbeatInterval)
            {
                lastBeat = await HeartbeatAsync(lastBeat, 0, stoppingToken);
            }

            if (fromMqtt == 0)
            {
                await Task.Delay(options.PollInterval, clock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>Raw items not yet done, in name order (the order the feed wrote them).</summary>
    private List<string> Pending() =>
        Directory.EnumerateFiles(options.InputDirectory)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()) && !_checkpoint!.IsDone(Path.GetFileName(f)))
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// Raw items that arrived over MQTT: each is processed like a file, and acknowledged (leaves the
    /// site's raw queue) only after its events are stored. Its item id carries its sequence in the
    /// raw stream, so a redelivery after a crash republishes the same message ids. Returns how many
    /// were taken.
    /// </summary>
    private async Task<int> ProcessRawAsync(SpeechDetector detector, INatsJSConsumer raw, CancellationToken ct)
    {
        var taken = 0;
        try
        {
            await foreach (var msg in raw.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 16 }, cancellationToken: ct))
            {
                taken++;
                var parts = msg.Subject.Split('.');
                var kind = parts.Length == 5 ? parts[3] : "";
                var itemId = $"mqtt-{msg.Metadata?.Sequence.Stream ?? 0:D12}-{(parts.Length == 5 ? parts[4] : "item")}.{kind}";
                try
                {
                    if (parts.Length != 5 || !Extensions.Contains($".{kind}"))
                    {
                        throw new InvalidDataException($"topic {msg.Subject} is not cqrsi/<site>/raw/<wav|png|jpg|jpeg>/<item>");
                    }

                    await ProcessBytesAsync(detector, itemId, $".{kind}", msg.Data ?? [], ct);
                    await msg.AckAsync(cancellationToken: ct);
                }
                catch (Exception e) when (e is InvalidDataException or UnreadableItemException)
                {
                    LogUnreadable(logger, itemId, e.Message);
                    await msg.AckTerminateAsync(cancellationToken: ct);
                }
            }
        }
        catch (Exception e) when (e is NatsException or TimeoutException && !ct.IsCancellationRequested)
        {
            // The site's own server is away: what was not acknowledged is delivered again.
            LogRetry(logger, "raw input over MQTT", 1, e.Message);
        }

        return taken;
    }

    private async Task<T> RetryAsync<T>(string what, Func<Task<T>> action, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await action();
            }
            catch (Exception e) when (e is NatsException or TimeoutException && !ct.IsCancellationRequested)
            {
                LogRetry(logger, what, attempt, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 100 * attempt)), ct);
            }
        }
    }

    private Task EnsureStreamAsync(CancellationToken ct) =>
        RetryAsync("creating the site stream", async () =>
        {
            await EdgeTopology.EnsureSiteAsync(js, options.Name, options.DuplicateWindow, options.StreamMaxAge, ct);
            return true;
        }, ct);

    /// <summary>Processes one item, retrying while the site's own nats-server is unreachable; false when stopping.</summary>
    private async Task<bool> ProcessWithRetryAsync(SpeechDetector detector, string file, CancellationToken ct)
    {
        for (var attempt = 1; !ct.IsCancellationRequested; attempt++)
        {
            try
            {
                await ProcessAsync(detector, file, ct);
                return true;
            }
            catch (Exception e) when (e is InvalidDataException or UnreadableItemException)
            {
                // A raw item that can never be read: noted as done (with nothing sent), not retried forever.
                LogUnreadable(logger, Path.GetFileName(file), e.Message);
                _checkpoint!.MarkDone(Path.GetFileName(file));
                return true;
            }
            catch (Exception e) when (e is NatsException or TimeoutException or IOException && !ct.IsCancellationRequested)
            {
                LogRetry(logger, Path.GetFileName(file), attempt, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 100 * attempt)), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        return false;
    }

    private async Task ProcessAsync(SpeechDetector detector, string file, CancellationToken ct)
    {
        var itemId = Path.GetFileName(file);
        await ProcessBytesAsync(detector, itemId, Path.GetExtension(file), await File.ReadAllBytesAsync(file, ct), ct);

        // Only now is the item done: everything it produced is stored in the site's stream.
        _checkpoint!.MarkDone(itemId);
    }

    private Task ProcessBytesAsync(SpeechDetector detector, string itemId, string extension, byte[] raw, CancellationToken ct) =>
        extension.Equals(".wav", StringComparison.OrdinalIgnoreCase)
            ? ProcessAudioAsync(detector, itemId, raw, ct)
            : ProcessFrameAsync(itemId, extension, raw, ct);

    private async Task ProcessFrameAsync(string itemId, string extension, byte[] raw, CancellationToken ct)
    {
        _reader ??= TextLineReader.Create(catalog, options.TextModel);
        var started = Stopwatch.GetTimestamp();
        var (text, confidence) = _reader.Read(raw);
        var busy = Stopwatch.GetElapsedTime(started).TotalSeconds;

        var now = clock.GetUtcNow();
        long eventBytes = 0;
        var events = 0;
        if (text.Length > 0 && confidence >= options.MinTextConfidence)
        {
            eventBytes += await EdgeTopology.PublishAsync(js, new V1.EdgeTextRead(options.Name, itemId, text, Math.Round(confidence, 4), now), "text", ct);
            events++;
        }

        var kind = extension.Equals(".png", StringComparison.OrdinalIgnoreCase) ? "image/png" : "image/jpeg";
        eventBytes += await EdgeTopology.PublishAsync(js, new V1.EdgeItemProcessed(options.Name, itemId, kind, raw.Length, events, eventBytes, Math.Round(busy, 6), now), "items", ct);
        _busySinceHeartbeat += busy;
        LogProcessed(logger, itemId, raw.Length, events, eventBytes);
    }

    private async Task ProcessAudioAsync(SpeechDetector detector, string itemId, byte[] raw, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var segments = detector.Detect(WavFile.ReadMono16k(raw));
        var busy = Stopwatch.GetElapsedTime(started).TotalSeconds;

        var now = clock.GetUtcNow();
        long eventBytes = 0;
        for (var i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            eventBytes += await EdgeTopology.PublishAsync(
                js, new V1.EdgeSpeechDetected(options.Name, itemId, i, Math.Round(s.StartSeconds, 3), Math.Round(s.EndSeconds, 3), s.MeanProbability, now), "speech", ct);
        }

        var done = new V1.EdgeItemProcessed(options.Name, itemId, "audio/wav", raw.Length, segments.Count, eventBytes, Math.Round(busy, 6), now);
        eventBytes += await EdgeTopology.PublishAsync(js, done, "items", ct);
        _busySinceHeartbeat += busy;
        LogProcessed(logger, itemId, raw.Length, segments.Count, eventBytes);
    }

    private async Task<long> HeartbeatAsync(long since, int backlog, CancellationToken ct)
    {
        var now = clock.GetTimestamp();
        try
        {
            var beat = new V1.EdgeSiteHeartbeat(options.Name, _worker, clock.GetUtcNow(), Math.Round(clock.GetElapsedTime(since, now).TotalSeconds, 3), Math.Round(_busySinceHeartbeat, 6), backlog);
            await EdgeTopology.PublishAsync(js, beat, "heartbeat", ct);
            _busySinceHeartbeat = 0;
            return now;
        }
        catch (Exception e) when (e is NatsException or TimeoutException && !ct.IsCancellationRequested)
        {
            // The site's own server is down: the next heartbeat covers this interval too.
            LogRetry(logger, "heartbeat", 1, e.Message);
            return since;
        }
    }

    [LoggerMessage(LogLevel.Information, "Serving edge site {Site}: raw feed from {Input}, {Done} items already done")]
    private static partial void LogServing(ILogger logger, string site, string input, int done);

    [LoggerMessage(LogLevel.Debug, "Item {ItemId}: {RawBytes} raw bytes, {Events} detections, {EventBytes} event bytes sent")]
    private static partial void LogProcessed(ILogger logger, string itemId, long rawBytes, int events, long eventBytes);

    [LoggerMessage(LogLevel.Warning, "Edge {What} failed (attempt {Attempt}); retrying: {Reason}")]
    private static partial void LogRetry(ILogger logger, string what, int attempt, string reason);

    [LoggerMessage(LogLevel.Error, "Raw item {ItemId} cannot be read and is skipped: {Reason}")]
    private static partial void LogUnreadable(ILogger logger, string itemId, string reason);
}
