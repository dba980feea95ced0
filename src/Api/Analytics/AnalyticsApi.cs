using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using CqrsInference.Projections.Analytics;
using CqrsInference.Api.OpenApi;
using Marten;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Analytics;

/// <summary>
/// Answers from the async roll-ups (never from the event table): usage and cost per hour or day by
/// model, region, tenant and device class; processor utilization; and how far the roll-ups lag.
/// JSON, or CSV with <c>Accept: text/csv</c>.
/// </summary>
internal static class AnalyticsApi
{
    public static readonly IReadOnlyList<string> UsageDimensions = ["model", "region", "tenant", "device"];
    public static readonly IReadOnlyList<string> UtilizationDimensions = ["worker", "region", "device"];

    public sealed record UsageRow(
        DateTimeOffset Bucket, string? Model, string? Region, string? Tenant, string? Device,
        long Submitted, long Succeeded, long Failed, double BusySeconds, decimal Cost,
        double? QueueWaitP50Ms, double? QueueWaitP95Ms, double? QueueWaitP99Ms,
        double? RunP50Ms, double? RunP95Ms, double? RunP99Ms, double? MeanBatchSize, long Overflowed = 0, double FailedBusySeconds = 0);

    public sealed record UtilizationRow(
        DateTimeOffset Bucket, string Key, double OnlineSeconds, double SlotSeconds, double BusySeconds, double? BusyPercent);

    public sealed record ProjectionLag(string Projection, long Sequence, long Behind);

    public sealed record LagReport(long HighestSequence, IReadOnlyList<ProjectionLag> Projections);

    public static IEndpointRouteBuilder MapAnalyticsApi(this IEndpointRouteBuilder app)
    {
        var analytics = app.MapGroup("/v1/analytics").WithTags("Analytics");
        analytics.MapGet("/usage", UsageAsync)
            .WithStoreDeadline().WithName("Usage")
            .WithSummary("Jobs, device time, cost and latency percentiles per hour or day, grouped by model, region, tenant and/or device class")
            .WithDescription("?from&to (ISO 8601; default the last 24 h), groupBy=model,region,tenant,device (default model), bucket=hour|day. "
                + "Busy seconds: every run's share of its batch, failed runs too (failedBusySeconds of them). "
                + "Cost = busy seconds × Analytics:PricePerHour[device] / 3600 (the current prices; the invoice prices each run at its time). Percentiles are histogram bucket upper bounds (25% resolution). "
                + "An analyst sees its own tenant; the platform operator sees all.")
            .ProducesCsv()
            .WithProblems(InvalidQuery)
            .RequirePolicy(ApiPolicies.Analyst);
        analytics.MapGet("/utilization", UtilizationAsync)
            .WithStoreDeadline().WithName("Utilization")
            .WithSummary("Processor online, slot and busy seconds and busy % per hour or day, grouped by worker, region or device class (the platform operator's)")
            .ProducesCsv()
            .WithProblems(InvalidQuery)
            .RequirePolicy(ApiPolicies.Operator);
        analytics.MapGet("/processors", async (IQuerySession session, CancellationToken ct) =>
                TypedResults.Ok((await session.Query<ProcessorStatus>().OrderBy(p => p.Worker).ToListAsync(ct)).ToList()))
            .WithName("Processors")
            .WithStoreDeadline()
            .WithSummary("Every processor seen: region, device class, slots, online or not (and why not), first and last sign of life (the platform operator's)")
            .RequirePolicy(ApiPolicies.Operator);
        analytics.MapGet("/queues", QueuesAsync).WithName("Queues")
            .WithSummary("Jobs in each model's queue per region: waiting, and delivered but not yet acknowledged (in flight); an analyst sees its own tenant's queues")
            .RequirePolicy(ApiPolicies.Analyst);
        analytics.MapGet("/lag", LagAsync).WithName("ProjectionLag")
            .WithSummary("How far each roll-up is behind the event log (the platform operator's)")
            .RequirePolicy(ApiPolicies.Operator);
        analytics.MapEdgeAnalytics();
        analytics.MapCostAnalytics();
        analytics.MapShadowAnalytics();
        return app;
    }

    internal static readonly (int, string) InvalidQuery = (StatusCodes.Status422UnprocessableEntity,
        "from, to, groupBy or bucket is not valid (from before to, at most 400 days); 'errors' names each.");

