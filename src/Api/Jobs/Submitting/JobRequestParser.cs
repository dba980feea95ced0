using System.Buffers;
using System.Text.Json;
using CqrsInference.Commands.Jobs;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>The submit body, read field by field so that every mistake gets its own message.</summary>
public sealed record JobRequest(
    string Model,
    string? Region,
    string? Priority,
    IReadOnlyList<Tensor> Inputs,
    IReadOnlyDictionary<string, string>? Metadata,
    string? Webhook = null,
    DateTimeOffset? Deadline = null);

public static class JobRequestParser
{
    public const int MaxMetadataEntries = 32;
    public const int MaxMetadataLength = 512;
    private static readonly HashSet<string> Known = ["model", "inputs", "region", "priority", "metadata", "webhook", "deadline"];
    private static readonly HashSet<string> KnownTensor = ["name", "datatype", "shape", "data", "parameters"];

    /// <summary>Reads a parsed body; returns the request or the errors by field.</summary>
    public static (JobRequest? Request, Dictionary<string, string[]> Errors) Parse(JsonElement root)
    {
        var errors = new Dictionary<string, string[]>();
        void Error(string field, string message) =>
            errors[field] = errors.TryGetValue(field, out var existing) ? [.. existing, message] : [message];

        if (root.ValueKind != JsonValueKind.Object)
        {
            Error("$", "The body must be a JSON object.");
            return (null, errors);
        }

        foreach (var property in root.EnumerateObject())
        {
            if (!Known.Contains(property.Name))
            {
                Error(property.Name, $"Unknown field '{property.Name}'; the fields are: {string.Join(", ", Known)}.");
            }
        }

        var model = ReadString(root, "model", required: true, Error);
        var region = ReadString(root, "region", required: false, Error);
        var priority = ReadString(root, "priority", required: false, Error);
        var inputs = new List<Tensor>();
        if (!root.TryGetProperty("inputs", out var inputsElement))
        {
            Error("inputs", "The field 'inputs' is required.");
        }
        else if (inputsElement.ValueKind != JsonValueKind.Array || inputsElement.GetArrayLength() == 0)
        {
            Error("inputs", "The field 'inputs' must be a non-empty array of tensors.");
        }
        else
        {
            var i = 0;
            foreach (var item in inputsElement.EnumerateArray())
            {
                var tensor = ReadTensor(item, $"inputs[{i}]", Error);
                if (tensor is not null)
                {
                    inputs.Add(tensor);
                }

                i++;
            }
        }

        var metadata = ReadMetadata(root, Error);
        var webhook = ReadString(root, "webhook", required: false, Error);
        DateTimeOffset? deadline = null;
        if (ReadString(root, "deadline", required: false, Error) is { } deadlineText)
        {
            if (DateTimeOffset.TryParse(deadlineText, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var parsed)
                && deadlineText.Contains('T', StringComparison.Ordinal))
            {
                deadline = parsed;
            }
            else
            {
                Error("deadline", "deadline must be an ISO 8601 timestamp with a time zone, e.g. 2026-11-25T18:00:00Z.");
            }
        }

        if (webhook is not null
            && (webhook.Length > 2048 || !Uri.TryCreate(webhook, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https")))
        {
            Error("webhook", "webhook must be an absolute http or https URL of at most 2048 characters.");
        }

        return errors.Count > 0 || model is null
            ? (null, errors)
            : (new JobRequest(model, region, priority, inputs, metadata, webhook, deadline), errors);
    }

    private static string? ReadString(JsonElement root, string name, bool required, Action<string, string> error)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                error(name, $"The field '{name}' is required.");
            }

            return null;
        }

        if (value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
        {
            error(name, $"The field '{name}' must be a non-empty string.");
            return null;
        }

        return value.GetString();
    }

    private static Tensor? ReadTensor(JsonElement item, string field, Action<string, string> error)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            error(field, "Each input must be an object with name, datatype, shape and data.");
            return null;
        }

        var failed = false;
        void Fail(string f, string m)
        {
            failed = true;
            error(f, m);
        }

        foreach (var property in item.EnumerateObject())
        {
            if (!KnownTensor.Contains(property.Name))
            {
                Fail($"{field}.{property.Name}", $"Unknown tensor field '{property.Name}'.");
            }
        }

