using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.OpenApi;

/// <summary>One operation of the OpenAPI document: where it is and what it says.</summary>
public sealed record ApiOperation(string Path, string Method, JsonElement Body)
{
    public string Id => Body.GetProperty("operationId").GetString()!;

    public JsonElement Responses => Body.GetProperty("responses");

    public IReadOnlyList<int> Statuses => Responses.EnumerateObject().Select(r => int.Parse(r.Name, System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();

    /// <summary>The media types declared for an answer of this status (none for a bodiless one).</summary>
    public IReadOnlyList<string> ContentTypes(int status) =>
        Responses.TryGetProperty(status.ToString(System.Globalization.CultureInfo.InvariantCulture), out var response) && response.TryGetProperty("content", out var content)
            ? content.EnumerateObject().Select(c => c.Name).ToList()
            : [];

    public override string ToString() => $"{Method} {Path} ({Id})";
}

/// <summary>The API's OpenAPI document as served, and the copy the client is generated from.</summary>
public sealed class ApiDocument(JsonElement root)
{
    /// <summary>The committed copy (docs/openapi/v1.json) that src/Client is generated from at build.</summary>
    public static string CommittedPath => Path.Combine(TestEnvironment.RepositoryRoot, "docs", "openapi", "v1.json");

    public JsonElement Root => root;

    public static async Task<ApiDocument> LoadAsync(HttpClient client) =>
        new(await client.GetFromJsonAsync<JsonElement>("/openapi/v1.json"));

    public IReadOnlyList<ApiOperation> Operations =>
        root.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Select(op => new ApiOperation(path.Name, op.Name.ToUpperInvariant(), op.Value)))
            .ToList();

    public ApiOperation Operation(string id) => Operations.Single(o => o.Id == id);

    public JsonElement Schema(string name) => root.GetProperty("components").GetProperty("schemas").GetProperty(name);

    /// <summary>The document without what depends on the address it was asked at (its servers), as the committed copy keeps it.</summary>
    public string Portable()
    {
        var node = JsonNode.Parse(root.GetRawText())!.AsObject();
        node.Remove("servers");
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }

    /// <summary>Every JSON object anywhere in the document, for rules that hold everywhere.</summary>
    public static IEnumerable<JsonElement> Objects(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => new[] { element }.Concat(element.EnumerateObject().SelectMany(p => Objects(p.Value))),
        JsonValueKind.Array => element.EnumerateArray().SelectMany(Objects),
        _ => [],
    };
}
