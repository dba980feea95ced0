using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace CqrsInference.Projections.Recording.JobLog;

/// <summary>
/// The recorder's last line against a value PostgreSQL's <c>jsonb</c> cannot store: the NUL
/// character in a string, and a number with more digits than <c>numeric</c> holds (16,383 after the
/// point). The API refuses both; a message that reached the log some other way (a processor, a tool
/// with publish rights) would otherwise fail every attempt at its run, and every later event of its
/// partition would wait behind it for good. Such a document is recorded with each NUL replaced by
/// U+FFFD and each such number by the nearest double (what a model reads of it anyway), and the
/// recorder logs it. A document without either is recorded exactly as serialized: the check is one
/// pass over its text.
/// </summary>
internal static class JsonbRepair
{
    /// <summary>Digits in a row, outside strings, beyond which a number is rewritten (a double needs 17).</summary>
    private const int MaxDigits = 100;

    /// <summary>The largest exponent left as it is, either way (a double's lies within ±324).</summary>
    private const int MaxExponent = 1000;

    /// <summary><paramref name="json"/> as it can be stored: itself when it can, else repaired (and <paramref name="repaired"/> is true).</summary>
    public static string Storable(string json, out bool repaired)
    {
        repaired = !IsStorable(json);
        return repaired ? Repair(json) : json;
    }

    /// <summary>Whether jsonb stores this JSON text as it is: no <c>\u0000</c> in a string, no overlong number.</summary>
    internal static bool IsStorable(ReadOnlySpan<char> json)
    {
        var inString = false;
        var digits = 0;
        for (var i = 0; i < json.Length; i++)
        {
            var c = json[i];
            if (inString)
            {
                if (c == '\\')
                {
                    if (json[(i + 1)..].StartsWith("u0000", StringComparison.Ordinal))
                    {
                        return false;
                    }

                    i++;
                }
                else if (c == '"')
                {
                    inString = false;
                }

                continue;
            }

            if (char.IsAsciiDigit(c))
            {
                if (++digits > MaxDigits)
                {
                    return false;
                }

                continue;
            }

            digits = 0;
            if (c == '"')
            {
                inString = true;
            }
            else if (c is 'e' or 'E')
            {
                if (Exponent(json, ref i) > MaxExponent)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>The exponent after the 'e' at <paramref name="i"/> (capped past the limit); <paramref name="i"/> ends on its last digit.</summary>
    private static int Exponent(ReadOnlySpan<char> json, ref int i)
    {
        var end = i + 1 < json.Length && json[i + 1] is '+' or '-' ? i + 2 : i + 1;
        var exponent = 0;
        while (end < json.Length && char.IsAsciiDigit(json[end]))
        {
            exponent = Math.Min((exponent * 10) + (json[end] - '0'), MaxExponent + 1);
            end++;
        }

        i = end - 1;
        return exponent;
    }

    /// <summary>The same document with each NUL as U+FFFD and each overlong number as the nearest double.</summary>
    internal static string Repair(string json)
    {
        var buffer = new ArrayBufferWriter<byte>(json.Length + 16);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true }))
        {
            var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json), new JsonReaderOptions { MaxDepth = 1024 });
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        writer.WriteStartObject();
                        break;
                    case JsonTokenType.EndObject:
                        writer.WriteEndObject();
                        break;
                    case JsonTokenType.StartArray:
                        writer.WriteStartArray();
                        break;
                    case JsonTokenType.EndArray:
                        writer.WriteEndArray();
                        break;
                    case JsonTokenType.PropertyName:
                        writer.WritePropertyName(Clean(reader.GetString()!));
                        break;
                    case JsonTokenType.String:
                        writer.WriteStringValue(Clean(reader.GetString()!));
                        break;
                    case JsonTokenType.Number:
                        var number = Encoding.UTF8.GetString(reader.ValueSpan);
                        if (IsStorable(number))
                        {
                            writer.WriteRawValue(reader.ValueSpan, skipInputValidation: true);
                        }
                        else
                        {
                            writer.WriteNumberValue(Nearest(reader));
                        }

                        break;
                    case JsonTokenType.True or JsonTokenType.False:
                        writer.WriteBooleanValue(reader.GetBoolean());
                        break;
                    case JsonTokenType.Null:
                        writer.WriteNullValue();
                        break;
                }
            }
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string Clean(string text) => text.Replace('\0', '\uFFFD');

    /// <summary>The nearest double; beyond a double's range, its largest value of the same sign.</summary>
    private static double Nearest(Utf8JsonReader reader) =>
        reader.TryGetDouble(out var value) && double.IsFinite(value)
            ? value
            : reader.ValueSpan[0] == (byte)'-' ? double.MinValue : double.MaxValue;
}
