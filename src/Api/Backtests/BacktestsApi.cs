using CqrsInference.Api.Http;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Backtests;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Projections.Analytics;
using CqrsInference.Projections.Backtests;
using Marten;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Backtests;

/// <summary>The body of <c>POST /v1/admin/backtests</c>; times are RFC 3339 text, read here so a bad one names its field.</summary>
[System.Text.Json.Serialization.JsonUnmappedMemberHandling(System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow)]
public sealed record StartBacktestRequest(string? Model, string? CandidateVersion, string? From, string? To, string[]? Tenants, int? Limit);

/// <summary>Run times of one side of a backtest: percentiles of the compared jobs' run times, and device-seconds and their cost at today's price.</summary>
public sealed record BacktestSide(double? RunP50Ms, double? RunP95Ms, double DeviceSeconds, decimal Cost);

/// <summary>A backtest as <c>GET /v1/admin/backtests/{id}</c> answers it.</summary>
public sealed record BacktestView(
    Guid Id, string Status, string Model, string CandidateVersion, DateTimeOffset From, DateTimeOffset To, IReadOnlyList<string>? Tenants, int Limit,
    DateTimeOffset RequestedAt, string RequestedBy, DateTimeOffset? StartedAt, DateTimeOffset? EndedAt, string? FailReason, string? CandidateDevice,
    int Compared, int Identical, int Different, double? IdenticalPercent, IReadOnlyDictionary<string, int> Skipped, IReadOnlyList<BacktestDifference> Examples,
    BacktestSide Recorded, BacktestSide Candidate, decimal CostDifference)
{
    public static BacktestView Of(BacktestReport r, AnalyticsOptions prices) => new(
        r.Id, r.Status, r.Model, r.CandidateVersion, r.From, r.To, r.Tenants, r.Limit, r.RequestedAt, r.RequestedBy, r.StartedAt, r.EndedAt, r.FailReason,
        r.CandidateDevice, r.Compared, r.Identical, r.Different, r.Compared == 0 ? null : Math.Round(100.0 * r.Identical / r.Compared, 3),
        r.Skipped ?? new Dictionary<string, int>(), r.Examples ?? [], Side(r.RecordedRunMs, r.RecordedDeviceSeconds, prices),
        Side(r.CandidateRunMs, r.CandidateDeviceSeconds, prices),
        Side(r.CandidateRunMs, r.CandidateDeviceSeconds, prices).Cost - Side(r.RecordedRunMs, r.RecordedDeviceSeconds, prices).Cost);

    private static BacktestSide Side(IReadOnlyList<double>? runMs, IReadOnlyDictionary<string, double>? deviceSeconds, AnalyticsOptions prices)
    {
        var sorted = (runMs ?? []).Order().ToList();
        double? Percentile(double p) => sorted.Count == 0 ? null : Math.Round(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)], 3);
        var seconds = deviceSeconds ?? new Dictionary<string, double>();
        return new BacktestSide(Percentile(0.50), Percentile(0.95), Math.Round(seconds.Values.Sum(), 6),
            seconds.Sum(p => (decimal)p.Value * prices.PricePerHour.GetValueOrDefault(p.Key) / 3600m));
    }
}

internal static class BacktestsApi
{
    public static IEndpointRouteBuilder MapBacktestsApi(this IEndpointRouteBuilder app)
    {
        var backtests = app.MapGroup("/v1/admin/backtests").WithTags("Admin").RequirePolicy(ApiPolicies.Operator);
        backtests.MapPost("", StartAsync)
            .WithStoreDeadline().WithName("StartBacktest")
            .WithSummary("Run the recorded inputs of a model's succeeded jobs submitted in [from, to) again on a candidate version, at low priority, and report how often and how its answers differ")
            .WithDescription("Body: {model, candidateVersion, from, to, tenants?, limit?} (limit 1 to 10000, default 1000). The platform operator's role only. "
                + "Answers 202 with the backtest's id; its progress and report are at the Location. With an Idempotency-Key, a retry of the same request "
                + "answers the backtest the key started (202) instead of starting another; the key with another request is 409.")
            .WithResponseHeader(StatusCodes.Status202Accepted, "Location", "The backtest's address, /v1/admin/backtests/{id}.")
            .WithProblems((StatusCodes.Status422UnprocessableEntity, "A field is missing or wrong (unknown model or version, from not before to, limit out of range, a bad tenant), or the Idempotency-Key header is empty or given twice; 'errors' names each."),
                (StatusCodes.Status409Conflict, "The Idempotency-Key started another backtest, with a different request."));
        backtests.MapGet("/{id:guid}", GetAsync)
            .WithStoreDeadline().WithName("GetBacktest").WithSummary("A backtest's progress and report")
            .WithProblems((StatusCodes.Status404NotFound, "There is no such backtest."));
        backtests.MapGet("", ListAsync)
            .WithStoreDeadline().WithName("ListBacktests").WithSummary("The latest backtests, newest first (?limit, 1 to 200, default 50)")
            .WithProblems((StatusCodes.Status422UnprocessableEntity, "limit is out of range."));
        return app;
    }

