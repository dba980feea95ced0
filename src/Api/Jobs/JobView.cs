using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.JobStatus;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// The job as <c>GET /v1/jobs/{id}</c> returns it (contract version 1). <see cref="Series"/>: its
/// attempt series (1, then one more per retry, <c>POST /v1/jobs/{id}:retry</c>); the timings,
/// attempts, outputs and error are the series'; <see cref="RetriedAt"/>: when the series began.
/// <see cref="Cost"/> (on <c>GET /v1/jobs/{id}</c> only): every run of every attempt and series, priced
/// at the price in force when it ended.
/// </summary>
internal sealed record JobView(
    Guid Id,
    string Status,
    string Model,
    string ModelVersion,
    string Region,
    string Priority,
    DateTimeOffset SubmittedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? CompletedAt,
    int Attempts,
    double? QueueWaitMs,
    double? RunMs,
    string? Worker,
    string? Device,
    int? BatchSize,
    IReadOnlyList<Tensor>? Outputs,
    JobError? Error,
    IReadOnlyDictionary<string, string>? Metadata,
    BlobRef? OutputsRef = null,
    string? RanInRegion = null,
    bool Overflowed = false,
    bool OutputsExpired = false,
    DateTimeOffset? ArchivedAt = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? ServedBy = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] Waiting.JobWaiting? Waiting = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] BatchLine? Batch = null,
    int Series = 1,
    DateTimeOffset? RetriedAt = null,
    string Tenant = "",
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] Projections.Pricing.JobCost? Cost = null)
{
    /// <summary>What <see cref="ServedBy"/> says of a job a processor ran on the interactive path (NATS request/reply).</summary>
    public const string Interactive = "interactive";

    /// <summary>What <see cref="ServedBy"/> says of a job that went through the durable work queue.</summary>
    public const string Queue = "queue";

    public static JobView From(JobStatus s) =>
        new(s.Id, s.Status, s.Model, s.ModelVersion, s.Region, s.Priority, s.SubmittedAt, s.StartedAt, s.CompletedAt,
            s.Attempts, s.QueueWaitMs, s.RunMs, s.Worker, s.Device, s.BatchSize, s.Outputs, s.Error, s.Metadata, s.OutputsRef,
            s.RanInRegion, s.Overflowed, ArchivedAt: s.ArchivedAt, Batch: s.Batch, Series: s.CurrentSeries(), RetriedAt: s.RetriedAt, Tenant: s.Tenant);

    /// <summary>
    /// The view with outputs that live in the object store (claim check) fetched and checked. Outputs
    /// kept longer than ClaimCheck:MaxAge (or dropped under ClaimCheck:MaxBytes) are no error: the
    /// job is answered as it is, with <see cref="OutputsExpired"/> set and its <see cref="OutputsRef"/>.
    /// </summary>
    public static async Task<JobView> WithOutputsAsync(JobStatus s, ClaimCheck claimCheck, CancellationToken ct)
    {
        // An archived job keeps no outputs (Retention:FinishedJobsAfter is longer than ClaimCheck:MaxAge anyway).
        if (s.OutputsRef is not { } blob || s.Outputs is { Count: > 0 } || s.ArchivedAt is not null)
        {
            return From(s);
        }

        try
        {
            return From(s with { Outputs = await claimCheck.LoadAsync(blob, ct) });
        }
        catch (InvalidDataException e) when (BlobExpired.IsExpired(e))
        {
            return From(s with { Outputs = null }) with { OutputsExpired = true };
        }
    }
}

/// <summary>One recorded event of a job, for <c>GET /v1/jobs/{id}/events</c>.</summary>
internal sealed record JobEventView(Guid Id, string Type, long Sequence, long Version, DateTimeOffset Timestamp, object Data);