        var name = ReadString(item, "name", required: true, (f, m) => Fail($"{field}.{f}", m));
        var datatype = ReadString(item, "datatype", required: true, (f, m) => Fail($"{field}.{f}", m));
        if (datatype is not null && !Commands.Jobs.Submitting.TensorValidator.Datatypes.Contains(datatype))
        {
            Fail($"{field}.datatype", $"Datatype '{datatype}' is not supported; use one of: {string.Join(", ", Commands.Jobs.Submitting.TensorValidator.Datatypes)}.");
        }

        long[]? shape = null;
        if (!item.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            Fail($"{field}.shape", "The field 'shape' is required and must be an array of positive integers.");
        }
        else
        {
            shape = new long[shapeElement.GetArrayLength()];
            var d = 0;
            foreach (var dim in shapeElement.EnumerateArray())
            {
                if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var size) || size <= 0 || size > int.MaxValue)
                {
                    Fail($"{field}.shape", $"Dimension {d} must be an integer between 1 and {int.MaxValue}.");
                    break;
                }

                shape[d++] = size;
            }

            if (shape.Length is 0 or > 8)
            {
                Fail($"{field}.shape", "The shape must have between 1 and 8 dimensions.");
            }
        }

        JsonElement data = default;
        if (!item.TryGetProperty("data", out var dataElement) || dataElement.ValueKind != JsonValueKind.Array)
        {
            Fail($"{field}.data", "The field 'data' is required and must be an array (flat, or nested row-major).");
        }
        else
        {
            data = Flatten(dataElement, out var flatError);
            if (flatError is not null)
            {
                Fail($"{field}.data", flatError);
            }
            else if (shape is not null && !failed && IsNested(dataElement) && !MatchesShape(dataElement, shape, 0))
            {
                Fail($"{field}.data", $"Nested data must match the shape [{string.Join(",", shape)}] level by level (no ragged rows).");
            }
        }

        return failed ? null : new Tensor(name!, datatype!, shape!, data);
    }

    private static bool IsNested(JsonElement data) => data.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.Array);

    /// <summary>Nested data is read row-major, so every level must have exactly the declared length.</summary>
    private static bool MatchesShape(JsonElement array, long[] shape, int dimension)
    {
        if (dimension >= shape.Length || array.GetArrayLength() != shape[dimension])
        {
            return false;
        }

        var last = dimension == shape.Length - 1;
        foreach (var element in array.EnumerateArray())
        {
            if (last ? element.ValueKind == JsonValueKind.Array : element.ValueKind != JsonValueKind.Array || !MatchesShape(element, shape, dimension + 1))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>KServe v2 allows nested arrays; inside the system tensors are always flat.</summary>
    private static JsonElement Flatten(JsonElement data, out string? error)
    {
        error = null;
        var nested = false;
        foreach (var element in data.EnumerateArray())
        {
            if (element.ValueKind == JsonValueKind.Array)
            {
                nested = true;
                break;
            }
        }

        if (!nested)
        {
            return data;
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            if (!WriteFlat(data, writer, depth: 1))
            {
                error = "Nested data may be at most 8 levels deep.";
            }

            writer.WriteEndArray();
        }

        return JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone();
    }

    private static bool WriteFlat(JsonElement array, Utf8JsonWriter writer, int depth)
    {
        if (depth > 8)
        {
            return false;
        }

        foreach (var element in array.EnumerateArray())
        {
            if (element.ValueKind == JsonValueKind.Array)
            {
                if (!WriteFlat(element, writer, depth + 1))
                {
                    return false;
                }
            }
            else
            {
                element.WriteTo(writer);
            }
        }

        return true;
    }

    private static Dictionary<string, string>? ReadMetadata(JsonElement root, Action<string, string> error)
    {
        if (!root.TryGetProperty("metadata", out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (element.ValueKind != JsonValueKind.Object)
        {
            error("metadata", "The field 'metadata' must be an object of string values.");
            return null;
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.String)
            {
                error($"metadata.{property.Name}", "Metadata values must be strings.");
            }
            else if (property.Name.Length > 128 || property.Value.GetString()!.Length > MaxMetadataLength)
            {
                error($"metadata.{property.Name}", $"Metadata keys are at most 128 characters and values at most {MaxMetadataLength}.");
            }
            else
            {
                metadata[property.Name] = property.Value.GetString()!;
            }
        }

        if (metadata.Count > MaxMetadataEntries)
        {
            error("metadata", $"At most {MaxMetadataEntries} metadata entries.");
        }

        return metadata;
    }
}
