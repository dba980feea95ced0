using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace CqrsInference.Cli.Output;

/// <summary>How the API's JSON reads in a table: one home for a job's fields and how values are written.</summary>
internal static class Views
{
    /// <summary>
    /// A field as text: strings as they are, timestamps in UTC to the second, milliseconds to a tenth, a job's error as
    /// <c>code: message</c>, other values as JSON; <c>null</c> for a missing or null field.
    /// </summary>
    public static string? Text(JsonElement body, string name)
    {
        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty(name, out var value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.Null or JsonValueKind.Undefined => null,
            JsonValueKind.String when name.EndsWith("At", StringComparison.Ordinal) && value.TryGetDateTimeOffset(out var at) =>
                at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number when name.EndsWith("Ms", StringComparison.Ordinal) && !value.TryGetInt64(out _) => value.GetDouble().ToString("F1", CultureInfo.InvariantCulture),
            JsonValueKind.Object when value.TryGetProperty("message", out var message) =>
                $"{(value.TryGetProperty("code", out var code) ? code.GetString() + ": " : "")}{message.GetString()}",
            JsonValueKind.Array => string.Join(", ", value.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText())),
            _ => value.GetRawText(),
        };
    }

    /// <summary>A table cell: the field's text, escaped for markup (empty when absent).</summary>
    public static string Cell(JsonElement body, string name) => Markup.Escape(Text(body, name) ?? "");

    /// <summary>The rows of an answer that is a list: a bare array, or the first array of an object (a page such as <c>{"jobs": [...], "nextCursor": …}</c>).</summary>
    public static IEnumerable<JsonElement> Rows(JsonElement body) => body.ValueKind switch
    {
        JsonValueKind.Array => body.EnumerateArray(),
        JsonValueKind.Object => body.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Array).Select(p => p.Value).FirstOrDefault().EnumerateArrayOrEmpty(),
        _ => [],
    };

    private static IEnumerable<JsonElement> EnumerateArrayOrEmpty(this JsonElement array) =>
        array.ValueKind == JsonValueKind.Array ? array.EnumerateArray() : [];

    /// <summary>A table of <paramref name="rows"/> with one column per field, named by <paramref name="columns"/> (field → header).</summary>
    public static Table Table(IEnumerable<JsonElement> rows, params (string Field, string Header)[] columns)
    {
        var table = new Table().AddColumns(columns.Select(c => c.Header).ToArray());
        foreach (var row in rows)
        {
            table.AddRow(columns.Select(c => Cell(row, c.Field)).ToArray());
        }

        return table;
    }

    /// <summary>One job, a field a row: what it is, where and how it ran, how it ended, its outputs.</summary>
    public static IRenderable Job(JsonElement job)
    {
        var table = new Table().HideHeaders().AddColumns("field", "value");
        foreach (var (field, label) in JobFields)
        {
            if (Text(job, field) is { } text)
            {
                table.AddRow($"[grey]{label}[/]", field == "status" ? $"[bold]{Markup.Escape(text)}[/]" : Markup.Escape(text));
            }
        }

        if (job.TryGetProperty("outputs", out var outputs) && outputs.ValueKind == JsonValueKind.Array)
        {
            foreach (var tensor in outputs.EnumerateArray())
            {
                table.AddRow($"[grey]output {Cell(tensor, "name")}[/]", Markup.Escape(Tensor(tensor)));
            }
        }

        return table;
    }

    /// <summary>The columns of a list of jobs.</summary>
    public static readonly (string Field, string Header)[] JobColumns =
        [("id", "id"), ("status", "status"), ("model", "model"), ("region", "region"), ("submittedAt", "submitted"), ("attempts", "attempts"), ("runMs", "run ms"), ("device", "device")];

    private static readonly (string Field, string Label)[] JobFields =
    [
        ("id", "id"), ("status", "status"), ("error", "error"), ("model", "model"), ("modelVersion", "version"), ("region", "region"),
        ("ranInRegion", "ran in region"), ("servedBy", "served by"), ("priority", "priority"), ("submittedAt", "submitted"),
        ("startedAt", "started"), ("completedAt", "completed"), ("attempts", "attempts"), ("queueWaitMs", "queue wait ms"),
        ("runMs", "run ms"), ("worker", "worker"), ("device", "device"), ("batchSize", "batch size"), ("metadata", "metadata"), ("archivedAt", "archived"),
    ];

    /// <summary>"FP32 [1,3] 0.1, 0.2, 0.3" — the first values only, as a table row has room for.</summary>
    private static string Tensor(JsonElement tensor)
    {
        var data = tensor.TryGetProperty("data", out var values) && values.ValueKind == JsonValueKind.Array ? values.EnumerateArray().ToList() : [];
        var shown = string.Join(", ", data.Take(8).Select(v => v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText()));
        var shape = tensor.TryGetProperty("shape", out var dims) ? dims.GetRawText() : "";
        return $"{Text(tensor, "datatype")} {shape} {shown}{(data.Count > 8 ? $", … ({data.Count} values)" : "")}";
    }
}
