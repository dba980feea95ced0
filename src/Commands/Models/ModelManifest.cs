using System.Text.Json;
using System.Text.Json.Serialization;

namespace CqrsInference.Commands.Models;

/// <summary>A model as the manifest (<c>models/manifest.json</c>) describes it.</summary>
public sealed record ModelDefinition
{
    /// <summary>Name used in the API and in the queue subject <c>jobs.&lt;region&gt;.&lt;model&gt;</c>.</summary>
    public required string Name { get; init; }

    public required string Version { get; init; }

    /// <summary>Which runner serves it: <c>tensor</c> (plain tensors), <c>ppocr-rec</c>, <c>silero-vad</c>.</summary>
    public required string Runner { get; init; }

    /// <summary>ONNX file, relative to the models directory.</summary>
    public required string File { get; init; }

    /// <summary>When set, the processor writes this generated model to <see cref="File"/> if it is missing.</summary>
    public string? Generator { get; init; }

    /// <summary>Extra files a runner needs (e.g. the OCR vocabulary), relative to the models directory.</summary>
    public IReadOnlyDictionary<string, string>? Assets { get; init; }

    // Optional fields with a default are settable, not init-only: the source-generated reader sets
    // every init-only property, to its type's default (0, null) when the JSON lacks it, but a
    // settable one only when the JSON has it.
    public string Description { get; set; } = "";

    public required IReadOnlyList<TensorSpec> Inputs { get; init; }

    public required IReadOnlyList<TensorSpec> Outputs { get; init; }

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
}

/// <summary>
/// A tensor's name, KServe v2 datatype and shape, with <c>-1</c> for a dynamic dimension. The first
/// dimension of a batching model is the batch; a job sends one item (batch dimension 1).
/// </summary>
public sealed record TensorSpec(string Name, string Datatype, long[] Shape, string? Description = null);

public sealed record BatchingSpec(int MaxBatch, int MaxBatchDelayMs);

/// <summary>The set of models this deployment serves, read from the manifest.</summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, ModelDefinition> _models;

    public ModelCatalog(IEnumerable<ModelDefinition> models, string modelsDirectory)
    {
        _models = models.ToDictionary(m => m.Name, StringComparer.Ordinal);
        ModelsDirectory = modelsDirectory;
    }

    public string ModelsDirectory { get; }

    public IReadOnlyCollection<ModelDefinition> All => _models.Values;

    public bool TryGet(string name, out ModelDefinition model) => _models.TryGetValue(name, out model!);

    public string PathOf(string relative) => Path.GetFullPath(Path.Combine(ModelsDirectory, relative));

    public static ModelCatalog Load(string manifestPath, string modelsDirectory)
    {
        if (!System.IO.File.Exists(manifestPath))
        {
            throw new FileNotFoundException($"Model manifest not found at '{Path.GetFullPath(manifestPath)}'.", manifestPath);
        }

        using var stream = System.IO.File.OpenRead(manifestPath);
        var models = JsonSerializer.Deserialize(stream, ManifestJsonContext.Default.ListModelDefinition)
            ?? throw new InvalidDataException($"Model manifest '{manifestPath}' is empty.");
        foreach (var model in models)
        {
            if (!Naming.IsToken(model.Name))
            {
                throw new InvalidDataException($"Model name '{model.Name}' must be {Naming.TokenRule}: it is a NATS subject token.");
            }

            if (model.ExecutionTimeoutMs is < 1 or > ModelDefinition.MaxTimeoutMs)
            {
                throw new InvalidDataException(
                    $"Model '{model.Name}' has timeoutMs {model.TimeoutMs}; it must be 1 to {ModelDefinition.MaxTimeoutMs} (an hour), or absent for {ModelDefinition.DefaultTimeoutMs}.");
            }

            // A tensor of a datatype the API has no rule for could never be sent or returned: say so at start.
            if (model.Inputs.Concat(model.Outputs).FirstOrDefault(t => !Jobs.Submitting.TensorElements.Datatypes.Contains(t.Datatype)) is { } tensor)
            {
                throw new InvalidDataException(
                    $"Tensor '{tensor.Name}' of model '{model.Name}' has datatype '{tensor.Datatype}'; the datatypes are: {string.Join(", ", Jobs.Submitting.TensorElements.Datatypes)}.");
            }
        }

        return new ModelCatalog(models, modelsDirectory);
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(List<ModelDefinition>))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;
