using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using CqrsInference.Projections.Analytics;
using CqrsInference.Api.OpenApi;
using Marten;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Analytics;

/// <summary>Edge sites for analysts: per-site activity, bandwidth saved and utilization, from the async roll-up.</summary>
internal static class EdgeAnalyticsApi
{
    public sealed record EdgeActivityRow(
        DateTimeOffset Bucket, string Site, long Items, long SpeechSegments, double SpeechSeconds, long TextReads,
        long RawBytes, long EventBytes, double? RawToEventRatio, double BusySeconds, double OnlineSeconds, double? BusyPercent, long FailedItems);

    public static RouteGroupBuilder MapEdgeAnalytics(this RouteGroupBuilder analytics)
    {
        analytics.MapGet("/edge", EdgeAsync)
            .WithStoreDeadline().WithName("EdgeActivity")
            .WithSummary("Per edge site and hour or day: raw items processed (and failed), speech found, text read, raw bytes kept at the site vs event bytes sent, busy and online seconds")
            .WithDescription("?from&to (ISO 8601; default the last 24 h), bucket=hour|day, site (optional). rawToEventRatio = rawBytes / eventBytes; "
                + "busyPercent = busySeconds / onlineSeconds. An analyst sees its own tenant's sites.")
            .ProducesCsv()
            .WithProblems(AnalyticsApi.InvalidQuery)
            .RequirePolicy(ApiPolicies.Analyst);
        analytics.MapGet("/edge/sites", async (Security.ApiCaller caller, Messaging.EdgeOptions edge, IQuerySession session, CancellationToken ct) =>
                TypedResults.Ok((await session.Query<EdgeSiteStatus>().OrderBy(s => s.Site).ToListAsync(ct)).Where(s => Sees(caller, edge, s.Site)).ToList()))
            .WithName("EdgeSites")
            .WithStoreDeadline()
            .WithSummary("Every edge site the core has heard from: first and last event, totals (items processed and failed), and the backlog it last reported; an analyst sees its own tenant's sites")
            .RequirePolicy(ApiPolicies.Analyst);
        return analytics;
    }

    /// <summary>A tenant's analyst sees the sites configured for its tenant (Edge:Sites); the operator sees every site.</summary>
    private static bool Sees(Security.ApiCaller caller, Messaging.EdgeOptions edge, string site) =>
        caller.IsOperator || edge.Sites.Any(s => s.Name == site && s.Tenant == caller.Tenant);

    public static async Task<Results<Ok<List<EdgeActivityRow>>, ContentHttpResult, ProblemHttpResult>> EdgeAsync(
        HttpContext http, Security.ApiCaller caller, Messaging.EdgeOptions edge, IQuerySession session, TimeProvider clock,
        string? from, string? to, string? bucket, string? site, CancellationToken ct)
    {
        var (range, _, daily, errors) = AnalyticsApi.ParseQuery(from, to, "site", bucket, ["site"], clock);
        if (site is not null && !Commands.Jobs.EdgeEventNames.IsValidSite(site))
        {
            errors["site"] = ["site must be 1-32 letters, digits, '-' or '_'."];
        }

        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        var query = session.Query<EdgeSiteActivity>().Where(a => a.Hour >= range.From && a.Hour < range.To);
        if (site is not null)
        {
            query = query.Where(a => a.Site == site);
        }

        var rows = (await query.ToListAsync(ct))
            .Where(a => Sees(caller, edge, a.Site))
            .GroupBy(a => (Bucket: daily ? new DateTimeOffset(a.Hour.UtcDateTime.Date, TimeSpan.Zero) : a.Hour, a.Site))
            .Select(g =>
            {
                var raw = g.Sum(a => a.RawBytes);
                var sent = g.Sum(a => a.EventBytes);
                var busy = g.Sum(a => a.BusySeconds);
                var online = g.Sum(a => a.OnlineSeconds);
                return new EdgeActivityRow(g.Key.Bucket, g.Key.Site, g.Sum(a => a.Items), g.Sum(a => a.SpeechSegments), Math.Round(g.Sum(a => a.SpeechSeconds), 3), g.Sum(a => a.TextReads),
                    raw, sent, sent > 0 ? Math.Round((double)raw / sent, 2) : null, Math.Round(busy, 6), Math.Round(online, 3),
                    online > 0 ? Math.Round(100 * busy / online, 3) : null, g.Sum(a => a.FailedItems));
            })
            .OrderBy(r => r.Bucket).ThenBy(r => r.Site, StringComparer.Ordinal)
            .ToList();
        return CsvExport.Wanted(http) ? CsvExport.Of(rows) : TypedResults.Ok(rows);
    }
}
