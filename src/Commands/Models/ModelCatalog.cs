using System.Text.Json;
using System.Text.RegularExpressions;

namespace CqrsInference.Commands.Models;

/// <summary>
/// The set of models this deployment serves, read from the manifest: each model (a name) has one
/// or more versions (entries with that name), one of them its default.
/// </summary>
/// <remarks>
/// The rules of a manifest, checked once at load (<see cref="Load"/> stops the start with the
/// entry named): a version appears once per model; a model with several versions marks exactly
/// one <c>"default": true</c>, and that one is serving; weights are 0 to 100, only on serving
/// versions, and when any version of a model has one, its serving versions' weights sum to 100;
/// every version of a model has the same inputs and outputs (names, datatypes, shapes), so a
/// caller's request fits whichever version it lands on and a version's outputs can be compared
/// with another's. Files, runner, assets, batching, slots and timeout may differ. At most one
/// version of a model is a <c>"state": "shadow"</c> (<see cref="ShadowOf"/>); comparison rules
/// (<see cref="ModelDefinition.Comparison"/>) name outputs of the model and are usable.
/// </remarks>
public sealed partial class ModelCatalog
{
    private readonly Dictionary<string, IReadOnlyList<ModelVersionInfo>> _versions;
    private readonly Dictionary<string, ModelDefinition> _defaults;

    /// <summary>A catalog of the entries given, which must already follow the rules (<see cref="Load"/> checks them).</summary>
    public ModelCatalog(IEnumerable<ModelDefinition> models, string modelsDirectory)
    {
        var entries = models.ToList();
        _versions = entries.GroupBy(m => m.Name, StringComparer.Ordinal).ToDictionary(
            g => g.Key,
            g => (IReadOnlyList<ModelVersionInfo>)g.Select(m => new ModelVersionInfo(m, IsDefault(m, g.Count()), m.Weight ?? 0)).ToList(),
            StringComparer.Ordinal);
        _defaults = _versions.ToDictionary(p => p.Key, p => (p.Value.FirstOrDefault(v => v.IsDefault) ?? p.Value[0]).Model, StringComparer.Ordinal);
        AllVersions = entries;
        ModelsDirectory = modelsDirectory;
    }

    private static bool IsDefault(ModelDefinition model, int versions) => model.Default || versions == 1;

    public string ModelsDirectory { get; }

    /// <summary>The default version of each model: one entry per model name.</summary>
    public IReadOnlyCollection<ModelDefinition> All => _defaults.Values;

    /// <summary>Every version of every model, in manifest order (retired ones too).</summary>
    public IReadOnlyList<ModelDefinition> AllVersions { get; }

    /// <summary>The default version of the model <paramref name="name"/>.</summary>
    public bool TryGet(string name, out ModelDefinition model) => _defaults.TryGetValue(name, out model!);

    /// <summary>The version <paramref name="version"/> of the model <paramref name="name"/>, whatever its state.</summary>
    public bool TryGet(string name, string version, out ModelDefinition model)
    {
        model = VersionsOf(name).FirstOrDefault(v => v.Version == version)?.Model!;
        return model is not null;
    }

    /// <summary>The versions of the model <paramref name="name"/> in manifest order, with their routing; empty when it is not served.</summary>
    public IReadOnlyList<ModelVersionInfo> VersionsOf(string name) => _versions.TryGetValue(name, out var versions) ? versions : [];

    /// <summary>
    /// The model's shadow version (<c>"state": "shadow"</c>), or null: processors that serve the
    /// model load it too and run each of its succeeded jobs on it again, on spare capacity, to
    /// compare the answers; no job runs on it for a caller (pinning it is refused).
    /// </summary>
    public ModelDefinition? ShadowOf(string name) => VersionsOf(name).FirstOrDefault(v => v.State == ModelVersionStates.Shadow)?.Model;

    /// <summary>The versions of <paramref name="name"/> that jobs may run on.</summary>
    public IReadOnlyList<string> ServingVersionsOf(string name) => [.. VersionsOf(name).Where(v => v.IsServing).Select(v => v.Version)];

