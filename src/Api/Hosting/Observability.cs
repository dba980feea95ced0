using CqrsInference.Api.Security;
using System.Diagnostics.Metrics;
using CqrsInference.Commands;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using Marten;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace CqrsInference.Api.Hosting;

internal static class Observability
{
    /// <summary>
    /// OpenTelemetry: the system's meter and activity source, ASP.NET Core's HTTP metrics and spans,
    /// and Prometheus at <c>/metrics</c>. Traces go to whatever listener is configured (none by
    /// default; an OTLP exporter is a one-line addition where a collector exists).
    /// </summary>
    public static IServiceCollection AddObservability(this IServiceCollection services, Roles roles)
    {
        services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddMeter(Telemetry.Name)
                .AddAspNetCoreInstrumentation()
                .AddPrometheusExporter())
            .WithTracing(tracing => tracing
                .AddSource(Telemetry.Name)
                .AddAspNetCoreInstrumentation());
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
/// </summary>
internal sealed partial class QueueGauges(INatsJSContext js, JobQueues queues, ModelCatalog catalog, IDocumentStore store, Projections.EventStoreFacts facts, ILogger<QueueGauges> logger) : BackgroundService
{
    private volatile IReadOnlyList<Measurement<long>> _depth = [];
    private volatile IReadOnlyList<Measurement<double>> _oldest = [];
    private volatile IReadOnlyList<Measurement<long>> _inFlight = [];
    private volatile IReadOnlyList<Measurement<long>> _lag = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Telemetry.Meter.CreateObservableGauge("cqrsi.queue.depth", () => _depth, description: "Jobs in a model's queue per region (waiting and in flight)");
        Telemetry.Meter.CreateObservableGauge("cqrsi.queue.oldest_age", () => _oldest, unit: "s", description: "Age of the oldest job in a model's queue per region");
        Telemetry.Meter.CreateObservableGauge("cqrsi.queue.in_flight", () => _inFlight, description: "Jobs delivered to processors and not yet acknowledged");
        Telemetry.Meter.CreateObservableGauge("cqrsi.projection.lag", () => _lag, description: "Events an async roll-up is behind the event log");
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        try
        {
            do
            {
                try
                {
                    await RefreshAsync(stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogRefreshFailed(logger, e.Message);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
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
                var first = await stream.GetAsync(new StreamMsgGetRequest { NextBySubj = queue.Queue.Filter, Seq = 1 }, ct);
                times.Add(first.Message.Time);
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

    [LoggerMessage(LogLevel.Debug, "Refreshing queue gauges failed: {Reason}")]
    private static partial void LogRefreshFailed(ILogger logger, string reason);
}
