using System.Text.Json.Nodes;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Versions;

/// <summary>
/// The whole pipeline on the repo's manifest (ppocr-rec versions 4 and 4-gray), with mlp-test in two
/// versions split 90/10: version 1 (default, weight 90) and version 2 (weight 10), the same generated
/// file under both labels, so that the split itself is what is measured.
/// </summary>
public sealed class PipelineWithTwoVersions : PipelineWithAllRoles
{
    private readonly string _manifest = Path.Combine(Path.GetTempPath(), $"cqrsi-two-versions-{Guid.NewGuid():N}.json");

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Models:Manifest"] = _manifest };

    public override async Task InitializeAsync()
    {
        var models = JsonNode.Parse(await File.ReadAllTextAsync(TestEnvironment.Manifest))!.AsArray();
        var mlp = models.Single(m => m!["name"]!.GetValue<string>() == "mlp-test")!.AsObject();
        (mlp["default"], mlp["weight"]) = (true, 90);
        var second = mlp.DeepClone().AsObject();
        (second["version"], second["default"], second["weight"]) = ("2", false, 10);
        models.Insert(models.IndexOf(mlp) + 1, second);
        await File.WriteAllTextAsync(_manifest, models.ToJsonString());
        try
        {
            await base.InitializeAsync();
        }
        finally
        {
            // The catalog is read once, at start.
            File.Delete(_manifest);
        }
    }
}
