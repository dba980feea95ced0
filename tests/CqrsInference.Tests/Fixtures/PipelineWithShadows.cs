using System.Text.Json.Nodes;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

/// <summary>
/// The whole application with two shadowed models: <c>mlp-test</c> whose shadow version
/// <c>1-shadow</c> is the same network (its answers agree), and <c>mlp-shadowed</c>, served by the
/// same network, whose shadow version <c>2</c> is <c>mlp-v2</c> (each output raised by 1: its answers
/// differ beyond the manifest's tolerance of 0.01).
/// </summary>
public sealed class PipelineWithShadows : PipelineWithAllRoles
{
    private readonly string _manifest = Path.Combine(Path.GetTempPath(), $"cqrsi-shadows-{Guid.NewGuid():N}.json");

    // The shadow's wait for an idle host (Processor:ShadowMinIdleCpu) is ShadowQueueTests' and
    // SpareCpuTests'; here every job is shadowed however busy the test run keeps the machine.
    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Models:Manifest"] = _manifest,
        ["Processor:ShadowMinIdleCpu"] = "0",
    };

    public override async Task InitializeAsync()
    {
        var models = JsonNode.Parse(await File.ReadAllTextAsync(TestEnvironment.Manifest))!.AsArray();
        var mlp = models.Single(m => m!["name"]!.GetValue<string>() == "mlp-test")!;
        var shadow = mlp.DeepClone();
        shadow["version"] = "1-shadow";
        shadow["state"] = "shadow";
        mlp["default"] = true;
        models.Add(shadow);

        var shadowed = mlp.DeepClone();
        shadowed["name"] = "mlp-shadowed";
        shadowed["comparison"] = JsonNode.Parse("""{ "y": { "rule": "tolerance", "tolerance": 0.01 } }""");
        var different = shadowed.DeepClone();
        (different["version"], different["state"], different["file"], different["generator"]) = ("2", "shadow", "generated/mlp-v2.onnx", "mlp-v2");
        different.AsObject().Remove("default");
        models.Add(shadowed);
        models.Add(different);
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
