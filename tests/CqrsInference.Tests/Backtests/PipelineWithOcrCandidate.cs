using System.Text.Json.Nodes;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Backtests;

/// <summary>
/// The whole pipeline with a test manifest: PP-OCRv4 version 4 (the default, served) and version
/// 4-vocab, the same weights with a vocabulary in which the digit 7 reads as '⑦' (retired: no job
/// is routed to it, a backtest may still run it). So version 4-vocab answers differently exactly
/// for the lines whose text has a 7.
/// </summary>
public sealed class PipelineWithOcrCandidate : Fixtures.PipelineWithAllRoles
{
    public const string Candidate = "4-vocab";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"cqrsi-backtest-{Guid.NewGuid():N}");

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Models:Manifest"] = Path.Combine(_directory, "manifest.json"),
        ["Backtests:PollInterval"] = "00:00:00.200",
    };

    public override async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        var vocabulary = (await File.ReadAllLinesAsync(Path.Combine(TestEnvironment.ModelsDirectory, "ppocr_keys_v1.txt"))).Select(l => l == "7" ? "⑦" : l);
        var changed = Path.Combine(_directory, "ppocr_keys_seven.txt");
        await File.WriteAllLinesAsync(changed, vocabulary);

        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(TestEnvironment.Manifest))!.AsArray();
        var ocr = manifest.First(m => m!["name"]!.GetValue<string>() == "ppocr-rec")!.AsObject();
        ocr["default"] = true;
        ocr["comparison"] = new JsonObject
        {
            ["text"] = new JsonObject { ["rule"] = "exact" },
            ["confidence"] = new JsonObject { ["rule"] = "tolerance", ["tolerance"] = 0.001 },
        };
        var candidate = ocr.DeepClone().AsObject();
        candidate["version"] = Candidate;
        candidate["default"] = false;
        candidate["state"] = "retired";
        candidate["assets"] = new JsonObject { ["vocabulary"] = changed };
        manifest.Add(candidate);
        await File.WriteAllTextAsync(Path.Combine(_directory, "manifest.json"), manifest.ToJsonString());
        await base.InitializeAsync();
    }
}
