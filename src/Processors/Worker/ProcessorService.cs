using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Fetching;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NATS.Client.JetStream;

namespace CqrsInference.Processors.Worker;

/// <summary>
/// The processor role: loads and warms each model, then runs one <see cref="ModelWorker"/> per
/// model, each choosing among that model's queues (per-model isolation and backpressure).
/// </summary>
internal sealed partial class ProcessorService(
    ModelCatalog catalog,
    RunnerFactory runners,
    WorkerFactory workers,
    InteractiveServer interactive,
    NatsEventLog log,
    INatsJSContext js,
    ProcessorOptions options,
    TimeProvider clock,
    ILoggerFactory loggers,
    OutageWatches? watches = null) : BackgroundService
{
    private readonly ILogger _logger = loggers.CreateLogger<ProcessorService>();
    private readonly OutageWatch _heartbeats = (watches ?? OutageWatches.Detached()).For("processor heartbeat");
    private readonly List<ModelWorker> _workers = [];

    private IReadOnlyList<IReadOnlyList<ModelDefinition>> _selected = [];

    public IReadOnlyList<ModelWorker> Workers => _workers;

    /// <summary>Checks <c>Processor:Models</c> against the manifest before the host reports started: an entry it cannot serve refuses the start, as a bad setting does.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            _selected = ServedVersions.Select(catalog, options.Models, runners.IsAvailable, shadows: options.ShadowQueue > 0);
        }
        catch (InvalidOperationException e)
        {
            throw new OptionsValidationException("Processor:Models", typeof(ProcessorOptions), [e.Message]);
        }

        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var selected = _selected;
        LogOverflowMode(_logger, js.Connection.ServerInfo?.Version ?? "unknown", OverflowMode.Describe(js.Connection.ServerInfo?.Version));
        var running = new List<Task>();
        var loaded = new List<IModelRunner>();
        try
        {
            foreach (var versions in selected)
            {
                var worker = workers.Create(await LoadAsync(versions, loaded, stoppingToken));
                _workers.Add(worker);
                if (options.Interactive)
                {
                    await interactive.AddAsync(worker, stoppingToken);
                }

                LogServing(_logger, worker.Model, string.Join(", ", worker.Versions), worker.Device, worker.Capacity, options.ResolveWorkerId());
                Telemetry.CountFromZero(worker.Model, options.Region);
                running.Add(worker.RunAsync(stoppingToken));
            }

            var workerId = options.ResolveWorkerId();
            var deviceClass = options.DeviceClass ?? _workers.FirstOrDefault()?.Device ?? "cpu";
            var slots = _workers.Sum(w => w.SlotCount);
            await PublishAsync(new V1.ProcessorOnline(workerId, options.Region, deviceClass, slots, selected.Select(m => m[0].Name).ToList(), clock.GetUtcNow()), CancellationToken.None);
            var beating = HeartbeatAsync(workerId, deviceClass, slots, stoppingToken);
            var serving = ServeInteractiveAsync(stoppingToken);
            await Task.WhenAll(running);
            await Task.WhenAll(beating, serving);

            // Drained: the last heartbeat counts the final busy time, then say goodbye.
            using var last = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await HeartbeatOnceAsync(workerId, deviceClass, slots, last.Token);
            await PublishAsync(new V1.ProcessorOffline(workerId, clock.GetUtcNow(), "shutdown"), last.Token);
        }
        finally
        {
            foreach (var runner in loaded)
            {
                runner.Dispose();
            }
        }
    }

    /// <summary>Loads and warms a runner per version of one model (each sized for every slot: any slot may run any version).</summary>
    private async Task<List<(ModelDefinition, IModelRunner)>> LoadAsync(IReadOnlyList<ModelDefinition> versions, List<IModelRunner> loaded, CancellationToken ct)
    {
        var slots = options.Slots ?? versions.Max(v => v.Slots);
        var created = new List<(ModelDefinition, IModelRunner)>(versions.Count);
        foreach (var version in versions)
        {
            var runner = await Task.Run(() => runners.Create(version, slots), ct);
            loaded.Add(runner);
            await Task.Run(runner.WarmUp, ct);
            created.Add((version, runner));
        }

        return created;
    }

    /// <summary>Answers interactive jobs (<see cref="InteractiveServer"/>) until stopping: then no new ones are taken, while the workers drain.</summary>
    private async Task ServeInteractiveAsync(CancellationToken stoppingToken)
    {
        await using (interactive)
        {
            await Task.Delay(Timeout.Infinite, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private long _lastBeat;
    private TimeSpan _lastBusy;

    private async Task HeartbeatAsync(string worker, string deviceClass, int slots, CancellationToken ct)
    {
        _lastBeat = clock.GetTimestamp();
        using var timer = new PeriodicTimer(options.HeartbeatInterval, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                await HeartbeatOnceAsync(worker, deviceClass, slots, ct);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task HeartbeatOnceAsync(string worker, string deviceClass, int slots, CancellationToken ct)
    {
        var now = clock.GetTimestamp();
        var busy = _workers.Aggregate(TimeSpan.Zero, (sum, w) => sum + w.BusyTime);
        var beat = new V1.ProcessorHeartbeat(worker, options.Region, deviceClass, slots, clock.GetUtcNow(),
            clock.GetElapsedTime(_lastBeat, now).TotalSeconds, (busy - _lastBusy).TotalSeconds);
        (_lastBeat, _lastBusy) = (now, busy);
        try
        {
            await PublishAsync(beat, ct);
            _heartbeats.Worked();
        }
        catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException)
        {
            // NATS away: logged once per outage; the next heartbeat covers this interval too.
            _heartbeats.Failed(e);
        }
        catch (OperationCanceledException e)
        {
            LogHeartbeatFailed(_logger, e.Message);
        }
    }

    private Task PublishAsync(object @event, CancellationToken ct) => log.AppendProcessorEventAsync(@event, ct);

    [LoggerMessage(LogLevel.Warning, "Heartbeat not published: {Reason}")]
    private static partial void LogHeartbeatFailed(ILogger logger, string reason);

    [LoggerMessage(LogLevel.Information, "Connected to nats-server {Version}: {Overflow}")]
    private static partial void LogOverflowMode(ILogger logger, string version, string overflow);

    [LoggerMessage(LogLevel.Information, "Serving {Model} (versions {Versions}) on {Device} with capacity {Capacity} as {Worker}")]
    private static partial void LogServing(ILogger logger, string model, string versions, string device, int capacity, string worker);
}

/// <summary>
/// Which overflow a server allows. nats-server 2.11 added priority groups (policy <c>overflow</c>,
/// <c>min_pending</c>); 2.9 and 2.10 accept those consumer fields and silently ignore them, so the
/// version decides, never the configuration's acceptance.
/// </summary>
internal static class OverflowMode
{
    public static bool ServerHasPriorityGroups(string? version) =>
        Version.TryParse(version?.Split('-', '+')[0], out var parsed) && parsed >= new Version(2, 11);

    public static string Describe(string? version) => ServerHasPriorityGroups(version)
        ? "it has priority groups (2.11+), but this build emulates overflow in the client on every server version"
            + " (the native path is not built: no 2.11 server was available to test it)"
        : "no priority groups before 2.11: overflow is emulated in the client (QueuePlanner)";
}
