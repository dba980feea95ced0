using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Infrastructure;
using Microsoft.ML.OnnxRuntime;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using WorkerJobs = CqrsInference.Tests.Processors.Worker.Jobs;

namespace CqrsInference.Tests.Processors.Runtime;

/// <summary>The real PP-OCRv4 model in the test's process: its runner on one thread, and its jobs.</summary>
internal sealed class OcrInProcess : IDisposable
{
    private static readonly ModelCatalog Catalog = ModelCatalog.Load(TestEnvironment.Manifest, TestEnvironment.ModelsDirectory);

    private readonly InferenceSession _session;

    public OcrInProcess()
    {
        Catalog.TryGet("ppocr-rec", out var model).ShouldBeTrue();
        Model = model;
        _session = new InferenceSession(Catalog.PathOf(model.File), new SessionOptions { IntraOpNumThreads = 1 });
        Runner = new OcrRunner(_session, "cpu", OcrRunner.LoadVocabulary(Catalog.PathOf(model.Assets!["vocabulary"])));
    }

    public ModelDefinition Model { get; }

    public OcrRunner Runner { get; }

    /// <summary>A white image <paramref name="width"/> columns wide, the model's height, as PNG.</summary>
    public static byte[] Blank(int width)
    {
        using var image = new Image<Rgb24>(width, OcrRunner.Height, Color.White);
        using var png = new MemoryStream();
        image.SaveAsPng(png);
        return png.ToArray();
    }

    /// <summary>An OCR job of <paramref name="png"/>.</summary>
    public static JobCommand Job(byte[] png, int? timeoutMs = null) => WorkerJobs.Command(timeoutMs: timeoutMs) with
    {
        Model = "ppocr-rec",
        Inputs = [new Tensor("image", "BYTES", [1], JsonSerializer.SerializeToElement(new[] { Convert.ToBase64String(png) }))],
    };

    public void Dispose()
    {
        Runner.Dispose();
        _session.Dispose();
    }
}
