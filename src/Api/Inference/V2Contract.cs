using System.Text.Json;
using System.Text.Json.Serialization;
using CqrsInference.Commands.Jobs;

namespace CqrsInference.Api.Inference;

// The Open Inference Protocol (KServe v2) REST contract, as this API speaks it: the records the
// OpenAPI document shows and the answers are written from. Names follow the protocol (snake_case
// where it has them), not the camelCase of /v1.

/// <summary>Every error on /v2: the message; the HTTP status says what kind (never problem+json).</summary>
internal sealed record V2Error(string Error);

/// <summary>
/// <c>POST /v2/models/{model}/infer</c>. <c>id</c> is echoed; <c>outputs</c>, when given, names the
/// outputs to return (else all). Unknown <c>parameters</c> are ignored, as the protocol allows.
/// </summary>
internal sealed record V2InferRequest(
    IReadOnlyList<V2InputTensor> Inputs,
    string? Id = null,
    V2InferParameters? Parameters = null,
    IReadOnlyList<V2RequestedOutput>? Outputs = null);

/// <summary>
/// The request parameters that map onto a job, all strings with their /v1 meaning: <c>priority</c>
/// (interactive | batch), <c>region</c>, <c>deadline</c> (ISO 8601 with a zone) and <c>timeout</c>
/// (the run's execution timeout, e.g. "500ms").
/// </summary>
internal sealed record V2InferParameters(string? Priority = null, string? Region = null, string? Deadline = null, string? Timeout = null);

/// <summary>An input tensor: <c>data</c> holds numbers, booleans or strings (BYTES), flat or nested row-major.</summary>
internal sealed record V2InputTensor(string Name, long[] Shape, string Datatype, JsonElement Data);

/// <summary>An output the caller wants back; its <c>parameters</c> (binary data, classification) are ignored.</summary>
internal sealed record V2RequestedOutput(string Name);

/// <summary>The answer to an inference request: the model, the request's id, the job behind it and the outputs.</summary>
internal sealed record V2InferResponse(
    [property: JsonPropertyName("model_name"), JsonPropertyOrder(-3)] string ModelName,
    [property: JsonPropertyName("model_version"), JsonPropertyOrder(-2)] string ModelVersion,
    V2ResponseParameters Parameters,
    IReadOnlyList<Tensor> Outputs,
    [property: JsonPropertyOrder(-1), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Id = null);

/// <summary>
/// What the answer says about the job that served it: its id (<c>GET /v1/jobs/{job_id}</c> has its
/// history), which path ran it (<c>queue</c> or <c>interactive</c>) and in which region.
/// </summary>
internal sealed record V2ResponseParameters(
    [property: JsonPropertyName("job_id")] Guid JobId,
    [property: JsonPropertyName("served_by"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ServedBy,
    [property: JsonPropertyName("ran_in_region"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? RanInRegion);

/// <summary>
/// <c>GET /v2/models/{model}</c>: the manifest's entry (<c>-1</c>: a dynamic dimension, the batch
/// first); <c>versions</c> the serving ones, default first; <c>version_states</c> every version.
/// </summary>
internal sealed record V2ModelMetadata(
    string Name,
    IReadOnlyList<string> Versions,
    string Platform,
    IReadOnlyList<V2TensorMetadata> Inputs,
    IReadOnlyList<V2TensorMetadata> Outputs,
    [property: JsonPropertyName("version_states")] IReadOnlyList<V2VersionState> VersionStates);

/// <summary>A version of a model: its state (serving, retired), whether unpinned jobs default to it, and its share of them (percent, 0: none).</summary>
internal sealed record V2VersionState(string Version, string State, bool Default, int Weight);

internal sealed record V2TensorMetadata(string Name, string Datatype, long[] Shape);

/// <summary><c>GET /v2</c>: the server's name, version and the protocol extensions it supports (none).</summary>
internal sealed record V2ServerMetadata(string Name, string Version, IReadOnlyList<string> Extensions);

internal sealed record V2ServerLive(bool Live);

internal sealed record V2ServerReady(bool Ready);

internal sealed record V2ModelReady(string Name, bool Ready);
