using System.Buffers.Text;
using System.Globalization;
using System.Text;
using CqrsInference.Api.Http;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.Batches;
using Marten;
using Marten.Linq.MatchesSql;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Batches;

/// <summary>The batch routes, <c>/v1/batches</c> (docs/API.md, "Batches").</summary>
internal static class BatchesApi
{
    private static readonly (int, string) NoSuchBatch = (StatusCodes.Status404NotFound, "There is no such batch (another tenant's batch is not disclosed).");
    private static readonly (int, string) Invalid = (StatusCodes.Status422UnprocessableEntity, "A parameter is out of its range (or not a cursor this list gave); 'errors' names each.");

    public static IEndpointRouteBuilder MapBatchesApi(this IEndpointRouteBuilder app)
    {
        var batches = app.MapGroup("/v1/batches").WithTags("Batches");
        MapSubmit(batches);
        batches.MapGet("", ListAsync)
            .WithStoreDeadline()
            .WithName("ListBatches")
            .WithSummary("The tenant's batches, newest first, in pages: {\"batches\": [...], \"nextCursor\"} (?limit= up to 1000, default 50, ?after=<nextCursor>; ?tenant= another tenant's, for the operator role only)")
            .WithProblems(Invalid, (StatusCodes.Status403Forbidden, "?tenant= names another tenant and the key lacks the operator role."))
            .RequirePolicy(ApiPolicies.Read);

        batches.MapGet("/{id:guid}", GetAsync)
            .WithStoreDeadline()
            .WithName("GetBatch")
            .WithSummary("The batch: status (running, completed, cancelled, expired), lines per status, progress, cost so far, times, deadline")
            .WithProblems(NoSuchBatch)
            .RequirePolicy(ApiPolicies.Read);

        batches.MapGet("/{id:guid}/results", BatchLinesEndpoint.ResultsAsync)
            .WithStoreDeadline()
            .WithName("GetBatchResults")
            .WithSummary("JSONL, in input order: each line that succeeded so far, with its customId, job id and outputs")
            .ProducesText(StatusCodes.Status200OK, BatchLinesEndpoint.ContentType, "One JSON object a line: line, customId, jobId, status, outputs.")
            .WithProblems(NoSuchBatch)
            .RequirePolicy(ApiPolicies.Read);

        batches.MapGet("/{id:guid}/errors", BatchLinesEndpoint.ErrorsAsync)
            .WithStoreDeadline()
            .WithName("GetBatchErrors")
            .WithSummary("JSONL, in input order: each line refused at submit or ended without success so far, with its error code and message (batch_expired after the deadline)")
            .ProducesText(StatusCodes.Status200OK, BatchLinesEndpoint.ContentType, "One JSON object a line: line, customId, jobId, status, error {code, message}.")
            .WithProblems(NoSuchBatch)
            .RequirePolicy(ApiPolicies.Read);

        batches.MapDelete("/{id:guid}", CancelAsync)
            .WithName("CancelBatch")
            .WithSummary("Cancel a batch: its queued lines are cancelled, running ones finish; 409 once it has completed or expired")
            .WithProblems(NoSuchBatch, (StatusCodes.Status409Conflict, "The batch has completed or expired, or every line of it has ended."))
            .RequirePolicy(ApiPolicies.Submit);

        batches.MapPost("/{id:guid}:cancel", CancelAsync)
            .WithName("CancelBatchPost")
            .WithSummary("Cancel a batch (the same as DELETE /v1/batches/{id})")
            .WithProblems(NoSuchBatch, (StatusCodes.Status409Conflict, "The batch has completed or expired, or every line of it has ended."))
            .RequirePolicy(ApiPolicies.Submit);
        return app;
    }

