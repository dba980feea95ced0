using System.Text.Json;
using CqrsInference.Projections.Audit;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Security;

internal static class AuditApi
{
    public const string NdJson = "application/x-ndjson";
    public const int DefaultPage = 1000;
    public const int MaxPage = 10_000;

    public sealed record AuditEventView(long Sequence, Guid StreamId, long Version, string Type, DateTimeOffset Timestamp, JsonElement Data);

    public sealed record AuditPage(IReadOnlyList<AuditEventView> Events, long? NextSequence);

    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        var audit = app.MapGroup("/v1/audit").WithTags("Audit");
        audit.MapGet("/events", ReadEventsAsync).WithName("AuditEvents")
            .WithSummary("The tenant's events in global sequence order, paged (fromSequence, limit) and filtered by time (from, to); NDJSON for exports")
            .WithDescription($"JSON pages of at most {MaxPage} events with nextSequence to resume from; with 'Accept: {NdJson}' every matching event is streamed, one per line.")
            .RequirePolicy(ApiPolicies.Auditor);
        audit.MapGet("/verify", VerifyAsync).WithName("AuditVerify")
            .WithSummary("Recompute the hash chains over the event store and report the first broken link (the platform operator's: the chains span every tenant)")
            .RequirePolicy(ApiPolicies.Operator);
        app.MapPost("/v1/admin/replay", ReplayAsync).WithTags("Admin").WithName("Replay")
            .WithSummary("Rebuild a projection from the event log into fresh tables and compare it with the live read model")
            .RequirePolicy(ApiPolicies.Operator);
        return app;
    }

    public static async Task<Results<Ok<AuditPage>, EmptyHttpResult, ProblemHttpResult>> ReadEventsAsync(
        HttpContext http, ApiCaller caller, AuditFeed feed, long? fromSequence, int? limit, string? from, string? to, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var start = Parse(from, "from", errors);
        var end = Parse(to, "to", errors);
        if (limit is < 1 or > MaxPage)
        {
            errors["limit"] = [$"limit must be between 1 and {MaxPage}."];
        }

        if (fromSequence is < 0)
        {
            errors["fromSequence"] = ["fromSequence must not be negative."];
        }

        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        if (http.Request.Headers.Accept.ToString().Contains(NdJson, StringComparison.OrdinalIgnoreCase))
        {
            http.Response.ContentType = NdJson;
            await using var writer = new Utf8JsonWriter(http.Response.BodyWriter);
            await foreach (var e in feed.ReadAsync(caller.Tenant, fromSequence ?? 0, start, end, limit, ct))
            {
                Write(writer, e);
                await writer.FlushAsync(ct);
                writer.Reset();
                await http.Response.BodyWriter.WriteAsync("\n"u8.ToArray(), ct);
            }

            return TypedResults.Empty;
        }

        var page = limit ?? DefaultPage;
        var events = new List<AuditEventView>(page);
        await foreach (var e in feed.ReadAsync(caller.Tenant, fromSequence ?? 0, start, end, page + 1, ct))
        {
            events.Add(new AuditEventView(e.Sequence, e.StreamId, e.Version, e.Type, e.Timestamp, JsonDocument.Parse(e.DataJson).RootElement.Clone()));
        }

        long? next = events.Count > page ? events[page].Sequence : null;
        return TypedResults.Ok(new AuditPage(events.Take(page).ToList(), next));
    }

    public static async Task<Ok<VerifyReport>> VerifyAsync(AuditVerifier verifier, CancellationToken ct) =>
        TypedResults.Ok(await verifier.VerifyAsync(ct));

    public static async Task<Results<Ok<ReplayReport>, ProblemHttpResult>> ReplayAsync(ProjectionReplay replay, string? projection, CancellationToken ct)
    {
        var name = projection ?? "job-status";
        if (!ProjectionReplay.Projections.Contains(name))
        {
            return Http.Problems.Validation(new() { ["projection"] = [$"Unknown projection '{name}'; known: {string.Join(", ", ProjectionReplay.Projections)}."] });
        }

        return TypedResults.Ok(await replay.RunAsync(name, progress: null, ct));
    }

    private static void Write(Utf8JsonWriter writer, AuditEvent e)
    {
        writer.WriteStartObject();
        writer.WriteNumber("sequence", e.Sequence);
        writer.WriteString("streamId", e.StreamId);
        writer.WriteNumber("version", e.Version);
        writer.WriteString("type", e.Type);
        writer.WriteString("timestamp", e.Timestamp);
        writer.WritePropertyName("data");
        writer.WriteRawValue(e.DataJson, skipInputValidation: true);
        writer.WriteEndObject();
    }

    private static DateTimeOffset? Parse(string? value, string field, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return null;
        }

        if (Http.Timestamps.TryParseUtc(value, out var parsed))
        {
            return parsed;
        }

        errors[field] = [$"{field} must be {Http.Timestamps.Rule}."];
        return null;
    }
}