    /// <summary>
    /// Which version a job runs on: the one it pins (<paramref name="version"/>), which must be
    /// serving; else <see cref="VersionSplit.Route"/> (the weights, else the default).
    /// </summary>
    public VersionResolution Resolve(string name, string? version, Guid jobId)
    {
        var versions = VersionsOf(name);
        if (versions.Count == 0)
        {
            return new VersionResolution.UnknownModel(name);
        }

        if (version is null)
        {
            return new VersionResolution.Resolved(VersionSplit.Route(versions, jobId), Pinned: false);
        }

        return versions.FirstOrDefault(v => v.Version == version) switch
        {
            { IsServing: true } pinned => new VersionResolution.Resolved(pinned.Model, Pinned: true),
            var other => new VersionResolution.VersionNotServed(name, version, Retired: other is { State: ModelVersionStates.Retired }, ServingVersionsOf(name)),
        };
    }

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
            CheckEntry(model);
        }

        foreach (var versions in models.GroupBy(m => m.Name, StringComparer.Ordinal))
        {
            CheckVersions([.. versions]);
        }

        return new ModelCatalog(models, modelsDirectory);
    }

    /// <summary>The rules of one manifest entry on its own.</summary>
    private static void CheckEntry(ModelDefinition model)
    {
        if (!Naming.IsToken(model.Name))
        {
            throw new InvalidDataException($"Model name '{model.Name}' must be {Naming.TokenRule}: it is a NATS subject token.");
        }

        if (model.Version is null || !VersionRegex().IsMatch(model.Version))
        {
            throw new InvalidDataException($"Model '{model.Name}' has version '{model.Version}'; a version is {VersionRule}.");
        }

        if (!ModelVersionStates.All.Contains(model.State))
        {
            throw new InvalidDataException(
                $"Version '{model.Version}' of model '{model.Name}' has state '{model.State}'; the states are: {string.Join(", ", ModelVersionStates.All)}.");
        }

        if (model.ExecutionTimeoutMs is < 1 or > ModelDefinition.MaxTimeoutMs)
        {
            throw new InvalidDataException(
                $"Model '{model.Name}' has timeoutMs {model.TimeoutMs}; it must be 1 to {ModelDefinition.MaxTimeoutMs} (an hour), or absent for {ModelDefinition.DefaultTimeoutMs}.");
        }

        CheckComparison(model);

        // A tensor of a datatype the API has no rule for could never be sent or returned: say so at start.
        if (model.Inputs.Concat(model.Outputs).FirstOrDefault(t => !Jobs.Submitting.TensorElements.Datatypes.Contains(t.Datatype)) is { } tensor)
        {
            throw new InvalidDataException(
                $"Tensor '{tensor.Name}' of model '{model.Name}' has datatype '{tensor.Datatype}'; the datatypes are: {string.Join(", ", Jobs.Submitting.TensorElements.Datatypes)}.");
        }

        if (model.Inputs.Concat(model.Outputs).FirstOrDefault(t => t.Encoding is not null && (t.Encoding != TensorEncodings.Base64 || t.Datatype != "BYTES")) is { } encoded)
        {
            throw new InvalidDataException(
                $"Tensor '{encoded.Name}' of model '{model.Name}' has encoding '{encoded.Encoding}'; the only encoding is '{TensorEncodings.Base64}', on a BYTES tensor.");
        }
    }

    /// <summary>A version's comparison rules: each names an output of the model and can be used.</summary>
    private static void CheckComparison(ModelDefinition model)
    {
        foreach (var (output, rule) in model.Comparison ?? new Dictionary<string, OutputRule>())
        {
            if (model.Outputs.All(o => o.Name != output))
            {
                throw new InvalidDataException(
                    $"Version '{model.Version}' of model '{model.Name}' has a comparison rule for '{output}', which is not one of its outputs ({string.Join(", ", model.Outputs.Select(o => o.Name))}).");
            }

            if (rule?.Problem is { } problem)
            {
                throw new InvalidDataException($"Version '{model.Version}' of model '{model.Name}': the comparison rule of output '{output}' is not usable: {problem}.");
            }

            if (rule is null)
            {
                throw new InvalidDataException($"Version '{model.Version}' of model '{model.Name}': the comparison rule of output '{output}' is empty.");
            }
        }
    }

    /// <summary>The rules between the versions of one model (see the class remarks).</summary>
    private static void CheckVersions(IReadOnlyList<ModelDefinition> versions)
    {
        var name = versions[0].Name;
        if (versions.GroupBy(v => v.Version, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } duplicate)
        {
            throw new InvalidDataException($"Model '{name}' lists version '{duplicate.Key}' {duplicate.Count()} times; each version appears once.");
        }

        var defaults = versions.Where(v => v.Default).Select(v => v.Version).ToList();
        if (defaults.Count > 1 || (defaults.Count == 0 && versions.Count > 1))
        {
            throw new InvalidDataException(defaults.Count > 1
                ? $"Model '{name}' marks versions {string.Join(", ", defaults)} as default; mark exactly one \"default\": true."
                : $"Model '{name}' has versions {string.Join(", ", versions.Select(v => v.Version))} and none is the default; mark exactly one \"default\": true.");
        }

        if (versions.FirstOrDefault(v => IsDefault(v, versions.Count) && v.State != ModelVersionStates.Serving) is { } retiredDefault)
        {
            throw new InvalidDataException($"Model '{name}''s default version '{retiredDefault.Version}' is {retiredDefault.State}; the default must be serving.");
        }

        var shadows = versions.Where(v => v.State == ModelVersionStates.Shadow).Select(v => v.Version).ToList();
        if (shadows.Count > 1)
        {
            throw new InvalidDataException($"Model '{name}' has shadow versions {string.Join(", ", shadows)}; a model has at most one shadow version.");
        }

        CheckWeights(name, versions);
        if (versions.Skip(1).FirstOrDefault(v => !v.HasTheContractOf(versions[0])) is { } differing)
        {
            throw new InvalidDataException(
                $"Version '{differing.Version}' of model '{name}' has inputs or outputs that differ from version '{versions[0].Version}''s; every version of a model has the same inputs and outputs (names, datatypes, shapes, encodings).");
        }
    }

    private static void CheckWeights(string name, IReadOnlyList<ModelDefinition> versions)
    {
        if (versions.FirstOrDefault(v => v.Weight is < 0 or > 100) is { } outOfRange)
        {
            throw new InvalidDataException($"Version '{outOfRange.Version}' of model '{name}' has weight {outOfRange.Weight}; a weight is 0 to 100 (percent of unpinned jobs).");
        }

        if (versions.FirstOrDefault(v => v.Weight > 0 && v.State != ModelVersionStates.Serving) is { } weightedRetired)
        {
            throw new InvalidDataException($"Version '{weightedRetired.Version}' of model '{name}' is {weightedRetired.State} but has weight {weightedRetired.Weight}; only serving versions take unpinned jobs.");
        }

        var sum = versions.Where(v => v.State == ModelVersionStates.Serving).Sum(v => v.Weight ?? 0);
        if (versions.Any(v => v.Weight is not null) && sum != 100)
        {
            throw new InvalidDataException(
                $"The weights of model '{name}''s serving versions sum to {sum}; they are percentages of unpinned jobs and sum to 100 (or leave every weight out to send unpinned jobs to the default).");
        }
    }

    /// <summary>The rule of a version label, in words, for error messages.</summary>
    public const string VersionRule = "1 to 63 characters: letters, digits, '.', '-' and '_', starting with a letter or digit";

    [GeneratedRegex(@"\A[A-Za-z0-9][A-Za-z0-9._-]{0,62}\z", RegexOptions.CultureInvariant)]
    private static partial Regex VersionRegex();
}

