using System.Text.Json;
using System.Text.Json.Serialization;

namespace CqrsInference.Commands.Models;

/// <summary>A model as the manifest (<c>models/manifest.json</c>) describes it.</summary>
public sealed record ModelDefinition
{
    /// <summary>Name used in the API and in the queue subject <c>jobs.&lt;region&gt;.&lt;model&gt;</c>.</summary>
    public required string Name { get; init; }

    /// <summary>
    /// The version's label (1 to 63 letters, digits, '.', '-', '_'). Several entries may share a
    /// <see cref="Name"/> with different versions; see <see cref="ModelCatalog"/> for the rules.
    /// </summary>
    public required string Version { get; init; }

    /// <summary>
    /// The version unpinned jobs go to when no version of the model has a <see cref="Weight"/>. One
    /// version of a model with several must say <c>"default": true</c>; a model's only version is
    /// its default without it.
    /// </summary>
    public bool Default { get; set; }

    /// <summary>
    /// The percentage of unpinned jobs this version takes (a canary split); absent or 0 takes none.
    /// When any version of a model has a weight, the weights of its serving versions sum to 100.
    /// </summary>
    public int? Weight { get; init; }

    /// <summary>
    /// <c>serving</c> (the default: processors load it and jobs may run on it) or <c>retired</c>
    /// (listed, never run: a job pinning it is refused); see <see cref="ModelVersionStates"/>.
    /// </summary>
    public string State { get; set; } = ModelVersionStates.Serving;

    /// <summary>Which runner serves it: <c>tensor</c> (plain tensors), <c>ppocr-rec</c>, <c>silero-vad</c>.</summary>
    public required string Runner { get; init; }

    /// <summary>ONNX file, relative to the models directory.</summary>
    public required string File { get; init; }

    /// <summary>When set, the processor writes this generated model to <see cref="File"/> if it is missing.</summary>
    public string? Generator { get; init; }

    /// <summary>
    /// Settings of the runner for this version, e.g. a preprocessing variant (<c>ppocr-rec</c>:
    /// <c>"grayscale": "true"</c>); a runner refuses keys it does not know when it loads.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Options { get; init; }

    /// <summary>Extra files a runner needs (e.g. the OCR vocabulary), relative to the models directory.</summary>
    public IReadOnlyDictionary<string, string>? Assets { get; init; }

    // Optional fields with a default are settable, not init-only: the source-generated reader sets
    // every init-only property, to its type's default (0, null) when the JSON lacks it, but a
    // settable one only when the JSON has it.
    public string Description { get; set; } = "";

    public required IReadOnlyList<TensorSpec> Inputs { get; init; }

    public required IReadOnlyList<TensorSpec> Outputs { get; init; }

    /// <summary>
    /// How this version's answers are compared with another version's, per output name
    /// (<see cref="OutputRule"/>: <c>exact</c>, <c>tolerance</c>, <c>threshold</c>), for shadow runs
    /// and backtests; an output it names no rule for gets <see cref="OutputRule.DefaultFor"/>.
    /// Checked at load: every rule usable (<see cref="OutputRule.Problem"/>), every name an output.
    /// </summary>
    public IReadOnlyDictionary<string, OutputRule>? Comparison { get; init; }

    /// <summary>Dynamic batching; absent means one job per ONNX run.</summary>
    public BatchingSpec? Batching { get; init; }

    /// <summary>Concurrent execution slots per processor (jobs, or batches of jobs, in flight).</summary>
    public int Slots { get; set; } = 1;

    /// <summary>
    /// Execution timeout of one run, in milliseconds; absent means <see cref="DefaultTimeoutMs"/>
    /// (read it as <see cref="ExecutionTimeoutMs"/>). A run still going after it is aborted and its
    /// job fails with <c>execution_timeout</c>. Also the largest <c>timeout</c> a job may ask for.
    /// </summary>
    /// <remarks>
    /// Nullable because the source-generated reader sets an init-only property that the JSON lacks
    /// to its type's default (0), not to its initializer.
    /// </remarks>
    public int? TimeoutMs { get; init; }

    /// <summary>The execution timeout of a model whose manifest entry names none: 30 s.</summary>
    public const int DefaultTimeoutMs = 30_000;

    /// <summary>The largest execution timeout a manifest may give: an hour.</summary>
    public const int MaxTimeoutMs = 3_600_000;

    [JsonIgnore]
    public int MaxBatch => Batching?.MaxBatch ?? 1;

    /// <summary>The execution timeout in milliseconds: the manifest's, else the default.</summary>
    [JsonIgnore]
    public int ExecutionTimeoutMs => TimeoutMs ?? DefaultTimeoutMs;

    /// <summary>
    /// How long a job's run may take: the <paramref name="requestedMs"/> it asked for (submit
    /// refuses more than the model's), else the model's; never more than the model's, so a job
    /// queued before the manifest lowered it does not outlast the new cap.
    /// </summary>
    public TimeSpan TimeoutFor(int? requestedMs) => TimeSpan.FromMilliseconds(Math.Min(requestedMs ?? ExecutionTimeoutMs, ExecutionTimeoutMs));

    /// <summary>Whether a request for <paramref name="other"/> fits this version too: the same inputs and outputs (names, datatypes, shapes, encodings).</summary>
    public bool HasTheContractOf(ModelDefinition other) => TensorSpec.Same(Inputs, other.Inputs) && TensorSpec.Same(Outputs, other.Outputs);
}

/// <summary>
/// A tensor's name, KServe v2 datatype and shape, with <c>-1</c> for a dynamic dimension. The first
/// dimension of a batching model is the batch; a job sends one item (batch dimension 1).
/// <paramref name="Encoding"/>: how a BYTES input's strings carry its bytes, when the model reads
/// them as bytes (<c>base64</c>, <see cref="TensorEncodings"/>); submit refuses a string that is not so
/// encoded, instead of a job that fails when it runs.
/// </summary>
public sealed record TensorSpec(
    string Name,
    string Datatype,
    long[] Shape,
    string? Description = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Encoding = null)
{
    /// <summary>Whether two lists declare the same tensors, in order (descriptions aside).</summary>
    public static bool Same(IReadOnlyList<TensorSpec> a, IReadOnlyList<TensorSpec> b) =>
        a.Count == b.Count && a.Zip(b).All(p => p.First.Name == p.Second.Name && p.First.Datatype == p.Second.Datatype
            && p.First.Shape.SequenceEqual(p.Second.Shape) && p.First.Encoding == p.Second.Encoding);
}

/// <summary>The encodings a BYTES tensor's strings may declare in the manifest.</summary>
public static class TensorEncodings
{
    /// <summary>Each element is the standard base64 (RFC 4648, padded; whitespace between groups allowed) of the bytes.</summary>
    public const string Base64 = "base64";
}

public sealed record BatchingSpec(int MaxBatch, int MaxBatchDelayMs);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(List<ModelDefinition>))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