    public static async Task<Results<Ok<List<UsageRow>>, ContentHttpResult, ProblemHttpResult>> UsageAsync(
        HttpContext http, ApiCaller caller, IQuerySession session, AnalyticsOptions options, TimeProvider clock,
        string? from, string? to, string? groupBy, string? bucket, CancellationToken ct)
    {
        var (range, dimensions, daily, errors) = ParseQuery(from, to, groupBy ?? "model", bucket, UsageDimensions, clock);
        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        var query = session.Query<UsageBucket>().Where(u => u.Hour >= range.From && u.Hour < range.To);
        if (!caller.IsOperator)
        {
            query = query.Where(u => u.Tenant == caller.Tenant);
        }

        var buckets = await query.ToListAsync(ct);
        var rows = buckets
            .GroupBy(u => (
                Bucket: daily ? new DateTimeOffset(u.Hour.UtcDateTime.Date, TimeSpan.Zero) : u.Hour,
                Model: dimensions.Contains("model") ? u.Model : null,
                Region: dimensions.Contains("region") ? u.Region : null,
                Tenant: dimensions.Contains("tenant") ? u.Tenant : null,
                Device: dimensions.Contains("device") ? u.Device : null))
            .Select(g =>
            {
                var waits = Histogram.Merge(g.Select(u => u.QueueWaitMs));
                var runs = Histogram.Merge(g.Select(u => u.RunMs));
                var succeeded = g.Sum(u => u.Succeeded);
                var cost = g.Sum(u => (decimal)u.BusySeconds * options.PricePerHour.GetValueOrDefault(u.Device) / 3600m);
                return new UsageRow(g.Key.Bucket, g.Key.Model, g.Key.Region, g.Key.Tenant, g.Key.Device,
                    g.Sum(u => u.Submitted), succeeded, g.Sum(u => u.Failed), Math.Round(g.Sum(u => u.BusySeconds), 6), Math.Round(cost, Projections.Pricing.Invoice.CostDecimals),
                    Histogram.Percentile(waits, 50), Histogram.Percentile(waits, 95), Histogram.Percentile(waits, 99),
                    Histogram.Percentile(runs, 50), Histogram.Percentile(runs, 95), Histogram.Percentile(runs, 99),
                    succeeded == 0 ? null : Math.Round((double)g.Sum(u => u.BatchSizeSum) / succeeded, 3),
                    g.Sum(u => u.Overflowed), Math.Round(g.Sum(u => u.FailedBusySeconds), 6));
            })
            .OrderBy(r => r.Bucket).ThenBy(r => r.Model).ThenBy(r => r.Region).ThenBy(r => r.Tenant).ThenBy(r => r.Device)
            .ToList();
        return CsvExport.Wanted(http) ? CsvExport.Of(rows) : TypedResults.Ok(rows);
    }

    public static async Task<Results<Ok<List<UtilizationRow>>, ContentHttpResult, ProblemHttpResult>> UtilizationAsync(
        HttpContext http, IQuerySession session, TimeProvider clock, string? from, string? to, string? groupBy, string? bucket, CancellationToken ct)
    {
        var (range, dimensions, daily, errors) = ParseQuery(from, to, groupBy ?? "worker", bucket, UtilizationDimensions, clock);
        if (dimensions.Count > 1)
        {
            errors["groupBy"] = ["Group utilization by one of: worker, region, device."];
        }

        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        var dimension = dimensions[0];
        var usage = await session.Query<ProcessorUsage>().Where(u => u.Hour >= range.From && u.Hour < range.To).ToListAsync(ct);
        var rows = usage
            .GroupBy(u => (
                Bucket: daily ? new DateTimeOffset(u.Hour.UtcDateTime.Date, TimeSpan.Zero) : u.Hour,
                Key: dimension switch { "region" => u.Region, "device" => u.Device, _ => u.Worker }))
            .Select(g =>
            {
                var slotSeconds = g.Sum(u => u.SlotSeconds);
                var busy = g.Sum(u => u.BusySeconds);
                return new UtilizationRow(g.Key.Bucket, g.Key.Key, Math.Round(g.Sum(u => u.OnlineSeconds), 6), Math.Round(slotSeconds, 6),
                    Math.Round(busy, 6), slotSeconds > 0 ? Math.Round(100 * busy / slotSeconds, 3) : null);
            })
            .OrderBy(r => r.Bucket).ThenBy(r => r.Key)
            .ToList();
        return CsvExport.Wanted(http) ? CsvExport.Of(rows) : TypedResults.Ok(rows);
    }

