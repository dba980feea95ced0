using CqrsInference.Api.Http;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;
using CqrsInference.Projections.Analytics;
using Marten;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Analytics;

/// <summary>Shadow runs for the platform operator: per model, shadow version and hour or day, how often the shadow agreed with the primary and how fast each ran.</summary>
internal static class ShadowAnalyticsApi
{
    /// <summary>
    /// One bucket of a model's shadow version: jobs compared, the share identical on every output
    /// (<c>agreementRate</c>) and per output (<c>outputs</c>), shadow runs that failed, and run-time
    /// p50/p95 of the primary (its batch run) and of the shadow (its run alone).
    /// </summary>
    public sealed record ShadowRow(
        DateTimeOffset Bucket, string Model, string ShadowVersion, long Compared, long Identical, double? AgreementRate,
        IReadOnlyDictionary<string, double?> Outputs, long Failed,
        double? PrimaryRunP50Ms, double? PrimaryRunP95Ms, double? ShadowRunP50Ms, double? ShadowRunP95Ms);

    public static RouteGroupBuilder MapShadowAnalytics(this RouteGroupBuilder analytics)
    {
        analytics.MapGet("/shadow", ShadowAsync)
            .WithStoreDeadline().WithName("ShadowComparison")
            .WithSummary("Shadow runs per model, shadow version and hour or day: jobs compared, agreement rate overall and per output, failed shadow runs, run-time p50/p95 of primary and shadow (the platform operator's)")
            .WithDescription("?model (optional), from&to (ISO 8601; default the last 24 h), bucket=hour|day. A job agrees when every output agrees by the "
                + "shadow version's comparison rules in the manifest. The primary's run time is its batch's, the shadow's its run alone. Percentiles are histogram bucket upper bounds (25% resolution).")
            .WithProblems(AnalyticsApi.InvalidQuery)
            .RequirePolicy(ApiPolicies.Operator);
        return analytics;
    }

    public static async Task<Results<Ok<List<ShadowRow>>, ProblemHttpResult>> ShadowAsync(
        IQuerySession session, TimeProvider clock, string? model, string? from, string? to, string? bucket, CancellationToken ct)
    {
        var (range, _, daily, errors) = AnalyticsApi.ParseQuery(from, to, "model", bucket, ["model"], clock);
        if (model is not null && !Commands.Models.Naming.IsToken(model))
        {
            errors["model"] = [$"model must be {Commands.Models.Naming.TokenRule}."];
        }

        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        var query = session.Query<ShadowComparison>().Where(c => c.Hour >= range.From && c.Hour < range.To);
        if (model is not null)
        {
            query = query.Where(c => c.Model == model);
        }

        var rows = (await query.ToListAsync(ct))
            .GroupBy(c => (Bucket: daily ? new DateTimeOffset(c.Hour.UtcDateTime.Date, TimeSpan.Zero) : c.Hour, c.Model, c.ShadowVersion))
            .Select(g => Row(g.Key.Bucket, g.Key.Model, g.Key.ShadowVersion, [.. g]))
            .OrderBy(r => r.Bucket).ThenBy(r => r.Model, StringComparer.Ordinal).ThenBy(r => r.ShadowVersion, StringComparer.Ordinal)
            .ToList();
        return TypedResults.Ok(rows);
    }

    private static ShadowRow Row(DateTimeOffset bucket, string model, string shadowVersion, IReadOnlyList<ShadowComparison> hours)
    {
        var compared = hours.Sum(h => h.Compared);
        var identical = hours.Sum(h => h.Identical);
        double? Rate(long agreed) => compared == 0 ? null : Math.Round((double)agreed / compared, 6);
        var outputs = hours.SelectMany(h => h.Agreed).GroupBy(p => p.Key, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => Rate(g.Sum(p => p.Value)), StringComparer.Ordinal);
        var primary = Histogram.Merge(hours.Select(h => h.PrimaryRunMs));
        var shadow = Histogram.Merge(hours.Select(h => h.ShadowRunMs));
        return new ShadowRow(bucket, model, shadowVersion, compared, identical, Rate(identical), outputs, hours.Sum(h => h.Failed),
            Histogram.Percentile(primary, 50), Histogram.Percentile(primary, 95), Histogram.Percentile(shadow, 50), Histogram.Percentile(shadow, 95));
    }
}
