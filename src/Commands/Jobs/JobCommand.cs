using System.Text.Json.Serialization;

namespace CqrsInference.Commands.Jobs;

/// <summary>
/// The message on the work queue (the wire contract of a queued job): everything a processor needs
/// to run the job. The recorder turns the same message into <see cref="V1.JobSubmitted"/>.
/// <paramref name="TimeoutMs"/> is the execution timeout the caller asked for (null: the model's,
/// and in every message queued before it existed). <paramref name="WebhookEvents"/>: when its webhook
/// is called (null, and left out of the JSON: on completion only). <paramref name="Batch"/>: the batch and
/// line the job belongs to (null, and left out of the JSON, for a job submitted on its own).
/// A retry queues the same message again with <paramref name="Series"/> (2, 3, …; null in the first series), <paramref name="RetriedAt"/>,
/// <paramref name="RetriedBy"/> and the digest of its Idempotency-Key (<paramref name="RetryKey"/>):
/// the recorder reads that message as <see cref="V1.JobRetried"/>, so one publish is both the
/// retry's event and the job's place in the queue.
/// </summary>
public sealed record JobCommand(
    Guid JobId,
    string Tenant,
    string Model,
    string ModelVersion,
    string Region,
    string Priority,
    DateTimeOffset SubmittedAt,
    string RequestDigest,
    IReadOnlyList<Tensor> Inputs,
    IReadOnlyDictionary<string, string>? Metadata,
    BlobRef? InputsRef = null,
    string? Webhook = null,
    DateTimeOffset? Deadline = null,
    int? TimeoutMs = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? WebhookEvents = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] BatchLine? Batch = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DateTimeOffset? RetriedAt = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? RetriedBy = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? RetryKey = null)
{
    /// <summary>The job's attempt series this message queues (1: its submission).</summary>
    public int SeriesNumber => JobLifecycle.SeriesOf(Series);

    /// <summary>When this message was queued: the submission, or the retry that queued it again.</summary>
    public DateTimeOffset QueuedAt => RetriedAt ?? SubmittedAt;

    /// <summary>
    /// What the log records for this message: the submission, or the retry that queued it again.
    /// <paramref name="keepInputs"/>: the submission keeps the inline inputs (<c>Recorder:KeepInputs</c>).
    /// </summary>
    public object ToLogged(int inputBytes, bool keepInputs = false) => SeriesNumber > 1
        ? new V1.JobRetried(JobId, SeriesNumber, Tenant, Model, Region, Priority, QueuedAt, RetriedBy ?? "", RetryKey, Deadline)
        : ToSubmitted(inputBytes, keepInputs);

    /// <summary>The submission; with <paramref name="keepInputs"/>, the inline inputs (none when they are in the object store) and their digest.</summary>
    public V1.JobSubmitted ToSubmitted(int inputBytes, bool keepInputs = false)
    {
        var kept = keepInputs && InputsRef is null && Inputs.Count > 0 ? Inputs : null;
        return new(JobId, Tenant, Model, ModelVersion, Region, Priority, SubmittedAt, RequestDigest, inputBytes, Metadata, InputsRef, Webhook, Deadline, TimeoutMs,
            WebhookEvents, Batch, kept, kept is null ? null : RecordedInputs.Digest(kept));
    }
}