    /// <summary>A model's queues in one region: jobs waiting (all, interactive, batch), in flight, and how many tenants have jobs waiting.</summary>
    public sealed record QueueDepth(string Model, string Region, long Waiting, long InFlight, long InteractiveWaiting = 0, long BatchWaiting = 0, int TenantsWaiting = 0);

    public static async Task<Ok<List<QueueDepth>>> QueuesAsync(ApiCaller caller, Messaging.JobQueues queues, Commands.Models.ModelCatalog catalog, CancellationToken ct)
    {
        // Every queue (region × priority × tenant) of a model has its own consumer, which counts
        // the jobs waiting and those delivered to processors and not yet acknowledged. A tenant's
        // analyst sees its own queues only.
        var states = (await queues.ListAsync(model: null, ct)).Where(q => caller.IsOperator || q.Queue.Tenant == caller.Tenant).ToList();
        return TypedResults.Ok(QueueDepths(states, catalog));
    }

    /// <summary>The queues' states summed per model and region (every model of the catalog, a row with region "-" for one without queues); the dashboard's live stream sends the same rows.</summary>
    public static List<QueueDepth> QueueDepths(IReadOnlyList<Messaging.QueueState> states, Commands.Models.ModelCatalog catalog)
    {
        var rows = new List<QueueDepth>();
        foreach (var model in catalog.All.OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            var regions = states.Where(q => q.Queue.Model == model.Name).GroupBy(q => q.Queue.Region).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
            if (regions.Count == 0)
            {
                rows.Add(new QueueDepth(model.Name, "-", 0, 0));
            }

            rows.AddRange(regions.Select(g => new QueueDepth(
                model.Name, g.Key, g.Sum(q => q.Waiting), g.Sum(q => q.InFlight),
                g.Where(q => q.Queue.Priority == Commands.Jobs.Submitting.Priorities.Interactive).Sum(q => q.Waiting),
                g.Where(q => q.Queue.Priority == Commands.Jobs.Submitting.Priorities.Batch).Sum(q => q.Waiting),
                g.Where(q => q.Waiting > 0).Select(q => q.Queue.Tenant).Distinct().Count())));
        }

        return rows;
    }

    public static async Task<Ok<LagReport>> LagAsync(IDocumentStore store, Projections.EventStoreFacts facts, CancellationToken ct)
    {
        var highest = await facts.HighestSequenceAsync(ct);
        var progress = await store.Advanced.AllProjectionProgress(token: ct);
        return TypedResults.Ok(new LagReport(highest, progress
            .Where(p => p.ShardName != "HighWaterMark")
            .Select(p => new ProjectionLag(p.ShardName, p.Sequence, Math.Max(0, highest - p.Sequence)))
            .OrderBy(p => p.Projection, StringComparer.Ordinal)
            .ToList()));
    }

    internal static ((DateTimeOffset From, DateTimeOffset To) Range, List<string> Dimensions, bool Daily, Dictionary<string, string[]> Errors) ParseQuery(
        string? from, string? to, string groupBy, string? bucket, IReadOnlyList<string> allowed, TimeProvider clock)
    {
        var errors = new Dictionary<string, string[]>();
        var now = clock.GetUtcNow();
        DateTimeOffset Parse(string? value, string field, DateTimeOffset fallback)
        {
            if (value is null)
            {
                return fallback;
            }

            if (Http.Timestamps.TryParseUtc(value, out var parsed))
            {
                if (Http.Timestamps.InRange(parsed))
                {
                    return parsed;
                }

                errors[field] = [$"{field} must be {Http.Timestamps.RangeRule}."];
                return fallback;
            }

            errors[field] = [$"{field} must be {Http.Timestamps.Rule}."];
            return fallback;
        }

        var end = Parse(to, "to", now);
        var start = Parse(from, "from", end.AddDays(-1));
        if (start >= end)
        {
            errors["from"] = ["from must be before to."];
        }
        else if (end - start > TimeSpan.FromDays(400))
        {
            errors["to"] = ["The range may span at most 400 days."];
        }

        var dimensions = groupBy.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(d => d.ToLowerInvariant()).Distinct().ToList();
        if (dimensions.Count == 0 || dimensions.Any(d => !allowed.Contains(d)))
        {
            errors["groupBy"] = [$"groupBy must list some of: {string.Join(", ", allowed)}."];
        }

        if (bucket is not (null or "hour" or "day"))
        {
            errors["bucket"] = ["bucket must be hour or day."];
        }

        return ((UsageBucket.HourOf(start), end), dimensions, bucket == "day", errors);
    }
}
