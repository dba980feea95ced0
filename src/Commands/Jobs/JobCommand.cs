using System.Text.Json.Serialization;

namespace CqrsInference.Commands.Jobs;

/// <summary>
/// The message on the work queue (the wire contract of a queued job): everything a processor needs
/// to run the job. The recorder turns the same message into <see cref="V1.JobSubmitted"/>.
/// <paramref name="TimeoutMs"/> is the execution timeout the caller asked for (null: the model's,
/// and in every message queued before it existed). <paramref name="WebhookEvents"/>: when its webhook
/// is called (null, and left out of the JSON: on completion only). <paramref name="Batch"/>: the batch and
/// line the job belongs to (null, and left out of the JSON, for a job submitted on its own).
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
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] BatchLine? Batch = null)
{
    public V1.JobSubmitted ToSubmitted(int inputBytes) =>
        new(JobId, Tenant, Model, ModelVersion, Region, Priority, SubmittedAt, RequestDigest, inputBytes, Metadata, InputsRef, Webhook, Deadline, TimeoutMs, WebhookEvents, Batch);
}
