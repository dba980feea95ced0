using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>
/// The submit body as the OpenAPI document describes it. The endpoint reads the body itself, field
/// by field (<see cref="JobRequestParser"/>), so that every mistake gets its own 422; this record
/// only documents that contract, and <c>OpenApiDocumentTests</c> holds its fields to the parser's.
/// The allowed values of <c>priority</c>, <c>mode</c>, <c>webhookEvents</c> and <c>datatype</c> come from the rules' own
/// lists (<see cref="OpenApi.OpenApiSetup"/>).
/// </summary>
internal sealed record SubmitJobRequest(
    [property: Description("A model served here (GET /v1/models lists them).")] string Model,
    [property: Description("The model's input tensors, in the Open Inference Protocol (KServe v2) layout.")] IReadOnlyList<InputTensor> Inputs,
    [property: Description("Where the job runs (default: this API's region).")] string? Region = null,
    [property: Description("interactive (the default) or batch: batch waits while interactive work is queued.")] string? Priority = null,
    [property: Description("Up to 32 string entries (keys up to 128 characters, values up to 512), kept with the job.")] IReadOnlyDictionary<string, string>? Metadata = null,
    [property: Url, Description("An http(s) URL that receives the job's events, signed (GET /v1/admin/webhook-key).")] string? Webhook = null,
    [property: Description("Which of the job's events call the webhook: started and/or completed (default: completed).")] IReadOnlyList<string>? WebhookEvents = null,
    [property: Description("The job expires instead of running after this moment: " + Http.Timestamps.Rule + ".")] DateTimeOffset? Deadline = null,
    [property: Description("The run's execution timeout: " + Durations.Rule + ", at most the model's timeoutMs.")] string? Timeout = null,
    [property: Description("queued (the default: the durable work queue) or interactive (a processor answers over NATS request/reply; the queue if none can).")] string? Mode = null,
    [property: Description("The version of the model to run (GET /v1/models lists the served ones); absent: the model's default, or its canary split by weight.")] string? ModelVersion = null);

/// <summary>One input tensor of a submit (<see cref="TensorReader"/> reads it).</summary>
internal sealed record InputTensor(
    [property: Description("The model input's name.")] string Name,
    [property: Description("The element type.")] string Datatype,
    [property: Description("1 to 8 positive dimensions.")] IReadOnlyList<long> Shape,
    [property: Description("The elements, flat or nested row-major (nested data must match the shape): numbers, booleans for BOOL, strings for BYTES.")] IReadOnlyList<JsonElement> Data,
    [property: Description("Accepted for Open Inference Protocol clients, and ignored.")] IReadOnlyDictionary<string, JsonElement>? Parameters = null);

/// <summary>The bulk submit body: <c>{"jobs": [ … ]}</c>, each job as for a single submit.</summary>
internal sealed record BulkSubmitRequest(
    [property: Description("1 to 1000 jobs, accepted or refused together.")] IReadOnlyList<SubmitJobRequest> Jobs);
