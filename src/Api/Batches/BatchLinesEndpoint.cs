using System.Text.Json;
using System.Text.Json.Serialization;
using CqrsInference.Api.Http;
using CqrsInference.Api.Jobs;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.Batches;
using CqrsInference.Projections.JobStatus;
using Marten;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Batches;

/// <summary>An error of a line: the job's own (failed), or what ended it (cancelled, expired, batch_expired), or a refusal at submit.</summary>
internal sealed record BatchLineError(string Code, string Message);

/// <summary>One line of <c>/results</c> or <c>/errors</c>.</summary>
internal sealed record BatchLineOutcome(
    int Line,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? CustomId,
    Guid? JobId,
    string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<Tensor>? Outputs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] BatchLineError? Error,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<string, string[]>? Errors = null);

/// <summary>
/// <c>GET /v1/batches/{id}/results</c> and <c>/errors</c>: JSONL in input order, the lines finished so
/// far (a line still queued or running is in neither; once it ends it is in exactly one). Read from the
/// jobs' status documents in pages by line, written as they are read, so a large batch is never held whole.
/// </summary>
internal static class BatchLinesEndpoint
{
    public const string ContentType = "application/jsonl";
    private const int PageSize = 500;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static Task<Results<EmptyHttpResult, ProblemHttpResult>> ResultsAsync(
        Guid id, ApiCaller caller, HttpResponse response, BatchReader reader, IQuerySession session, ClaimCheck claimCheck, CancellationToken ct) =>
        StreamAsync(id, caller, response, reader, session, claimCheck, errors: false, ct);

    public static Task<Results<EmptyHttpResult, ProblemHttpResult>> ErrorsAsync(
        Guid id, ApiCaller caller, HttpResponse response, BatchReader reader, IQuerySession session, ClaimCheck claimCheck, CancellationToken ct) =>
        StreamAsync(id, caller, response, reader, session, claimCheck, errors: true, ct);

    private static async Task<Results<EmptyHttpResult, ProblemHttpResult>> StreamAsync(
        Guid id, ApiCaller caller, HttpResponse response, BatchReader reader, IQuerySession session, ClaimCheck claimCheck, bool errors, CancellationToken ct)
    {
        if (await reader.FindAsync(id, caller.Sees, ct) is not { } batch)
        {
            return Problems.BatchNotFound(id);
        }

        response.ContentType = ContentType;
        var refused = new Queue<RefusedLine>(errors ? batch.Refused.OrderBy(r => r.Line) : []);
        var after = 0;
        while (true)
        {
            var page = await session.Query<JobStatus>()
                .Where(j => j.Batch!.BatchId == id && j.Batch.Line > after)
                .OrderBy(j => j.Batch!.Line)
                .Take(PageSize)
                .ToListAsync(ct);

            // The store answered: the rest streams for as long as the client reads.
            StoreDeadline.Answered(response.HttpContext);
            foreach (var job in page)
            {
                while (refused.Count > 0 && refused.Peek().Line < job.Batch!.Line)
                {
                    await WriteAsync(response, Refusal(refused.Dequeue()), ct);
                }

                if (await OutcomeAsync(job, batch, errors, claimCheck, ct) is { } line)
                {
                    await WriteAsync(response, line, ct);
                }
            }

            await response.Body.FlushAsync(ct);
            if (page.Count < PageSize)
            {
                break;
            }

            after = page[^1].Batch!.Line;
        }

        while (refused.Count > 0)
        {
            await WriteAsync(response, Refusal(refused.Dequeue()), ct);
        }

        return TypedResults.Empty;
    }

    private static async Task WriteAsync(HttpResponse response, BatchLineOutcome line, CancellationToken ct)
    {
        await JsonSerializer.SerializeAsync(response.Body, line, Json, ct);
        await response.Body.WriteAsync("\n"u8.ToArray(), ct);
    }

    private static BatchLineOutcome Refusal(RefusedLine line) =>
        new(line.Line, line.CustomId, null, "refused", null,
            new BatchLineError(BatchStatuses.InvalidLineCode, string.Join(" ", line.Errors.SelectMany(e => e.Value.Select(m => $"{e.Key}: {m}")))), line.Errors);

    /// <summary>The job's line for the stream asked for, or null when it belongs to the other one or has not ended.</summary>
    private static async Task<BatchLineOutcome?> OutcomeAsync(JobStatus job, BatchStatus batch, bool errors, ClaimCheck claimCheck, CancellationToken ct)
    {
        var line = job.Batch!;
        if (job.Status == JobStatuses.Succeeded)
        {
            return errors ? null : new(line.Line, line.CustomId, job.Id, job.Status, (await JobView.WithOutputsAsync(job, claimCheck, ct)).Outputs, null);
        }

        if (errors && ErrorOf(job, batch) is { } error)
        {
            return new(line.Line, line.CustomId, job.Id, job.Status, null, error);
        }

        return null;
    }

    /// <summary>Why a job that ended did not succeed; null while it is queued or running.</summary>
    public static BatchLineError? ErrorOf(JobStatus job, BatchStatus batch) => job.Status switch
    {
        JobStatuses.Failed => new(job.Error?.Code ?? "failed", job.Error?.Message ?? "The job failed."),
        JobStatuses.Expired or JobStatuses.Cancelled when batch.Status == BatchStatuses.Expired =>
            new(BatchStatuses.BatchExpiredCode, $"The batch's deadline ({batch.Deadline:O}) passed before this line ran."),
        JobStatuses.Expired => new("expired", "The line's deadline passed before it ran."),
        JobStatuses.Cancelled when batch.Status == BatchStatuses.Cancelled => new(BatchStatuses.CancelledCode, "Cancelled with the batch before it ran."),
        JobStatuses.Cancelled => new(BatchStatuses.CancelledCode, "The job was cancelled before it ran."),
        _ => null,
    };
}
