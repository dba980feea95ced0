using CqrsInference.Api.Security;
using System.Diagnostics.Metrics;
using CqrsInference.Commands;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using Marten;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using CqrsInference.Projections.Recording;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace CqrsInference.Api.Hosting;

internal static class Observability
{
    /// <summary>NATS.Net's own activity source and meter (messaging semantic conventions).</summary>
    public const string NatsInstrumentation = "NATS.Net";

    /// <summary>The setting (environment variable) that turns the OTLP exporter on, as the OpenTelemetry SDK names it.</summary>
    public const string OtlpEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// OpenTelemetry: the system's meter and activity source; ASP.NET Core's, HttpClient's, Npgsql's
    /// and NATS.Net's own metrics; Prometheus at <c>/metrics</c>. With
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> set, traces, metrics and logs also go to that collector
    /// over OTLP (<c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, <c>OTEL_METRIC_EXPORT_INTERVAL</c>, … as the
    /// SDK reads them), and the libraries' spans are recorded too.
    /// </summary>
    public static IServiceCollection AddObservability(this IServiceCollection services, IConfiguration configuration, Roles roles)
    {
        var otlp = !string.IsNullOrWhiteSpace(configuration[OtlpEndpoint]);
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource
                .AddService("cqrsinference", serviceInstanceId: $"{Environment.MachineName}-{Environment.ProcessId}")
                .AddAttributes([new("cqrsi.roles", roles.ToString())]))
            .WithMetrics(metrics => metrics
                .AddMeter(Telemetry.Name, NatsInstrumentation)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddNpgsqlInstrumentation()
                .AddPrometheusExporter())
            .WithTracing(tracing =>
            {
                tracing.AddSource(Telemetry.Name).AddAspNetCoreInstrumentation();
                if (otlp)
                {
                    // A span per NATS message and per SQL command is worth its cost only where a
                    // collector keeps it.
                    tracing.AddSource(NatsInstrumentation).AddHttpClientInstrumentation().AddNpgsql();
                }
            });
        if (otlp)
        {
            telemetry.UseOtlpExporter();
        }

        if (roles.Api)
        {
            services.AddHostedService<QueueGauges>();
        }

        return services;
    }

    public static WebApplication MapMetrics(this WebApplication app)
    {
        // Names every region, model and worker in use: the operator's (Prometheus sends its key as a bearer token).
        app.MapPrometheusScrapingEndpoint("/metrics").RequirePolicy(ApiPolicies.Operator);
        return app;
    }
}

