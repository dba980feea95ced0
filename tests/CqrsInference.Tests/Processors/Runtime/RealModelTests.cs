using System.Diagnostics;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Processors.Runtime;

/// <summary>The pretrained models from npm (installed by ./test.sh), through the whole pipeline.</summary>
public sealed class RealModelTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Ocr_model_reads_the_text_of_a_rendered_line()
    {
        var png = await RenderLineAsync("Invoice 4711 paid");

        var job = await _client.SubmitAsync(OcrJob(png));
        var done = await _client.WaitForStatusAsync(job.Id, "succeeded");

        var outputs = done.GetProperty("outputs");
        outputs[0].GetProperty("name").GetString().ShouldBe("text");
        outputs[0].GetProperty("data")[0].GetString().ShouldBe("Invoice 4711 paid");
        outputs[1].Floats()[0].ShouldBeGreaterThan(0.8f);
    }

    [Fact]
    public async Task Ocr_job_with_bytes_that_are_no_image_fails_with_a_clear_reason()
    {
        var job = await _client.SubmitAsync(OcrJob(System.Text.Encoding.UTF8.GetBytes("not an image at all")));

        var failed = await _client.WaitForStatusAsync(job.Id, "failed");

        failed.GetProperty("error").GetProperty("code").GetString().ShouldBe("undecodable_image");
        failed.GetProperty("error").GetProperty("deadLettered").GetBoolean().ShouldBeFalse();
        failed.GetProperty("attempts").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task Vad_model_hears_a_tone_differently_from_silence()
    {
        var silence = new float[576];
        var job = await _client.SubmitAsync(VadJob(silence));
        var done = await _client.WaitForStatusAsync(job.Id, "succeeded");

        var probability = done.GetProperty("outputs")[0].Floats()[0];
        probability.ShouldBeInRange(0f, 0.5f);
    }

    public static string OcrJob(byte[] image) =>
        $$"""{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["{{Convert.ToBase64String(image)}}"]}]}""";

    public static string VadJob(float[] samples) =>
        $$"""{"model":"silero-vad","inputs":[{"name":"audio","datatype":"FP32","shape":[1,576],"data":[{{string.Join(",", samples.Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture)))}}]}]}""";

    /// <summary>
    /// Renders one line of black text on white with ImageMagick (installed by ./test.sh): tightly
    /// cropped with a small margin, as a text detector would hand a line to the recognizer; or, with
    /// <paramref name="crop"/> false, on a 520×48 canvas for every line, so that batches need no
    /// padding and a job's answer does not depend on its batch-mates.
    /// </summary>
    public static async Task<byte[]> RenderLineAsync(string text, bool crop = true)
    {
        var path = Path.Combine(Path.GetTempPath(), $"cqrsi-line-{Guid.NewGuid():N}.png");
        var info = new ProcessStartInfo("convert")
        {
            ArgumentList = { "-size", "520x48", "xc:white", "-font", "DejaVu-Sans", "-pointsize", "28", "-fill", "black", "-gravity", "center", "-annotate", "0", text },
            RedirectStandardError = true,
        };
        foreach (var argument in crop ? ["-trim", "+repage", "-bordercolor", "white", "-border", "6", path] : new[] { path })
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        await process.WaitForExitAsync();
        process.ExitCode.ShouldBe(0, await process.StandardError.ReadToEndAsync());
        try
        {
            return await File.ReadAllBytesAsync(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
