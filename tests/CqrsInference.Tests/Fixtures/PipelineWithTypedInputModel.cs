using System.Text.Json.Nodes;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

/// <summary>
/// The API beside the usual models plus <c>typed-test</c>, whose inputs are one of each numeric and
/// boolean datatype (INT32 <c>count</c>, INT64 <c>id</c>, FP64 <c>weight</c>, BOOL <c>flag</c>), so
/// that submit's range rules can be tried over HTTP. No processor: such jobs are only queued.
/// </summary>
public sealed class PipelineWithTypedInputModel : PipelineWithAllRoles
{
    private readonly string _manifest = Path.Combine(Path.GetTempPath(), $"cqrsi-typed-{Guid.NewGuid():N}.json");

    protected override string Roles => "api,projections";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Models:Manifest"] = _manifest };

    public override async Task InitializeAsync()
    {
        var models = JsonNode.Parse(await File.ReadAllTextAsync(TestEnvironment.Manifest))!.AsArray();
        models.Add(JsonNode.Parse("""
            {
              "name": "typed-test", "version": "1", "runner": "tensor", "file": "generated/mlp-test.onnx",
              "inputs": [
                { "name": "count", "datatype": "INT32", "shape": [1] },
                { "name": "id", "datatype": "INT64", "shape": [1] },
                { "name": "weight", "datatype": "FP64", "shape": [1] },
                { "name": "flag", "datatype": "BOOL", "shape": [1] }
              ],
              "outputs": [ { "name": "y", "datatype": "FP32", "shape": [1] } ]
            }
            """));
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

    /// <summary>A typed-test job with each input's one element as given (JSON text).</summary>
    public static string Job(string count = "7", string id = "9007199254740993", string weight = "0.5", string flag = "true") =>
        $$"""
        {"model":"typed-test","inputs":[
          {"name":"count","datatype":"INT32","shape":[1],"data":[{{count}}]},
          {"name":"id","datatype":"INT64","shape":[1],"data":[{{id}}]},
          {"name":"weight","datatype":"FP64","shape":[1],"data":[{{weight}}]},
          {"name":"flag","datatype":"BOOL","shape":[1],"data":[{{flag}}]}]}
        """;
}
