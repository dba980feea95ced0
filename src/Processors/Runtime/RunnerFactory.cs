using CqrsInference.Commands.Models;

namespace CqrsInference.Processors.Runtime;

/// <summary>Builds the runner a manifest entry names, writing generated models first.</summary>
internal sealed class RunnerFactory(ModelCatalog catalog, SessionFactory sessions)
{
    /// <summary>Whether the model's files are present (generated models always can be).</summary>
    public bool IsAvailable(ModelDefinition model) =>
        model.Generator is not null
        || (File.Exists(catalog.PathOf(model.File)) && (model.Assets ?? new Dictionary<string, string>()).Values.All(a => File.Exists(catalog.PathOf(a))));

    /// <summary>
    /// The model's runner, for <paramref name="slots"/> runs at once. A shadow version's session
    /// gets one intra-op thread: its runs keep to the low-priority thread that calls them
    /// (<see cref="Worker.Shadowing.LowPriorityThread"/>) instead of waking pool threads at the
    /// primary's priority.
    /// </summary>
    public IModelRunner Create(ModelDefinition model, int slots)
    {
        var path = catalog.PathOf(model.File);
        if (model.Generator is not null)
        {
            GeneratedModels.EnsureWritten(model.Generator, path);
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Model file for '{model.Name}' not found at '{path}' (run ./run.sh once to install the models).", path);
        }

        if (model.Runner != "ppocr-rec" && model.Options is { Count: > 0 } options)
        {
            throw new InvalidOperationException($"Version '{model.Version}' of model '{model.Name}' has options ({string.Join(", ", options.Keys)}); runner '{model.Runner}' takes none.");
        }

        var (session, device) = sessions.Create(path, slots, model.State == ModelVersionStates.Shadow ? 1 : null);
        return model.Runner switch
        {
            "tensor" => new TensorRunner(model, session, device),
            "ppocr-rec" => new OcrRunner(session, device, OcrRunner.LoadVocabulary(catalog.PathOf(model.Assets?["vocabulary"] ?? throw new InvalidOperationException($"Model {model.Name} needs assets.vocabulary."))),
                OcrRunner.Preprocessing.Of(model)),
            "silero-vad" => new VadRunner(session, device),
            var other => throw new InvalidOperationException($"Model '{model.Name}' names unknown runner '{other}'."),
        };
    }
}
