using System.Globalization;
using System.Text.Json;

namespace CqrsInference.Commands.Jobs.Submitting;

/// <summary>
/// What one element of a tensor must be, by datatype: the one place that says which JSON values a
/// datatype can hold. A value is accepted only if the worker reads it back as a finite value of its
/// type (<see cref="TryGetFiniteSingle"/> for FP32, so a number that overflows FP32 when narrowed is
/// refused here, not turned into an infinity in the model). JSON has no NaN or Infinity
/// literals (the body's parser refuses them with 400), and strings such as "NaN" are not numbers.
/// Integers must be written as JSON integers: 1.5, 3.0 and 1e3 are refused for INT32 and INT64.
/// </summary>
public static class TensorElements
{
    /// <summary>The longest number text quoted back in an error; longer ones are cut.</summary>
    public const int MaxQuoted = 40;

    /// <summary>Every datatype a tensor may have, in the order the API lists them.</summary>
    public static readonly IReadOnlyList<string> Datatypes = ["FP32", "FP64", "INT32", "INT64", "BOOL", "BYTES"];

    /// <summary>What is wrong with <paramref name="element"/> as a <paramref name="datatype"/> value, or null if nothing.</summary>
    /// <returns>A predicate that reads after "Element 3 of input 'x' ", such as "is 3.5e38, outside FP32's range (±3.4028235E+38)".</returns>
    public static string? Problem(string datatype, JsonElement element) => datatype switch
    {
        "FP32" => Number(element, "FP32") ?? (TryGetFiniteSingle(element, out _) ? null : OutsideRange(element, "FP32", "±3.4028235E+38")),
        "FP64" => Number(element, "FP64") ?? (element.TryGetDouble(out var d) && double.IsFinite(d) ? null : OutsideRange(element, "FP64", "±1.7976931348623157E+308")),
        "INT32" => Number(element, "INT32") ?? (element.TryGetInt32(out _) ? null : NotInteger(element, "INT32", int.MinValue, int.MaxValue)),
        "INT64" => Number(element, "INT64") ?? (element.TryGetInt64(out _) ? null : NotInteger(element, "INT64", long.MinValue, long.MaxValue)),
        "BOOL" => element.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : $"must be true or false for BOOL, not {Kind(element)}",
        "BYTES" => element.ValueKind == JsonValueKind.String ? null : $"must be a string for BYTES, not {Kind(element)}",
        _ => $"has datatype {datatype}, which is not supported",
    };

    /// <summary>
    /// A JSON number the worker reads as a finite FP32: the reader rounds to the nearest float and
    /// gives an infinity, not an error, for a number beyond the range, so the infinity is the test.
    /// </summary>
    public static bool TryGetFiniteSingle(JsonElement element, out float value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetSingle(out value) && float.IsFinite(value);
    }

    private static string? Number(JsonElement element, string datatype) =>
        element.ValueKind == JsonValueKind.Number ? null : $"must be a number for {datatype}, not {Kind(element)}";

    /// <summary>Why a JSON number is no integer of the type: written with a fraction or exponent, or out of range.</summary>
    private static string NotInteger(JsonElement element, string datatype, long min, long max)
    {
        var text = element.GetRawText();
        return text.AsSpan().IndexOfAny('.', 'e', 'E') >= 0
            ? $"is {Quote(text)}, not an integer: {datatype} takes whole numbers written without a fraction or exponent"
            : $"is {Quote(text)}, outside {datatype}'s range ({min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)})";
    }

    private static string OutsideRange(JsonElement element, string datatype, string range) =>
        $"is {Quote(element.GetRawText())}, outside {datatype}'s range ({range})";

    /// <summary>The number as the caller wrote it, cut short: a number may be thousands of digits long.</summary>
    private static string Quote(string text) => Shown.Cut(text, MaxQuoted);

    private static string Kind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => element.ValueKind == JsonValueKind.True ? "true" : "false",
        JsonValueKind.Null => "null",
        JsonValueKind.Object => "an object",
        _ => "an array",
    };
}
