using CqrsInference.Api.Http;
using System.Text.Json;
using CqrsInference.Projections.Audit;
using CqrsInference.Api.OpenApi;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Security;

internal static class AuditApi
{
    public const string NdJson = ApiContract.NdJson;
    public const int DefaultPage = 1000;
    public const int MaxPage = 10_000;

    /// <summary>An NDJSON export's bound per call (and its default): a bigger one is paged like JSON.</summary>
    public const int MaxExport = 100_000;

    public sealed record AuditEventView(long Sequence, Guid StreamId, long Version, string Type, DateTimeOffset Timestamp, JsonElement Data);

    public sealed record AuditPage(IReadOnlyList<AuditEventView> Events, long? NextSequence);

    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        var audit = app.MapGroup("/v1/audit").WithTags("Audit");
        audit.MapGet("/events", ReadEventsAsync)
            .WithStoreDeadline().WithName("AuditEvents")
            .WithSummary("The tenant's events in global sequence order, paged (fromSequence, limit) and filtered by time (from, to); NDJSON for exports; tenant= another tenant's, for the operator role only")
            .WithDescription($"JSON pages of at most {MaxPage} events with nextSequence to resume from; with 'Accept: {NdJson}' up to {MaxExport} events "
                + "one per line, and when more match a last line {\"nextSequence\":n} to resume from.")
            .ProducesText(StatusCodes.Status200OK, NdJson, $"With 'Accept: {NdJson}': one event per line (as in the JSON page's 'events'), "
                + "and when more match, a last line {\"nextSequence\":n}.")
            .WithProblems(
                (StatusCodes.Status403Forbidden, "'tenant' names another tenant and the key is not the platform operator's."),
                (StatusCodes.Status422UnprocessableEntity, "A parameter is out of its range or not a timestamp; 'errors' names each."))
            .RequirePolicy(ApiPolicies.Auditor);
        audit.MapGet("/verify", VerifyAsync).WithName("AuditVerify")
            .WithSummary("Recompute the hash chains over the event store and report the first broken link (the platform operator's: the chains span every tenant); one at a time, 409 while one runs")
            .WithProblems(Busy)
            .RequirePolicy(ApiPolicies.Operator);
        app.MapPost("/v1/admin/replay", ReplayAsync).WithTags("Admin").WithName("Replay")
            .WithSummary("Rebuild a projection from the event log into fresh tables and compare it with the live read model; one at a time, 409 while one runs")
            .WithProblems(Busy, (StatusCodes.Status422UnprocessableEntity, "Not a projection that can be replayed."))
            .RequirePolicy(ApiPolicies.Operator);
        return app;
    }

    private static readonly (int, string) Busy = (StatusCodes.Status409Conflict, "A replay or verify is already running; they run one at a time.");

    public static async Task<Results<Ok<AuditPage>, EmptyHttpResult, ProblemHttpResult>> ReadEventsAsync(
        HttpContext http, ApiCaller caller, AuditFeed feed, long? fromSequence, int? limit, string? from, string? to, string? tenant, CancellationToken ct)
    {
        if (Http.Problems.OtherTenant(caller, tenant, "reads another tenant's audit feed") is { } refused)
        {
            return refused;
        }

        var export = Http.AcceptHeader.Prefers(http.Request, NdJson);
        var max = export ? MaxExport : MaxPage;
        var errors = new Dictionary<string, string[]>();
        var start = Parse(from, "from", errors);
        var end = Parse(to, "to", errors);
        if (limit is { } asked && (asked < 1 || asked > max))
        {
            errors["limit"] = [$"limit must be between 1 and {max}{(export ? " for an NDJSON export" : "; an NDJSON export takes up to " + MaxExport)}."];
        }

        if (fromSequence is < 0)
        {
            errors["fromSequence"] = ["fromSequence must not be negative."];
        }

        if (start is { } first && end is { } last && first >= last)
        {
            // As the analytics endpoints answer it: an empty page would read as "nothing happened".
            errors["from"] = ["from must be before to."];
        }

        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        var range = new FeedRange(tenant ?? caller.Tenant, fromSequence ?? 0, start, end, WithShadows: caller.IsOperator);
        if (export)
        {
            await ExportAsync(http, feed, range, limit ?? MaxExport, ct);
            return TypedResults.Empty;
        }

        var page = limit ?? DefaultPage;
        var events = new List<AuditEventView>(page);
        await foreach (var e in feed.ReadAsync(range.Tenant, range.FromSequence, range.From, range.To, page + 1, range.WithShadows, ct))
        {
            events.Add(new AuditEventView(e.Sequence, e.StreamId, e.Version, e.Type, e.Timestamp, JsonDocument.Parse(e.DataJson).RootElement.Clone()));
        }

        long? next = events.Count > page ? events[page].Sequence : null;
        return TypedResults.Ok(new AuditPage(events.Take(page).ToList(), next));
    }

    private sealed record FeedRange(string Tenant, long FromSequence, DateTimeOffset? From, DateTimeOffset? To, bool WithShadows);

    /// <summary>
    /// Up to <paramref name="limit"/> events, one per line; when more match, a last line
    /// <c>{"nextSequence":n}</c> (no <c>sequence</c>) says where the next call resumes.
    /// </summary>
    private static async Task ExportAsync(HttpContext http, AuditFeed feed, FeedRange range, int limit, CancellationToken ct)
    {
        http.Response.ContentType = NdJson;
        await using var writer = new Utf8JsonWriter(http.Response.BodyWriter);
        var written = 0;
        await foreach (var e in feed.ReadAsync(range.Tenant, range.FromSequence, range.From, range.To, limit + 1, range.WithShadows, ct))
        {
            // The store answered: the rest streams for as long as the client reads.
            Http.StoreDeadline.Answered(http);
            if (written++ == limit)
            {
                writer.WriteStartObject();
                writer.WriteNumber("nextSequence", e.Sequence);
                writer.WriteEndObject();
            }
            else
            {
                Write(writer, e);
            }

            await writer.FlushAsync(ct);
            writer.Reset();
            await http.Response.BodyWriter.WriteAsync("\n"u8.ToArray(), ct);
        }
    }

    public static async Task<Results<Ok<VerifyReport>, ProblemHttpResult>> VerifyAsync(AuditVerifier verifier, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(await verifier.VerifyAsync(ct));
        }
        catch (AuditRunBusyException busy)
        {
            return Http.Problems.AlreadyRunning(busy.Message);
        }
    }

    public static async Task<Results<Ok<ReplayReport>, ProblemHttpResult>> ReplayAsync(ProjectionReplay replay, string? projection, CancellationToken ct)
    {
        var name = projection ?? "job-status";
        if (!ProjectionReplay.Projections.Contains(name))
        {
            return Http.Problems.Validation(new() { ["projection"] = [$"Unknown projection '{Commands.Shown.Cut(name)}'; known: {string.Join(", ", ProjectionReplay.Projections)}."] });
        }

        try
        {
            return TypedResults.Ok(await replay.RunAsync(name, progress: null, ct));
        }
        catch (AuditRunBusyException busy)
        {
            return Http.Problems.AlreadyRunning(busy.Message);
        }
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
