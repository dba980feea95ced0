using System.Text.Json;
using System.Text.Json.Serialization;

namespace CqrsInference.Commands.Jobs;

/// <summary>
/// Version 1 of the job lifecycle events. Every event of a run carries the job's attempt series
/// (<c>Series</c>: null, and left out of the JSON, for the first series, as in every event stored
/// before retries existed; 2, 3, … after each <see cref="JobRetried"/>): it keeps the ids of each
/// series apart (<see cref="JobLifecycle"/>). The wire names (<see cref="EventNames"/>) do not depend on
/// the CLR names because these events cross NATS and then live in the Marten event store for good.
/// </summary>
public static partial class V1
{
    /// <summary>
    /// A job was accepted by the API and made durable in the work queue. <paramref name="TimeoutMs"/>:
    /// the execution timeout it asked for (null: the model's; absent from events stored before it).
    /// <paramref name="WebhookEvents"/>: when its webhook is called (<see cref="Webhooks.WebhookEvents"/>;
    /// null, and left out of the JSON: on completion only, as every job before the filter).
    /// <paramref name="Batch"/>: the batch and line it was submitted in (null for a job on its own).
    /// <paramref name="Inputs"/>: the job's inline inputs, kept by the recorder when <c>Recorder:KeepInputs</c>
    /// is on (the default) so that a backtest can run them again; null, and left out of the JSON, when
    /// not kept, for inputs in the object store (<paramref name="InputsRef"/>) and in events stored before.
    /// <paramref name="InputsSha256"/>: <see cref="RecordedInputs.Digest"/> of <paramref name="Inputs"/>, checked when they are read back.
    /// </summary>
    public sealed record JobSubmitted(
        Guid JobId,
        string Tenant,
        string Model,
        string ModelVersion,
        string Region,
        string Priority,
        DateTimeOffset SubmittedAt,
        string RequestDigest,
        int InputBytes,
        IReadOnlyDictionary<string, string>? Metadata,
        BlobRef? InputsRef = null,
        string? Webhook = null,
        DateTimeOffset? Deadline = null,
        int? TimeoutMs = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? WebhookEvents = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] BatchLine? Batch = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<Tensor>? Inputs = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? InputsSha256 = null);

    /// <summary>
    /// A processor took a delivery of the job and began to run it (one per attempt), in
    /// <paramref name="RanInRegion"/> (the processor's region); <paramref name="Overflowed"/> when that
    /// is not the job's home region (idle capacity elsewhere took it from a backlog).
    /// </summary>
    public sealed record JobStarted(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset StartedAt,
        double QueueWaitMs,
        JobContext? Context = null,
        string? RanInRegion = null,
        bool Overflowed = false,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null);

    /// <summary>
    /// An attempt failed with a fault that may pass; the job goes back to the queue. When the model
    /// ran (the fault came out of the run), <paramref name="RunMs"/> and <paramref name="BatchSize"/>
    /// are the batch's run time and size, as on <see cref="JobSucceeded"/>: the attempt's share of
    /// the device is billed and counted as busy (<see cref="DeviceTime"/>); null when nothing ran
    /// (and in events stored before they were carried).
    /// </summary>
    public sealed record JobAttemptFailed(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset FailedAt,
        string ErrorCode,
        string Reason,
        TimeSpan RetryAfter,
        JobStart? Start = null,
        JobContext? Context = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? RunMs = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? BatchSize = null);

    /// <summary>Terminal: the model ran and produced outputs.</summary>
    public sealed record JobSucceeded(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset CompletedAt,
        double RunMs,
        int BatchSize,
        IReadOnlyList<Tensor> Outputs,
        BlobRef? OutputsRef = null,
        JobContext? Context = null,
        JobStart? Start = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null);

    /// <summary>
    /// Terminal: the job can never succeed (bad input the model refused) or ran out of attempts
    /// (<paramref name="DeadLettered"/>). <paramref name="RunMs"/> and <paramref name="BatchSize"/>:
    /// as on <see cref="JobAttemptFailed"/>, when the failure came out of a model run.
    /// </summary>
    public sealed record JobFailed(
        Guid JobId,
        int Attempt,
        string Worker,
        string Device,
        DateTimeOffset FailedAt,
        string ErrorCode,
        string Reason,
        bool DeadLettered,
        JobContext? Context = null,
        JobStart? Start = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? RunMs = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? BatchSize = null);

    /// <summary>Terminal: still queued when its deadline passed; it never ran.</summary>
    public sealed record JobExpired(
        Guid JobId,
        DateTimeOffset Deadline,
        DateTimeOffset ExpiredAt,
        string Worker,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null);

    /// <summary>Terminal: cancelled while still queued (it won the job's claim, so no processor ran it), or while a processor held it (its run is aborted, its ending dropped).</summary>
    public sealed record JobCancelled(
        Guid JobId,
        DateTimeOffset CancelledAt,
        string CancelledBy,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null);
}

/// <summary>
/// When and where an attempt started, carried by the attempt's ending when the run was short: a
/// processor publishes a separate <see cref="V1.JobStarted"/> only for a run that outlasts
/// <c>Processor:ReportRunningAfter</c>, so most jobs have two events (submitted, ended), not three.
/// </summary>
public sealed record JobStart(DateTimeOffset StartedAt, double QueueWaitMs, string? RanInRegion, bool Overflowed);

/// <summary>
/// A webhook delivery owed: the job ended (with the event named) and has a webhook to call. The
/// tenant lets the dispatcher share out calls between tenants before it reads the job (null in
/// messages owed before it was carried: those share one lane). <paramref name="Series"/>: the job's
/// attempt series, when a retry began it (null for the first).
/// </summary>
public sealed record WebhookOwed(
    Guid JobId,
    string EventType,
    string? Tenant = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null);

/// <summary>
/// Who and what a lifecycle event is about, so roll-ups can group it without the job's stream.
/// <paramref name="ModelVersion"/>: the version of the model that ran the attempt (null, and left
/// out of the JSON, in events stored before versions: those ran the model's only version).
/// </summary>
public sealed record JobContext(
    string Tenant,
    string Model,
    string Region,
    string DeviceClass,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ModelVersion = null);

/// <summary>
/// A tensor in the Open Inference Protocol (KServe v2) layout: <c>data</c> is the flat, row-major
/// element list (nested arrays are flattened on the way in).
/// </summary>
public sealed record Tensor(string Name, string Datatype, long[] Shape, JsonElement Data);

/// <summary>
/// Where a job of a batch comes from: the batch (<c>POST /v1/batches</c>), its line in the file (1-based)
/// and the line's <c>customId</c>, so that the batch's results can be read from its jobs, in input order.
/// </summary>
public sealed record BatchLine(Guid BatchId, int Line, string? CustomId);