/// <summary>
/// Gauges read from JetStream and Marten every few seconds: queue depth and oldest-job age per
/// model and region, jobs in flight per model, and how far each async roll-up lags the event log.
/// They describe the whole deployment, not this process, so one API process reports them at a
/// time: the holder of a PostgreSQL advisory lock (<c>cqrsi-queue-gauges:&lt;schema&gt;</c>, as the
/// recorders lead); the others report none, and one of them takes over when the holder goes.
/// </summary>
internal sealed partial class QueueGauges(
    INatsJSContext js, JobQueues queues, ModelCatalog catalog, IDocumentStore store, Projections.EventStoreFacts facts, RecorderOptions recorder, ILogger<QueueGauges> logger,
    OutageWatches? watches = null)
    : BackgroundService
{
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("queue gauges");

    public static readonly TimeSpan Every = TimeSpan.FromSeconds(2);

    private volatile IReadOnlyList<Measurement<long>> _depth = [];
    private volatile IReadOnlyList<Measurement<double>> _oldest = [];
    private volatile IReadOnlyList<Measurement<long>> _inFlight = [];
    private volatile IReadOnlyList<Measurement<long>> _lag = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Telemetry.Meter.CreateObservableGauge("cqrsi.queue.depth", () => _depth, "{job}", "Jobs in a model's queue per region (waiting and in flight)");
        Telemetry.Meter.CreateObservableGauge("cqrsi.queue.oldest_age", () => _oldest, "s", "Age of the oldest job in a model's queue per region");
        Telemetry.Meter.CreateObservableGauge("cqrsi.queue.in_flight", () => _inFlight, "{job}", "Jobs delivered to processors and not yet acknowledged");
        Telemetry.Meter.CreateObservableGauge("cqrsi.projection.lag", () => _lag, "{event}", "Events an async roll-up is behind the event log");
        var again = Retries.Restart(Every, _ => true, f => Failed(f.Exception));
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await again.ExecuteAsync(ReportWhileLeadingAsync, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Waits for the lock, then refreshes the gauges every <see cref="Every"/> until it is lost or the host stops.</summary>
    private async ValueTask ReportWhileLeadingAsync(CancellationToken stoppingToken)
    {
        await using var lease = await RecorderLease.AcquireAsync(recorder.ConnectionString, recorder.Schema, $"cqrsi-queue-gauges:{recorder.Schema}", logger, stoppingToken, _watch);
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, lease.Lost);
        using var timer = new PeriodicTimer(Every);
        try
        {
            do
            {
                try
                {
                    await RefreshAsync(leading.Token);
                    _watch.Worked();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Failed(e);
                }
            }
            while (await timer.WaitForNextTickAsync(leading.Token));
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // The lock is lost: whoever holds it now reports.
        }
        finally
        {
            (_depth, _oldest, _inFlight, _lag) = ([], [], [], []);
        }
    }

    /// <summary>A server away: logged once per outage (the watch); anything else each time.</summary>
    private void Failed(Exception e)
    {
        if (Projections.Outages.IsOutage(e))
        {
            _watch.Failed(e);
        }
        else
        {
            LogRefreshFailed(logger, e.Message);
        }
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        var states = await queues.ListAsync(model: null, ct);
        var stream = await js.GetStreamAsync(NatsTopology.JobsStream, cancellationToken: ct);
        var depth = new List<Measurement<long>>();
        var oldest = new List<Measurement<double>>();
        foreach (var group in states.GroupBy(q => (q.Queue.Model, q.Queue.Region)))
        {
            KeyValuePair<string, object?>[] tags = [new("model", group.Key.Model), new("region", group.Key.Region)];
            depth.Add(new Measurement<long>(group.Sum(q => q.Waiting + q.InFlight), tags));
            var times = new List<DateTimeOffset>();
            foreach (var queue in group.Where(q => q.Waiting + q.InFlight > 0))
            {
                if (await OldestAsync(stream, queue.Queue.Filter, ct) is { } stored)
                {
                    times.Add(stored);
                }
            }

            if (times.Count > 0)
            {
                oldest.Add(new Measurement<double>(Math.Max(0, (DateTimeOffset.UtcNow - times.Min()).TotalSeconds), tags));
            }
        }

        var inFlight = catalog.All
            .Select(m => new Measurement<long>(states.Where(q => q.Queue.Model == m.Name).Sum(q => q.InFlight), new KeyValuePair<string, object?>("model", m.Name)))
            .ToList();

        var highest = await facts.HighestSequenceAsync(ct);
        var lag = (await store.Advanced.AllProjectionProgress(token: ct))
            .Where(p => p.ShardName != "HighWaterMark")
            .Select(p => new Measurement<long>(Math.Max(0, highest - p.Sequence), new KeyValuePair<string, object?>("projection", p.ShardName)))
            .ToList();
        (_depth, _oldest, _inFlight, _lag) = (depth, oldest, inFlight, lag);
    }

    /// <summary>
    /// When the oldest message of a queue was stored; null when it has none any more: a processor
    /// took the last one after the queue's counts were read (the server's "no message found", a
    /// routine race, not a server away).
    /// </summary>
    private const int NoMessageFound = 10037; // JetStream's error code; a missing stream (10059) is not this

    internal static async Task<DateTimeOffset?> OldestAsync(INatsJSStream stream, string filter, CancellationToken ct)
    {
        try
        {
            return (await stream.GetAsync(new StreamMsgGetRequest { NextBySubj = filter, Seq = 1 }, ct)).Message.Time;
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == NoMessageFound)
        {
            return null;
        }
    }

    [LoggerMessage(LogLevel.Debug, "Refreshing queue gauges failed: {Reason}")]
    private static partial void LogRefreshFailed(ILogger logger, string reason);
}
