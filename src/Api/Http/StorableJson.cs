using System.Runtime.InteropServices;
using System.Text.Json;

namespace CqrsInference.Api.Http;

/// <summary>
/// What a request's JSON may hold beyond JSON's own rules, because it is kept: a job's request
/// goes into its history in PostgreSQL (<c>jsonb</c>), which refuses the NUL character (U+0000) in
/// a string and a number with more than 16,383 digits after the point. Such a request, accepted,
/// would be an event the recorder could never store, and every later event of its partition would
/// wait behind it; so it is refused before anything is stored, naming the value.
/// </summary>
internal static class StorableJson
{
    /// <summary>The longest number accepted, in characters (a 64-bit float needs at most 24).</summary>
    public const int MaxNumberLength = 100;

    /// <summary>The largest exponent accepted, either way (a 64-bit float's lies within ±324).</summary>
    public const int MaxExponent = 1000;

    private const string NulInString = "holds the NUL character (U+0000), which the job's history cannot store.";
    private const string NulInName = "is a property name that holds the NUL character (U+0000), which the job's history cannot store.";

    private static readonly string NumberTooLong =
        $"is a number written in more than {MaxNumberLength} characters or with an exponent beyond ±{MaxExponent}, which the job's history cannot store; write it shorter (a 64-bit float needs at most 24 characters).";

    /// <summary>
    /// The first value that could not be stored, as its path in the body (<c>inputs[0].data[3]</c>,
    /// <c>metadata.note</c>) and why; null when every value can. A string that is not valid Unicode
    /// (a lone <c>\ud800</c>) throws <see cref="InvalidOperationException"/>, as reading it would.
    /// </summary>
    public static (string Path, string Reason)? FindUnstorable(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return element.GetString()!.Contains('\0', StringComparison.Ordinal) ? ("", NulInString) : null;
            case JsonValueKind.Number:
                return IsStorableNumber(JsonMarshal.GetRawUtf8Value(element)) ? null : ("", NumberTooLong);
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Name.Contains('\0', StringComparison.Ordinal))
                    {
                        return (property.Name.Replace("\0", "\\u0000", StringComparison.Ordinal), NulInName);
                    }

                    if (FindUnstorable(property.Value) is { } found)
                    {
                        return (Join(property.Name, found.Path), found.Reason);
                    }
                }

                return null;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (FindUnstorable(item) is { } found)
                    {
                        return (Join($"[{index}]", found.Path), found.Reason);
                    }

                    index++;
                }

                return null;
            default:
                return null;
        }
    }

    /// <summary>
    /// The error for a value <see cref="FindUnstorable"/> found: the field (its path, <c>$</c> for the
    /// whole) and a sentence that names it (<paramref name="whole"/> when it is the whole, "The body").
    /// </summary>
    public static (string Field, string Message) Error((string Path, string Reason) value, string whole) =>
        value.Path.Length == 0 ? ("$", $"{whole} {value.Reason}") : (value.Path, $"{value.Path} {value.Reason}");

    /// <summary>Whether PostgreSQL's <c>numeric</c> holds this JSON number exactly: short, with a modest exponent.</summary>
    internal static bool IsStorableNumber(ReadOnlySpan<byte> number)
    {
        if (number.Length > MaxNumberLength)
        {
            return false;
        }

        var e = number.IndexOfAny((byte)'e', (byte)'E');
        if (e < 0)
        {
            return true;
        }

        var exponent = number[(e + 1)..];
        if (exponent.Length > 0 && exponent[0] is (byte)'+' or (byte)'-')
        {
            exponent = exponent[1..];
        }

        exponent = exponent.TrimStart((byte)'0');
        var value = 0;
        foreach (var digit in exponent)
        {
            value = (value * 10) + (digit - '0');
            if (value > MaxExponent)
            {
                return false;
            }
        }

        return true;
    }

    private static string Join(string head, string tail) =>
        tail.Length == 0 ? head : tail[0] == '[' ? head + tail : $"{head}.{tail}";
}