    /// <summary><c>POST /v1/batches</c> and its contract.</summary>
    private static void MapSubmit(RouteGroupBuilder batches) =>
        batches.MapPost("", BatchSubmitEndpoint.SubmitAsync)
            .WithName("SubmitBatch")
            .WithSummary("Submit a batch: a JSONL file, one job request (as for POST /v1/jobs, plus an optional customId) a line")
            .WithDescription("Options as query parameters: deadline (a timestamp, or a duration from now), webhook, priority (default batch), atomic (true: any bad line refuses the file). 202 with the batch and every refused line (by its number and customId); the valid lines run. The Idempotency-Key header makes a retried submit return the same batch.")
            .AcceptsText(BatchFileReader.MediaTypes)
            .WithMetadata(new ReadsQuery([.. BatchFileReader.OptionNames]) { RefusesUnknown = true })
            .WithQueryParameter("deadline", "When the batch expires: a timestamp (ISO 8601, UTC offset), or a duration from now (\"30m\", \"2h\"); its jobs still queued then end expired.")
            .WithQueryParameter("webhook", "A public https URL called when the batch ends.")
            .WithQueryParameter("priority", "interactive or batch (the default) for every line's job.")
            .WithQueryParameter("atomic", "true: any bad line refuses the whole file; false (the default): the valid lines run.", Microsoft.OpenApi.JsonSchemaType.Boolean)
            .WithRequestHeader(ApiContract.IdempotencyKey, ApiContract.IdempotencyKeyDescription)
            .WithResponseHeader(StatusCodes.Status202Accepted, "Location", "The batch's address, /v1/batches/{id}.")
            .WithProblems(
                (StatusCodes.Status400BadRequest, "The body is not UTF-8, or no line of it is JSON."),
                (StatusCodes.Status409Conflict, "The Idempotency-Key submitted a different file before."),
                (StatusCodes.Status413PayloadTooLarge, "The file has more bytes (Batches:MaxBytes) or lines (Batches:MaxLines) than a batch takes."),
                (StatusCodes.Status415UnsupportedMediaType, "The body is not application/jsonl (or application/x-ndjson)."),
                (StatusCodes.Status422UnprocessableEntity, "An option is unknown or invalid, the file holds no lines, or (atomic) a line is invalid: 'errors' names each as lines[n].field."),
                (StatusCodes.Status429TooManyRequests, "The tenant is over its daily quota (nothing was admitted)."),
                (StatusCodes.Status503ServiceUnavailable, "The models' queues are full (nothing was admitted); retry after Retry-After seconds."))
            .WithBodyLimit(BatchOptions.MaxBytesCap)
            .RequirePolicy(ApiPolicies.Submit);

    public static async Task<Results<Ok<BatchView>, ProblemHttpResult>> GetAsync(Guid id, ApiCaller caller, BatchReader reader, CancellationToken ct) =>
        await reader.FindAsync(id, caller.Sees, ct) is { } batch
            ? TypedResults.Ok(await reader.ViewAsync(batch, ct))
            : Problems.BatchNotFound(id);

