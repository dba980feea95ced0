using CqrsInference.Commands.Models;

namespace CqrsInference.Processors.Worker;

/// <summary>
/// Which versions of which models a processor serves, from <c>Processor:Models</c>, as a pure
/// decision. Empty: every serving version whose files are present. An entry <c>name</c>: every
/// serving version of that model (it must be in the manifest); <c>name@version</c>: that version only (it must be serving).
/// Entries of one model add up (<c>["ocr@4", "ocr@4-gray"]</c>). A model served here keeps one
/// queue and one worker whatever its versions: the worker holds a runner per version served and
/// runs each job on the version its message names (<see cref="Running.VersionExecutors"/>). With
/// <c>shadows</c>, a served model's shadow version (<see cref="ModelCatalog.ShadowOf"/>)
/// is served too when its files are present: it runs the model's succeeded jobs again (<see cref="Shadowing.ShadowRunner"/>).
/// </summary>
internal static class ServedVersions
{
    /// <summary>The separator of an entry's model name and version.</summary>
    public const char Separator = '@';

    /// <summary>The versions to serve, per model, in manifest order; throws naming an entry the manifest cannot serve.</summary>
    public static IReadOnlyList<IReadOnlyList<ModelDefinition>> Select(
        ModelCatalog catalog, IReadOnlyCollection<string> entries, Func<ModelDefinition, bool> isAvailable, bool shadows = true)
    {
        var chosen = entries.Count == 0
            ? catalog.AllVersions.Where(v => v.State == ModelVersionStates.Serving && isAvailable(v)).ToHashSet()
            : entries.SelectMany(e => Entry(catalog, e)).ToHashSet();
        if (shadows)
        {
            chosen.UnionWith(chosen.Select(v => catalog.ShadowOf(v.Name)).OfType<ModelDefinition>().Where(isAvailable).ToList());
        }

        return [.. catalog.AllVersions.Where(chosen.Contains).GroupBy(v => v.Name, StringComparer.Ordinal).Select(g => (IReadOnlyList<ModelDefinition>)[.. g])];
    }

    private static IEnumerable<ModelDefinition> Entry(ModelCatalog catalog, string entry)
    {
        var at = entry.IndexOf(Separator, StringComparison.Ordinal);
        var (name, version) = at < 0 ? (entry, null) : (entry[..at], entry[(at + 1)..]);
        return catalog.Resolve(name, version, Guid.Empty) switch
        {
            // A processor told to serve a model the manifest does not have would serve nothing, healthy and silent.
            VersionResolution.UnknownModel => throw new InvalidOperationException(
                $"Processor:Models entry '{entry}': the manifest has no model '{name}' (its models: {string.Join(", ", catalog.AllVersions.Select(v => v.Name).Distinct())})."),
            VersionResolution.VersionNotServed refusal => throw new InvalidOperationException($"Processor:Models entry '{entry}': {refusal.Detail}"),
            _ when version is null => catalog.VersionsOf(name).Where(v => v.IsServing).Select(v => v.Model),
            VersionResolution.Resolved resolved => [resolved.Model],
            _ => [],
        };
    }
}
