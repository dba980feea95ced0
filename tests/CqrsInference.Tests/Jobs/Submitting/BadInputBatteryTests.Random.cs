using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CqrsInference.Api.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using CsCheck;
using Npgsql;

namespace CqrsInference.Tests.Jobs.Submitting;

/// <summary>The random requests (CsCheck generators): valid mlp-test requests with mutations, broken JSON, odd content types.</summary>
public sealed partial class BadInputBatteryTests
{
    /// <summary>A random request; <see cref="ToString"/> is what CsCheck prints for a failure.</summary>
    private sealed record Sample(string? ContentType, string Body, bool Malformed)
    {
        public override string ToString() => $"Content-Type: {ContentType ?? "(none)"}; {(Malformed ? "malformed " : "")}body: {Truncate(Body)}";
    }

    /// <summary>A piece of a request: its JSON (null where the field is left out) and whether it is valid.</summary>
    private readonly record struct Part(string? Json, bool Valid);

    private static readonly HashSet<string> KnownFields = ["model", "inputs", "region", "priority", "metadata", "name", "datatype", "shape", "data", "parameters"];

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex Token();

    /// <summary>Strings with odd characters: lone surrogates, NUL, zero-width and bidi marks, emoji, wildcards.</summary>
    private static readonly Gen<string> OddString = Gen.OneOf(
        Gen.String[0, 12],
        Gen.Char["\u200b\u202e\ud800\udc00\udfff\u0000\ufeff\u00e9*>. \t\"\\/x4"].Array[0, 8].Select(chars => new string(chars)),
        Gen.Const("🤖"),
        Gen.Const("jobs.>"),
        Gen.Const("*"),
        Gen.Const("mlp-test\u200b"),
        Gen.Const(""));

    /// <summary>A JSON string literal: every non-ASCII character escaped (lone surrogates included), or raw UTF-8.</summary>
    private static readonly Gen<string> OddJsonString = Gen.Select(OddString, Gen.Bool, (s, escapeAll) => Quote(s, escapeAll));

