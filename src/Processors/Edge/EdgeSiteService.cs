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
/// leaves the site. An item the site cannot read (malformed, too large, refused by a model) ends
/// with one <see cref="V1.EdgeItemFailed"/> instead, and the items behind it go on. An item is
/// marked done in the local checkpoint only after all of its events are stored; an item redone
/// after a crash republishes the same message ids, which the stream drops.
/// </summary>
internal sealed partial class EdgeSiteService(
    INatsJSContext js,
    ModelCatalog catalog,
    EdgeSiteOptions options,
    TimeProvider clock,
    ILogger<EdgeSiteService> logger,
    EdgeLoopWatch loop,
    OutageWatches? watches = null) : BackgroundService
{
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("edge site");
    private readonly string _worker = $"{Environment.MachineName}-{Environment.ProcessId}";
    private EdgeInput? _input;
    private EdgeStreamMark? _mark;
    private bool _siteStreamUnsure;
    private string? _warnedHeldBack;
    private EdgeItemAnalyzer? _analyzer;
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

        var checkpoint = EdgeCheckpoint.Open(Path.Combine(options.StateDirectory, "done.log"));
        _input = EdgeInput.Open(options.InputDirectory, options.StateDirectory, checkpoint, options.SettleTime);
        _mark = EdgeStreamMark.Open(options.StateDirectory);
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var analyzer = _analyzer = new EdgeItemAnalyzer(
            new SpeechDetector(new InferenceSession(catalog.PathOf(model.File), sessionOptions), options),
            () => TextLineReader.Create(catalog, options.TextModel),
            options,
            logger);
        await EnsureStreamAsync(stoppingToken);
        var raw = options.Mqtt ? new EdgeRawQueue(js, options) : null;
        if (raw is not null)
        {
            await RetryAsync("creating the raw-input stream", async () =>
            {
                await raw.EnsureAsync(stoppingToken);
                return true;
            }, stoppingToken);
        }

        LogServing(logger, options.Name, options.InputDirectory, checkpoint.Count);
        await RunAsync(raw, stoppingToken);
    }

    private async Task RunAsync(EdgeRawQueue? raw, CancellationToken stoppingToken)
    {
        var lastBeat = clock.GetTimestamp();
        while (!stoppingToken.IsCancellationRequested)
        {
            loop.Looked();
            var pending = _input!.Pending(clock.GetUtcNow(), out var waiting);
            WarnIfHeldBack(waiting - pending.Count);
            foreach (var item in pending)
            {
                loop.Took(item.ItemId);
                if (stoppingToken.IsCancellationRequested || !await ProcessWithRetryAsync(item, stoppingToken))
                {
                    break;
                }

                loop.Finished();
                if (clock.GetElapsedTime(lastBeat) >= options.HeartbeatInterval)
                {
                    lastBeat = await HeartbeatAsync(lastBeat, waiting, stoppingToken);
                }
            }

            var fromMqtt = raw is null ? 0 : await ProcessRawAsync(raw, stoppingToken);
            if (clock.GetElapsedTime(lastBeat) >= options.HeartbeatInterval)
            {
                lastBeat = await HeartbeatAsync(lastBeat, waiting, stoppingToken);
                await CheckRawAsync(raw, stoppingToken);
            }

            if (fromMqtt == 0)
            {
                await Task.Delay(options.PollInterval, clock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>
    /// Raw items that arrived over MQTT: each is processed like a file (one on a topic the site does
    /// not read fails), and leaves the site's raw queue only after its events are stored. Its item id
    /// carries its sequence in the raw stream, so an item redone after a crash republishes the same
    /// message ids. Returns how many were done; 0 after a failure (the loop waits before it looks again).
    /// </summary>
    private async Task<int> ProcessRawAsync(EdgeRawQueue raw, CancellationToken ct)
    {
        var done = 0;
        try
        {
            await foreach (var message in raw.WaitingAsync(ct))
            {
                var parts = message.Subject.Split('.');
                var kind = parts.Length == 5 ? parts[3] : "";
                var itemId = EdgeRawQueue.ItemId(message, parts.Length == 5 ? parts[4] : "item", kind);
                loop.Took(itemId);
                var now = clock.GetUtcNow();
                var analysis = parts.Length == 5
                    ? _analyzer!.Analyse(itemId, $".{kind}", message.Data, now)
                    : EdgeItemAnalyzer.Unreadable(EdgeItemAnalyzer.UnknownKind, message.Data.Length, EdgeErrorCodes.UnsupportedItem,
                        $"Topic {EdgeInput.ItemIdOf(message.Subject)} is not cqrsi/<site>/raw/<wav|png|jpg|jpeg>/<item>.");
                await PublishAsync(itemId, analysis, now, ct);
                await raw.DoneAsync(message, ct);
                loop.Finished();
                done++;
            }
        }
        catch (Exception e) when (e is NatsException or TimeoutException or IOException && !ct.IsCancellationRequested)
        {
            // The site's own server is away, or its stream gone (made again before the next
            // publish), or the state directory cannot be written: what was not deleted is taken again.
            _siteStreamUnsure |= e is NatsException;
            _watch.Failed(e);
            return 0;
        }

        return done;
    }

    /// <summary>Until it succeeds: the site's own nats-server may be starting, restarting or electing.</summary>
    private Task<T> RetryAsync<T>(string what, Func<Task<T>> action, CancellationToken ct) =>
        RetryAsync(what, action, e => e is NatsException or TimeoutException, ct);

    private async Task<T> RetryAsync<T>(string what, Func<Task<T>> action, Func<Exception, bool> handles, CancellationToken ct)
    {
        var done = await Retries.Forever(
                TimeSpan.FromMilliseconds(100),
                TimeSpan.FromSeconds(2),
                handles,
                f =>
                {
                    // The site's server away: logged once per outage (the watch); a file that cannot be read yet each time.
                    if (f.Exception is IOException)
                    {
                        LogRetry(logger, what, f.Attempt, f.Exception.Message);
                        return ValueTask.CompletedTask;
                    }

                    // A publish that fails twice: its stream may be what is gone; made again before the next try.
                    _watch.Failed(f.Exception);
                    _siteStreamUnsure |= f.Attempt >= 2 && f.Exception is NatsException;
                    return ValueTask.CompletedTask;
                })
            .ExecuteAsync(async _ => await action(), ct);
        _watch.Worked();
        return done;
    }

    /// <summary>Processes one item, retrying while the site's own nats-server is unreachable; false when stopping.</summary>
    private async Task<bool> ProcessWithRetryAsync(RawItem item, CancellationToken ct)
    {
        try
        {
            // A file being written or moved may fail to read for a moment (IOException), as may the site's server.
            await RetryAsync(
                item.ItemId,
                async () =>
                {
                    await ProcessAsync(item, ct);
                    return true;
                },
                e => e is NatsException or TimeoutException or IOException && e is not (FileNotFoundException or DirectoryNotFoundException),
                ct);
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // Taken away before it was read: nothing to do, nothing to hold up the rest for.
            LogGone(logger, item.ItemId);
            return true;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task ProcessAsync(RawItem item, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var analysis = await ReadAsync(item.Path, ct) switch
        {
            (_, { } refused) => refused,
            var (raw, _) => _analyzer!.Analyse(item.ItemId, Path.GetExtension(item.Path), raw, now),
        };
        await PublishAsync(item.ItemId, analysis, now, ct);

        // Only now is the item done: everything it produced is stored in the site's stream.
        _input!.Done(item);
    }

    /// <summary>
    /// The file's bytes, or why it is not read: larger than the limit, a link to nothing, or the site
    /// may not read it. An empty file is not opened (a named pipe, which reads as empty, would hold
    /// the whole site waiting for a writer): it is read as no bytes, which no kind of item accepts.
    /// </summary>
    private async Task<(byte[] Raw, ItemAnalysis? Refused)> ReadAsync(string file, CancellationToken ct)
    {
        var kind = EdgeItemAnalyzer.KindOf(Path.GetExtension(file)) ?? EdgeItemAnalyzer.UnknownKind;
        try
        {
            var info = new FileInfo(file);
            if (info.LinkTarget is { } target && info.ResolveLinkTarget(returnFinalTarget: true) is not { Exists: true })
            {
                return ([], EdgeItemAnalyzer.Unreadable(kind, 0, EdgeErrorCodes.FileUnreadable, $"The file is a link to {target}, which does not exist."));
            }

            info = info.LinkTarget is null ? info : (FileInfo)info.ResolveLinkTarget(returnFinalTarget: true)!;
            return _analyzer!.RefuseSize(kind, info.Length) is { } tooLarge ? ([], tooLarge)
                : info.Length == 0 ? ([], null)
                : (await File.ReadAllBytesAsync(file, ct), null);
        }
        catch (UnauthorizedAccessException e)
        {
            return ([], EdgeItemAnalyzer.Unreadable(kind, 0, EdgeErrorCodes.FileUnreadable, e.Message));
        }
    }

    /// <summary>An item's detections then its <see cref="V1.EdgeItemProcessed"/>, or its <see cref="V1.EdgeItemFailed"/> alone.</summary>
    private async Task PublishAsync(string itemId, ItemAnalysis analysis, DateTimeOffset now, CancellationToken ct)
    {
        await MakeSiteStreamIfUnsureAsync(ct);
        if (analysis is ItemAnalysis.Unreadable failed)
        {
            LogUnreadable(logger, itemId, failed.Code, failed.Reason);
            _mark!.Reserve(1);
            await PublishEventAsync(new V1.EdgeItemFailed(options.Name, itemId, failed.Kind, failed.RawBytes, failed.Code, failed.Reason, now), "items", ct);
            return;
        }

        var read = (ItemAnalysis.Read)analysis;
        _mark!.Reserve(read.Detections.Count + 1);
        long eventBytes = 0;
        foreach (var detection in read.Detections)
        {
            eventBytes += await PublishEventAsync(detection, detection is V1.EdgeTextRead ? "text" : "speech", ct);
        }

        var done = new V1.EdgeItemProcessed(options.Name, itemId, read.Kind, read.RawBytes, read.Detections.Count, eventBytes, Math.Round(read.BusySeconds, 6), now);
        eventBytes += await PublishEventAsync(done, "items", ct);
        _busySinceHeartbeat += read.BusySeconds;
        LogProcessed(logger, itemId, read.RawBytes, read.Detections.Count, eventBytes);
    }
}