    public static async Task<Results<Accepted<BacktestView>, ProblemHttpResult>> StartAsync(
        StartBacktestRequest request, HttpRequest http, ApiCaller caller, ModelCatalog catalog, IDocumentSession session, AnalyticsOptions prices, TimeProvider clock, CancellationToken ct)
    {
        var (key, keyProblem) = Http.IdempotencyKeyHeader.Read(http);
        if (keyProblem is not null)
        {
            return keyProblem;
        }

        var (from, to, timeErrors) = (Time(request.From), Time(request.To), new Dictionary<string, string[]>());
        foreach (var (field, text, parsed) in new[] { ("from", request.From, from), ("to", request.To, to) })
        {
            if (text is not null && parsed is null)
            {
                timeErrors[field] = [$"{field} '{text}' is not {Http.Timestamps.Rule}."];
            }
        }

        var errors = BacktestRules.Errors(catalog, request.Model, request.CandidateVersion, from, to, request.Tenants, request.Limit);
        foreach (var (field, messages) in timeErrors)
        {
            errors[field] = messages;
        }

        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        // With a key, its backtest's id: a retry (after a 503 that may have stored it) finds it.
        var id = key is null ? Guid.CreateVersion7(clock.GetUtcNow()) : DeterministicGuid.Create(KeyedBacktests, key);
        var requested = new V1.BacktestRequested(id, request.Model!, request.CandidateVersion!, from!.Value, to!.Value,
            request.Tenants?.Distinct().ToList(), request.Limit ?? BacktestRules.DefaultLimit, clock.GetUtcNow(), caller.KeyId);
        if (key is not null && await session.LoadAsync<BacktestReport>(id, ct) is { } earlier)
        {
            return Again(earlier, requested, prices);
        }

        session.Events.StartStream<BacktestReport>(id, requested);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (key is not null && Projections.ConcurrentWrites.LostRace(e))
        {
            // The same key at once: the other request started it.
            await using var reread = session.DocumentStore.QuerySession();
            return Again((await reread.Events.AggregateStreamAsync<BacktestReport>(id, token: ct))!, requested, prices);
        }

        return TypedResults.Accepted($"/v1/admin/backtests/{id}", BacktestView.Of(BacktestReportProjection.Create(requested), prices));
    }

    /// <summary>Where the backtests started with an Idempotency-Key get their ids.</summary>
    private static readonly Guid KeyedBacktests = new("6f2b7c1e-4d0a-4e55-9a8e-3c1f0b9d2a71");

    /// <summary>A keyed start again: the backtest it started if the request is the same, else 409.</summary>
    private static Results<Accepted<BacktestView>, ProblemHttpResult> Again(BacktestReport earlier, V1.BacktestRequested requested, AnalyticsOptions prices) =>
        (earlier.Model, earlier.CandidateVersion, earlier.From, earlier.To, earlier.Limit, string.Join(",", earlier.Tenants ?? []))
            == (requested.Model, requested.CandidateVersion, requested.From, requested.To, requested.Limit, string.Join(",", requested.Tenants ?? []))
            ? TypedResults.Accepted($"/v1/admin/backtests/{earlier.Id}", BacktestView.Of(earlier, prices))
            : TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Idempotency-Key reused",
                detail: $"This Idempotency-Key already started backtest {earlier.Id} with a different request.");

    public static async Task<Results<Ok<BacktestView>, ProblemHttpResult>> GetAsync(Guid id, IQuerySession session, AnalyticsOptions prices, CancellationToken ct) =>
        await session.LoadAsync<BacktestReport>(id, ct) is { } report
            ? TypedResults.Ok(BacktestView.Of(report, prices))
            : Http.Problems.NotFound("Backtest not found", $"There is no backtest {id}.");

    public static async Task<Results<Ok<IReadOnlyList<BacktestView>>, ProblemHttpResult>> ListAsync(IQuerySession session, AnalyticsOptions prices, CancellationToken ct, int? limit = null)
    {
        if (limit is < 1 or > 200)
        {
            return Http.Problems.Validation("limit", "limit must be 1 to 200.");
        }

        var reports = await session.Query<BacktestReport>().OrderByDescending(b => b.RequestedAt).Take(limit ?? 50).ToListAsync(ct);
        return TypedResults.Ok<IReadOnlyList<BacktestView>>([.. reports.Select(r => BacktestView.Of(r, prices))]);
    }

    private static DateTimeOffset? Time(string? text) => Http.Timestamps.TryParseUtc(text, out var t) ? t : null;
}