    private static string Quote(string s, bool escapeAll)
    {
        var builder = new StringBuilder("\"");
        foreach (var c in s)
        {
            if (c is '"' or '\\')
            {
                builder.Append('\\').Append(c);
            }
            else if (c < 0x20 || (escapeAll && c > 0x7e) || char.IsSurrogate(c))
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.Append('"').ToString();
    }

    private static readonly Gen<string> JsonScalar = Gen.OneOf(
        Gen.Const("null"),
        Gen.Const("true"),
        Gen.Const("false"),
        Gen.Int.Select(i => i.ToString(CultureInfo.InvariantCulture)),
        Gen.Long.Select(l => l.ToString(CultureInfo.InvariantCulture)),
        Gen.Double.Select(d => double.IsFinite(d) ? d.ToString("R", CultureInfo.InvariantCulture) : "1e400"),
        Gen.OneOf(Gen.Const("1e39"), Gen.Const("-0"), Gen.Const("9223372036854775808"), Gen.Const("0.5e-400")),
        OddJsonString);

    /// <summary>Keys that are never a field the API knows.</summary>
    private static readonly Gen<string> UnknownKey = OddString.Where(k => !KnownFields.Contains(k)).Select(k => Quote(k, escapeAll: true));

    private static Gen<string> JsonValue(int depth) => depth == 0
        ? JsonScalar
        : Gen.Frequency(
            (3, JsonScalar),
            (1, JsonValue(depth - 1).Array[0, 5].Select(items => "[" + string.Join(",", items) + "]")),
            (1, Gen.Select(UnknownKey, JsonValue(depth - 1)).Array[0, 5].Select(members => "{" + string.Join(",", members.Select(m => $"{m.Item1}:{m.Item2}")) + "}")));

    private static readonly Gen<string> AnyJson = JsonValue(3);

    private static Gen<Part> Valid(string json) => Gen.Const(new Part(json, true));

    private static Gen<Part> Invalid(Gen<string> json) => json.Select(j => new Part(j, false));

    private static Gen<Part> Invalid(params string[] json) => Gen.OneOf(json).Select(j => new Part(j, false));

    private static readonly Gen<Part> Omitted = Gen.Const(new Part(null, false));

    private static readonly Gen<Part> OptionalOmitted = Gen.Const(new Part(null, true));

    private static readonly Gen<Part> ModelPart = Gen.Frequency(
        (8, Valid("\"mlp-test\"")),
        (1, Omitted),
        (1, Invalid("null", "42", "[\"mlp-test\"]", "\"ppocr-rec\"", "\"silero-vad\"", "\"MLP-TEST\"", "\"mlp-test \"", "\">\"")),
        (2, Invalid(OddString.Where(s => s != "mlp-test").SelectMany(s => Gen.Bool.Select(e => Quote(s, e))))));

    private static readonly Gen<Part> NamePart = Gen.Frequency(
        (8, Valid("\"x\"")),
        (1, Omitted),
        (1, Invalid("null", "1", "\"X\"", "\"audio\"", "\"x\\u0000\"")),
        (2, Invalid(OddString.Where(s => s != "x").SelectMany(s => Gen.Bool.Select(e => Quote(s, e))))));

    private static readonly Gen<Part> DatatypePart = Gen.Frequency(
        (8, Valid("\"FP32\"")),
        (1, Omitted),
        (2, Invalid("\"FP64\"", "\"INT32\"", "\"INT64\"", "\"BOOL\"", "\"BYTES\"", "\"fp32\"", "\"FP16\"", "\"\"", "32", "null")),
        (1, Invalid(OddString.Where(s => s != "FP32").Select(s => Quote(s, escapeAll: true)))));

    private static readonly Gen<string> BadDataToken = Gen.OneOf(
        Gen.Const("\"1\""), Gen.Const("true"), Gen.Const("false"), Gen.Const("null"), Gen.Const("{}"), Gen.Const("{\"v\":1}"),
        Gen.Const("1e39"), Gen.Const("-1e39"), Gen.Const("1e400"), Gen.Const("\"NaN\""), Gen.Const("[]"), Gen.Const("[1,2]"), OddJsonString);

    private static readonly Gen<string> FiniteFloat = Gen.OneOf(
        Gen.Int[-1000, 1000].Select(i => i.ToString(CultureInfo.InvariantCulture)),
        Gen.Double[-1e30, 1e30].Select(d => d.ToString("R", CultureInfo.InvariantCulture)));

    /// <summary>Shape and data together: a valid data array needs a valid shape.</summary>
    private static readonly Gen<(Part Shape, Part Data)> ShapeAndData = Gen.Frequency(
        (3, Gen.Int[1, 64].SelectMany(batch => FiniteFloat.Array[batch * 4].SelectMany(values => Gen.Frequency(
            (2, Gen.Const(new Part("[" + string.Join(",", values) + "]", true))),
            (1, Gen.Int[0, values.Length - 1].SelectMany(i => BadDataToken.Select(bad =>
                new Part("[" + string.Join(",", values.Select((v, j) => j == i ? bad : v)) + "]", false)))),
            (1, Gen.Int[0, 2 * values.Length + 3].Where(n => n != values.Length).Select(n =>
                new Part("[" + string.Join(",", Enumerable.Repeat("1", n)) + "]", false))),
            (1, Gen.Int[9, 12].Select(depth => new Part(Nested(string.Join(",", values), depth), false))),
            (1, Gen.OneOf(Gen.Const("null"), Gen.Const("{}"), Gen.Const("\"1,2,3,4\""), Gen.Const("4")).Select(j => new Part(j, false))),
            (1, Omitted))
            .Select(data => (new Part($"[{batch},4]", true), data))))),
        (2, Gen.OneOf(
                Gen.Int[-5, 70].Select(i => i.ToString(CultureInfo.InvariantCulture)),
                Gen.OneOf("0", "-1", "-0", "4", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "2147483647", "2147483648",
                    "1e3", "1.5", "4.0", "\"1\"", "null", "true", "[]", "[1]", "{}"))
            .Array[0, 10]
            .Where(dims => !(dims.Length == 2 && int.TryParse(dims[0], NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b is >= 1 and <= 64 && dims[1] == "4"))
            .SelectMany(dims => Gen.Frequency(
                    (3, Gen.OneOf(FiniteFloat, BadDataToken).Array[0, 20].Select(items => "[" + string.Join(",", items) + "]")),
                    (1, AnyJson))
                .Select(data => (new Part("[" + string.Join(",", dims) + "]", false), new Part(data, false))))),
        (1, Gen.Select(Gen.OneOf(Gen.Const((string?)null), Gen.Const<string?>("4"), Gen.Const<string?>("null"), Gen.Const<string?>("{\"0\":1}"), Gen.Const<string?>("\"[1,4]\"")), AnyJson)
            .Select((shape, data) => (new Part(shape, false), new Part(data, false)))));

    private static readonly Gen<Part> RegionPart = Gen.Frequency(
        (6, OptionalOmitted),
        (1, Valid("null")),
        (1, Valid("\"local\"")),
        (1, Valid("\"eu-1\"")),
        (1, Invalid("\"jobs.>\"", "\"*\"", "\">\"", "\"\"", "\" \"", "\"EU\"", "\"a.b\"", "1", "[]", "\"" + new string('r', 64) + "\"")),
        (1, OddString.Select(s => new Part(Quote(s, escapeAll: true), Token().IsMatch(s)))));

    private static readonly Gen<Part> PriorityPart = Gen.Frequency(
        (6, OptionalOmitted),
        (1, Valid("null")),
        (1, Valid("\"interactive\"")),
        (1, Valid("\"batch\"")),
        (1, Invalid("\"urgent\"", "\"Batch\"", "\"\"", "1", "true", "{}")),
        (1, Invalid(OddString.Where(s => s is not ("interactive" or "batch")).Select(s => Quote(s, escapeAll: false)))));

    private static readonly Gen<Part> MetadataPart = Gen.Frequency(
        (6, OptionalOmitted),
        (1, Valid("null")),
        (1, Valid("{\"k\":\"v\"}")),
        (1, Invalid("{\"k\":1}", "[]", "\"s\"", "{\"k\":{\"a\":\"b\"}}", "{\"k\":null}",
            "{" + string.Join(",", Enumerable.Range(0, 33).Select(i => $"\"k{i}\":\"v\"")) + "}",
            "{\"" + new string('k', 129) + "\":\"v\"}")),
        // A string value under a short key is valid metadata; anything else is not.
        (1, Gen.Select(UnknownKey, AnyJson).Select((k, v) => new Part($"{{{k}:{v}}}", v.StartsWith('"') && k.Length <= 130 && v.Length <= 514))));

    /// <summary>An extra field at the top (where) or in the tensor; none is valid.</summary>
    private static readonly Gen<(int Where, Part Extra)> ExtraPart = Gen.Frequency(
        (6, Gen.Const((0, new Part(null, true)))),
        (1, Gen.Select(UnknownKey, AnyJson).Select((k, v) => (1, new Part($"{k}:{v}", false)))),
        (1, Gen.Select(UnknownKey, AnyJson).Select((k, v) => (2, new Part($"{k}:{v}", false)))));

    /// <summary>A valid mlp-test request with random mutations, at least one of which breaks it.</summary>
    private static readonly Gen<string> MutatedRequest = Gen.Select(ModelPart, NamePart, DatatypePart, ShapeAndData, RegionPart, PriorityPart, MetadataPart, ExtraPart)
        .Where(t => !(t.Item1.Valid && t.Item2.Valid && t.Item3.Valid && t.Item4.Shape.Valid && t.Item4.Data.Valid && t.Item5.Valid && t.Item6.Valid && t.Item7.Valid && t.Item8.Extra.Valid))
        .Select(t =>
        {
            var (model, name, datatype, (shape, data), region, priority, metadata, (where, extra)) = t;
            static string Fields(params (string Key, Part Part)[] fields) =>
                string.Join(",", fields.Where(f => f.Part.Json is not null).Select(f => $"\"{f.Key}\":{f.Part.Json}"));
            var tensor = Fields(("name", name), ("datatype", datatype), ("shape", shape), ("data", data));
            if (where == 2)
            {
                tensor = tensor.Length == 0 ? extra.Json! : tensor + "," + extra.Json;
            }

            var top = Fields(("model", model), ("inputs", new Part("[{" + tensor + "}]", true)), ("region", region), ("priority", priority), ("metadata", metadata));
            if (where == 1)
            {
                top += "," + extra.Json;
            }

            return "{" + top + "}";
        });

    private static readonly Gen<string?> ContentType = Gen.Frequency(
        (12, Gen.Const<string?>(Json)),
        (1, Gen.Const<string?>("application/json; charset=utf-8")),
        (1, Gen.Const<string?>("APPLICATION/JSON")),
        (1, Gen.OneOf<string?>(null, "text/plain", "application/xml", "multipart/form-data; boundary=b", "application/octet-stream", "text/json", "application/problem+json")));

    /// <summary>Text that makes any JSON text malformed when put before or after it.</summary>
    private static readonly Gen<string> Garbage = Gen.OneOf(" x", "}", "]", ",", "{}", "NaN", "\u0000", "//", "\ufeff", "'", "\"");

    /// <summary>Well-formed JSON (a mutated job or any value), sometimes broken: truncated, or garbage before or after.</summary>
    private static readonly Gen<Sample> RandomRequest = Gen.Select(
        ContentType,
        Gen.Frequency((3, MutatedRequest), (1, AnyJson)),
        Gen.Int[0, 7],
        Gen.Int[0, int.MaxValue],
        Garbage,
        (contentType, body, corruption, cut, garbage) => corruption switch
        {
            // A container cut short is never JSON; a cut scalar may be (12345 -> 12), so only containers are cut.
            0 when body[0] is '{' or '[' => new Sample(contentType, body[..(cut % body.Length)], Malformed: true),
            1 => new Sample(contentType, body + garbage, Malformed: true),
            2 => new Sample(contentType, garbage + body, Malformed: true),
            _ => new Sample(contentType, body, Malformed: false),
        });
}
