using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// PP-OCRv4 text-line recognition of a frame at the edge, through the same <see cref="OcrRunner"/>
/// (preprocessing and CTC decoding) the job processors use. Recognition only, no text detection:
/// a frame is one line of text (a display, a label, a plate).
/// </summary>
internal sealed class TextLineReader(OcrRunner runner) : IDisposable
{
    public static TextLineReader Create(ModelCatalog catalog, string modelName)
    {
        if (!catalog.TryGet(modelName, out var model))
        {
            throw new InvalidOperationException($"EdgeSite:TextModel '{modelName}' is not in the model manifest.");
        }

        var vocabulary = model.Assets?.GetValueOrDefault("vocabulary") ?? throw new InvalidOperationException($"Model {model.Name} needs assets.vocabulary.");
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        return new TextLineReader(new OcrRunner(new InferenceSession(catalog.PathOf(model.File), options), "cpu", OcrRunner.LoadVocabulary(catalog.PathOf(vocabulary))));
    }

    /// <summary>The text of one line image and its mean character confidence.</summary>
    public (string Text, float Confidence) Read(byte[] image)
    {
        var frame = new JobCommand(
            JobId: Guid.Empty,
            Tenant: "edge",
            Model: "ppocr-rec",
            ModelVersion: "",
            Region: "edge",
            Priority: "normal",
            SubmittedAt: DateTimeOffset.UnixEpoch,
            RequestDigest: "",
            Inputs: [TensorJson.Bytes("image", Convert.ToBase64String(image))],
            Metadata: null);
        return runner.Run([frame], CancellationToken.None)[0] switch
        {
            RunOutcome.Succeeded s => (TensorJson.ReadString(s.Outputs[0]), TensorJson.ReadFloats(s.Outputs[1])[0]),
            RunOutcome.Rejected r => throw new UnreadableItemException(r.Code, r.Reason),
            RunOutcome.Faulted f => throw new UnreadableItemException(f.Code, $"The text model's run failed: {f.Reason}"),
            var other => throw new InvalidOperationException($"Unexpected outcome {other}"),
        };
    }

    public void Dispose() => runner.Dispose();
}
