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

/// <summary>
/// The real PP-OCRv4 model in process: a line's answer is the same alone and next to a much wider
/// image (another tenant's, say), to the last bit of its confidence.
/// </summary>
public sealed class OcrBatchMatesTests
{
    private static readonly ModelCatalog Catalog = ModelCatalog.Load(TestEnvironment.Manifest, TestEnvironment.ModelsDirectory);

    [Fact]
    public async Task A_lines_answer_does_not_depend_on_its_batch_mates()
    {
        Catalog.TryGet("ppocr-rec", out var model).ShouldBeTrue();
        using var session = new InferenceSession(Catalog.PathOf(model.File), new SessionOptions { IntraOpNumThreads = 1 });
        using var ocr = new OcrRunner(session, "cpu", OcrRunner.LoadVocabulary(Catalog.PathOf(model.Assets!["vocabulary"])));
        var line = Job(await RealModelTests.RenderLineAsync("Hello World 2026"));
        var wide = Job(Blank(OcrRunner.MaxWidth));

        var alone = Answer(ocr.Run([line], CancellationToken.None)[0]);
        var together = ocr.Run([wide, line, wide], CancellationToken.None);

        alone.Text.ShouldBe("Hello World 2026");
        Answer(together[1]).ShouldBe(alone);
        Answer(together[0]).ShouldBe(Answer(together[2]));
    }

    private static (string? Text, float Confidence) Answer(RunOutcome outcome)
    {
        var outputs = outcome.ShouldBeOfType<RunOutcome.Succeeded>().Outputs;
        return (outputs[0].Data[0].GetString(), outputs[1].Data[0].GetSingle());
    }

    private static byte[] Blank(int width)
    {
        using var image = new Image<Rgb24>(width, OcrRunner.Height, Color.White);
        using var png = new MemoryStream();
        image.SaveAsPng(png);
        return png.ToArray();
    }

    private static JobCommand Job(byte[] png) => WorkerJobs.Command() with
    {
        Model = "ppocr-rec",
        Inputs = [new Tensor("image", "BYTES", [1], JsonSerializer.SerializeToElement(new[] { Convert.ToBase64String(png) }))],
    };
}