/// <summary>The states of a model version (<see cref="ModelDefinition.State"/>).</summary>
public static class ModelVersionStates
{
    /// <summary>Loaded by processors; jobs run on it (pinned, by weight, or as the default).</summary>
    public const string Serving = "serving";

    /// <summary>Listed but never run: a job that pins it is refused, processors do not load it.</summary>
    public const string Retired = "retired";

    /// <summary>
    /// Loaded by processors that serve the model, never run for a caller: each succeeded job of the
    /// model runs on it again on spare capacity and the answers are compared (<see cref="ModelCatalog.ShadowOf"/>).
    /// </summary>
    public const string Shadow = "shadow";

    public static readonly IReadOnlyList<string> All = [Serving, Retired, Shadow];
}

/// <summary>
/// One version of a model with its routing as the catalog reads it: <paramref name="IsDefault"/>
/// (also true for a model's only version) and <paramref name="Weight"/> (0 when the manifest gives none).
/// </summary>
public sealed record ModelVersionInfo(ModelDefinition Model, bool IsDefault, int Weight)
{
    public string Version => Model.Version;

    public string State => Model.State;

    public bool IsServing => Model.State == ModelVersionStates.Serving;
}

/// <summary>Which version a job runs on (<see cref="ModelCatalog.Resolve"/>).</summary>
public abstract record VersionResolution
{
    /// <summary>The job runs on <paramref name="Model"/>; <paramref name="Pinned"/> when it asked for that version.</summary>
    public sealed record Resolved(ModelDefinition Model, bool Pinned) : VersionResolution;

    /// <summary>No model of that name is served here.</summary>
    public sealed record UnknownModel(string Model) : VersionResolution;

    /// <summary>The pinned version is not in the manifest, or is <paramref name="Retired"/>; <paramref name="Serving"/> lists those a job may pin.</summary>
    public sealed record VersionNotServed(string Model, string Version, bool Retired, IReadOnlyList<string> Serving) : VersionResolution
    {
        /// <summary>What the refusal says.</summary>
        public string Detail =>
            $"Version '{Shown.Cut(Version)}' of model '{Shown.Cut(Model)}' {(Retired ? "is retired" : "is not served here")}; the served versions are: {string.Join(", ", Serving)}.";
    }
}
