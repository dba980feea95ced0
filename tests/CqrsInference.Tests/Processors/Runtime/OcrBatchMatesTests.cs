using CqrsInference.Processors.Runtime;

namespace CqrsInference.Tests.Processors.Runtime;

/// <summary>
/// The real PP-OCRv4 model in process: a line's answer is the same alone and next to a much wider
/// image (another tenant's, say), to the last bit of its confidence.
/// </summary>
public sealed class OcrBatchMatesTests
{
    [Fact]
    public async Task A_lines_answer_does_not_depend_on_its_batch_mates()
    {
        using var ocr = new OcrInProcess();
        var line = OcrInProcess.Job(await RealModelTests.RenderLineAsync("Hello World 2026"));
        var wide = OcrInProcess.Job(OcrInProcess.Blank(OcrRunner.MaxWidth));

        var alone = Answer(ocr.Runner.Run([line], CancellationToken.None)[0]);
        var together = ocr.Runner.Run([wide, line, wide], CancellationToken.None);

        alone.Text.ShouldBe("Hello World 2026");
        Answer(together[1]).ShouldBe(alone);
        Answer(together[0]).ShouldBe(Answer(together[2]));
    }

    private static (string? Text, float Confidence) Answer(RunOutcome outcome)
    {
        var outputs = outcome.ShouldBeOfType<RunOutcome.Succeeded>().Outputs;
        return (outputs[0].Data[0].GetString(), outputs[1].Data[0].GetSingle());
    }
}