    public static async Task<Results<Ok<BatchView>, ProblemHttpResult>> CancelAsync(
        Guid id, ApiCaller caller, BatchServices services, IDocumentStore store, CancellationToken ct)
    {
        if (await services.Reader.FindAsync(id, caller.Sees, ct) is not { } batch)
        {
            return Problems.BatchNotFound(id);
        }

        if (batch.Status is BatchStatuses.Completed or BatchStatuses.Expired)
        {
            return Ended(id, batch.Status);
        }

        var now = services.Clock.GetUtcNow();
        if (batch.Status == BatchStatuses.Running)
        {
            // Decided under the stream's lock: of cancels that race, the first cancels and the others
            // find it cancelled (one event, every answer 200).
            var stream = await services.Session.Events.FetchForExclusiveWriting<BatchStatus>(id, ct);
            if (stream.Aggregate is { Status: not BatchStatuses.Running and not BatchStatuses.Cancelled } ended)
            {
                return Ended(id, ended.Status);
            }

            if (stream.Aggregate is { Status: BatchStatuses.Running } && await services.Reader.ViewAsync(batch, ct) is { Progress: var progress } && progress.Finished == progress.Total)
            {
                // Every line has ended; the supervisor marks it completed within a second. Cancelling
                // it now would end it "cancelled" with nothing cancelled.
                return Ended(id, BatchStatuses.Completed);
            }

            if (stream.Aggregate is { Status: BatchStatuses.Running })
            {
                stream.AppendOne(new V1.BatchCancelled(id, now, caller.KeyId));
                await BatchWebhooks.OweAsync(services.Webhooks, batch, BatchJobs.BatchCancelled, ct);
                try
                {
                    await services.Session.SaveChangesAsync(ct);
                }
                catch (Exception e) when (Projections.ConcurrentWrites.LostRace(e))
                {
                    // The batch's completion or expiry (the supervisor does not take the lock) was saved first.
                    var after = (await services.Reader.FindAsync(id, caller.Sees, ct))!;
                    if (after.Status != BatchStatuses.Cancelled)
                    {
                        return Ended(id, after.Status);
                    }
                }
            }
        }

        await BatchSweep.EndQueuedAsync(store, services.Sender, services.Queues, id, batch.EndedAt ?? now, expiredAt: null, caller.KeyId, now, ct);
        return TypedResults.Ok(await services.Reader.ViewAsync((await services.Reader.FindAsync(id, caller.Sees, ct))!, ct));
    }

    private static ProblemHttpResult Ended(Guid id, string status) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Batch has ended", detail: $"Batch {id} is {status}; only a running batch can be cancelled.");

    /// <summary>One page of batches and where the next one starts (null: this is the last).</summary>
    public sealed record BatchPage(IReadOnlyList<BatchView> Batches, string? NextCursor);

    private const string AfterCursor =
        "(CAST(d.data ->> 'SubmittedAt' as timestamp with time zone), d.id) < (CAST(? as timestamp with time zone), ?)";

    public static async Task<Results<Ok<BatchPage>, ProblemHttpResult>> ListAsync(
        ApiCaller caller, IQuerySession session, BatchReader reader, int? limit, string? after, string? tenant, CancellationToken ct)
    {
        if (Problems.OtherTenant(caller, tenant, "lists another tenant's batches") is { } refused)
        {
            return refused;
        }

        (DateTimeOffset At, Guid Id)? cursor = null;
        if (limit is < 1 or > 1000)
        {
            return Problems.Validation("limit", "limit must be between 1 and 1000.");
        }

        if (after is not null && (cursor = ParseCursor(after)) is null)
        {
            return Problems.Validation("after", "after must be the nextCursor of an earlier page.");
        }

        var owner = tenant ?? caller.Tenant;
        var query = session.Query<BatchStatus>().Where(b => b.Tenant == owner);
        if (cursor is { } c)
        {
            query = query.Where(b => b.MatchesSql(AfterCursor, c.At.ToString("O", CultureInfo.InvariantCulture), c.Id));
        }

        var page = limit ?? 50;
        var batches = await query.OrderByDescending(b => b.SubmittedAt).ThenByDescending(b => b.Id).Take(page + 1).ToListAsync(ct);
        var next = batches.Count > page
            ? Base64Url.EncodeToString(Encoding.UTF8.GetBytes($"{batches[page - 1].SubmittedAt.UtcTicks.ToString(CultureInfo.InvariantCulture)}.{batches[page - 1].Id:N}"))
            : null;
        return TypedResults.Ok(new BatchPage(await reader.ViewsAsync(batches.Take(page), ct), next));
    }

    private static (DateTimeOffset, Guid)? ParseCursor(string text)
    {
        if (text.Length > 128 || !Base64Url.IsValid(text))
        {
            return null;
        }

        var parts = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(text)).Split('.');
        return parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            && ticks <= DateTimeOffset.MaxValue.UtcTicks && Guid.TryParseExact(parts[1], "N", out var id)
            ? (new DateTimeOffset(ticks, TimeSpan.Zero), id)
            : null;
    }
}
