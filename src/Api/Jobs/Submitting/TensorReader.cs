using System.Buffers;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>
/// Reads one tensor in the Open Inference Protocol (KServe v2) layout: name, datatype, shape (1 to 8
/// positive dimensions) and data, flat or nested row-major. Nested data must match the shape level
/// by level and is flattened: inside the system tensors are always flat.
/// </summary>
internal static class TensorReader
{
    public const int MaxDimensions = 8;
    private static readonly HashSet<string> Known = ["name", "datatype", "shape", "data", "parameters"];

    public static Tensor? Read(JsonElement item, FieldErrors.Scope errors)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            errors.Add("", "Each input must be an object with name, datatype, shape and data.");
            return null;
        }

        foreach (var property in item.EnumerateObject().Where(p => !Known.Contains(p.Name)))
        {
            errors.Add(property.Name, $"Unknown tensor field '{property.Name}'.");
        }

        // The protocol's tensor parameters are an object (they are not applied: tensors come as JSON data).
        if (item.TryGetProperty("parameters", out var parameters) && parameters.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
        {
            errors.Add("parameters", "The field 'parameters' must be an object.");
        }

        var name = JobRequestParser.ReadString(item, "name", required: true, errors.Add);
        var datatype = JobRequestParser.ReadString(item, "datatype", required: true, errors.Add);
        if (datatype is not null && !TensorValidator.Datatypes.Contains(datatype))
        {
            errors.Add("datatype", $"Datatype '{datatype}' is not supported; use one of: {string.Join(", ", TensorValidator.Datatypes)}.");
        }

        var shape = ReadShape(item, errors);
        var data = ReadData(item, shape, errors);
        return errors.Any ? null : new Tensor(name!, datatype!, shape!, data);
    }

    private static long[]? ReadShape(JsonElement item, FieldErrors.Scope errors)
    {
        if (!item.TryGetProperty("shape", out var element) || element.ValueKind != JsonValueKind.Array)
        {
            errors.Add("shape", "The field 'shape' is required and must be an array of positive integers.");
            return null;
        }

        var shape = new long[element.GetArrayLength()];
        var d = 0;
        foreach (var dimension in element.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out var size) || size <= 0 || size > int.MaxValue)
            {
                errors.Add("shape", $"Dimension {d} must be an integer between 1 and {int.MaxValue}.");
                break;
            }

            shape[d++] = size;
        }

        if (shape.Length is 0 or > MaxDimensions)
        {
            errors.Add("shape", $"The shape must have between 1 and {MaxDimensions} dimensions.");
        }

        return shape;
    }

    private static JsonElement ReadData(JsonElement item, long[]? shape, FieldErrors.Scope errors)
    {
        if (!item.TryGetProperty("data", out var element) || element.ValueKind != JsonValueKind.Array)
        {
            errors.Add("data", "The field 'data' is required and must be an array (flat, or nested row-major).");
            return default;
        }

        var data = Flatten(element, out var flatError);
        if (flatError is not null)
        {
            errors.Add("data", flatError);
        }
        else if (shape is not null && !errors.Any && IsNested(element) && !MatchesShape(element, shape, 0))
        {
            errors.Add("data", $"Nested data must match the shape [{string.Join(",", shape)}] level by level (no ragged rows).");
        }

        return data;
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

    private static JsonElement Flatten(JsonElement data, out string? error)
    {
        error = null;
        if (!IsNested(data))
        {
            return data;
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            if (!WriteFlat(data, writer, depth: 1))
            {
                error = $"Nested data may be at most {MaxDimensions} levels deep.";
            }

            writer.WriteEndArray();
        }

        return JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone();
    }

    private static bool WriteFlat(JsonElement array, Utf8JsonWriter writer, int depth)
    {
        if (depth > MaxDimensions)
        {
            return false;
        }

        foreach (var element in array.EnumerateArray())
        {
            if (element.ValueKind != JsonValueKind.Array)
            {
                element.WriteTo(writer);
            }
            else if (!WriteFlat(element, writer, depth + 1))
            {
                return false;
            }
        }

        return true;
    }
}
