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

/// <summary>The battery's data: every malformed request, with the status it must get (its logic is in BadInputBatteryTests.cs).</summary>
public sealed partial class BadInputBatteryTests
{
    private static string Mlp(string tensor = ValidX, string extra = "", string model = "\"mlp-test\"") =>
        $$"""{"model":{{model}},"inputs":[{{tensor}}]{{extra}}}""";

    private static string X(string name = "\"x\"", string datatype = "\"FP32\"", string shape = "[1,4]", string data = "[1,2,3,4]", string extra = "") =>
        $$"""{"name":{{name}},"datatype":{{datatype}},"shape":{{shape}},"data":{{data}}{{extra}}}""";

    private static string Repeat(string item, int count, string separator = ",") =>
        string.Join(separator, Enumerable.Repeat(item, count));

    private static string Nested(string inner, int depth) => new string('[', depth) + inner + new string(']', depth);

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static BadRequest J(string description, int expected, string body) => new(description, expected, Json, () => Utf8(body));

    private static BadRequest Lazy(string description, int expected, Func<string> body) => new(description, expected, Json, () => Utf8(body()));

    private static List<BadRequest> BuildBattery()
    {
        var zeros = (int count) => "[" + Repeat("0", count) + "]";
        List<BadRequest> battery =
        [
            // Wrong content type (the body itself is valid: the media type alone refuses it).
            new("no Content-Type header", 415, null, () => Utf8(ValidBody)),
            new("Content-Type text/plain", 415, "text/plain; charset=utf-8", () => Utf8(ValidBody)),
            new("Content-Type application/xml with an XML body", 415, "application/xml", () => Utf8("<job><model>mlp-test</model></job>")),
            new("Content-Type multipart/form-data", 415, "multipart/form-data; boundary=b", () => Utf8($"--b\r\nContent-Disposition: form-data; name=\"job\"\r\n\r\n{ValidBody}\r\n--b--\r\n")),
            new("Content-Type application/x-www-form-urlencoded", 415, "application/x-www-form-urlencoded", () => Utf8("model=mlp-test&inputs=x")),
            new("Content-Type application/problem+json", 415, "application/problem+json", () => Utf8(ValidBody)),
            new("Content-Type application/json-patch+json with a JSON Patch body", 415, "application/json-patch+json", () => Utf8("""[{"op":"add","path":"/model","value":"mlp-test"}]""")),
            new("UTF-16 body declared as application/json; charset=utf-16", 415, "application/json; charset=utf-16", () => Encoding.Unicode.GetBytes(ValidBody)),
            new("UTF-8 body declared as application/json; charset=latin1", 415, "application/json; charset=latin1", () => Utf8(ValidBody)),
            new("plain body declared Content-Encoding: gzip", 415, Json, () => Utf8(ValidBody), Headers: new Dictionary<string, string> { ["Content-Encoding"] = "gzip" }),

            // Too large.
            new("9 MiB body with a Content-Length", 413, Json, () => Utf8(Mlp(X(data: zeros(4_718_592))))),
            new("9 MiB body sent chunked, without a Content-Length", 413, Json, () => Utf8(Mlp(X(data: zeros(4_718_592)))), Chunked: true),
            new("5,000,000-element data array (10 MB)", 413, Json, () => Utf8(Mlp(X(shape: "[1250000,4]", data: zeros(5_000_000))))),
            new("valid job padded with whitespace to 8 MiB + 1 byte", 413, Json, () => Utf8(ValidBody + new string(' ', CqrsInference.Api.Jobs.Submitting.SubmitRequestReader.MaxBodyBytes + 1 - ValidBody.Length))),

            // Not JSON.
            J("empty body", 400, ""),
            J("whitespace-only body", 400, " \r\n\t "),
            J("truncated JSON", 400, """{"model":"mlp-test","inputs":[{"name":"x","datatype":"FP32","shape":[1,4"""),
            J("trailing garbage after the object", 400, ValidBody + " garbage"),
            J("two objects back to back", 400, ValidBody + ValidBody),
            J("NaN literal in FP32 data", 400, Mlp(X(data: "[NaN,1,2,3]"))),
            J("Infinity literal in FP32 data", 400, Mlp(X(data: "[Infinity,1,2,3]"))),
            J("-Infinity literal in FP32 data", 400, Mlp(X(data: "[-Infinity,1,2,3]"))),
            J("single-quoted strings", 400, "{'model':'mlp-test','inputs':[]}"),
            J("a comment in the JSON", 400, "// a job\n" + ValidBody),
            J("trailing comma", 400, Mlp(X(data: "[1,2,3,4,]"))),
            J("unquoted field name", 400, ValidBody.Replace("\"model\"", "model", StringComparison.Ordinal)),
            J("hexadecimal number", 400, Mlp(X(data: "[0x10,1,2,3]"))),
            J("number with a leading zero", 400, Mlp(X(data: "[01,1,2,3]"))),
            J("number with a leading plus", 400, Mlp(X(data: "[+1,1,2,3]"))),
            J("raw tab and newline inside a string", 400, Mlp(model: "\"mlp\t-test\n\"")),
            J("invalid escape \\x41", 400, Mlp(model: "\"\\x41\"")),
            J("XML body declared as JSON", 400, "<job><model>mlp-test</model></job>"),
            new("UTF-8 byte order mark before the JSON", 400, Json, () => [0xEF, 0xBB, 0xBF, .. Utf8(ValidBody)]),
            new("invalid UTF-8 bytes inside the model name", 400, Json, () => [.. Utf8("{\"model\":\"mlp"), 0xC3, 0x28, 0xFF, .. Utf8("-test\",\"inputs\":[" + ValidX + "]}")]),
            J("nesting depth 33 (one over the limit)", 400, Nested("1", 33)),
            J("nesting depth 40 inside metadata", 400, Mlp(extra: ",\"metadata\":{\"k\":" + Nested("1", 40) + "}")),
            Lazy("nesting depth 100,000", 400, () => Nested("", 100_000)),
            J("lone high surrogate escape in the model name", 400, Mlp(model: "\"mlp-test\\ud800\"")),
            J("lone low surrogate escape in the input name", 400, Mlp(X(name: "\"\\udc00\""))),
            J("reversed surrogate pair in the datatype", 400, Mlp(X(datatype: "\"FP32\\udc00\\ud800\""))),
            J("lone surrogate escape in an unknown field name", 400, Mlp(extra: ",\"\\ud800\":1")),
            J("lone surrogate escape in a metadata key", 400, Mlp(extra: ",\"metadata\":{\"\\ud800\":\"v\"}")),
            J("lone surrogate escape in a metadata value", 400, Mlp(extra: ",\"metadata\":{\"k\":\"\\udfff\"}")),
            J("lone surrogate escape in the region", 400, Mlp(extra: ",\"region\":\"\\ud800\"")),

            // Well-formed JSON that is not a job object.
            J("the JSON literal null", 422, "null"),
            J("an empty array", 422, "[]"),
            J("a JSON string", 422, "\"mlp-test\""),
            J("a JSON number", 422, "42"),
            J("the JSON literal true", 422, "true"),
            J("an empty object", 422, "{}"),
            J("an array holding a valid job", 422, "[" + ValidBody + "]"),
            J("the model field twice (ambiguous: which one is meant?)", 400, """{"model":"mlp-test","model":"no-such-model","inputs":[""" + ValidX + "]}"),

            // The model.
            J("missing model", 422, """{"inputs":[""" + ValidX + "]}"),
            J("model null", 422, Mlp(model: "null")),
            J("model a number", 422, Mlp(model: "42")),
            J("model an empty string", 422, Mlp(model: "\"\"")),
            J("model whitespace only", 422, Mlp(model: "\"   \"")),
            J("model an array", 422, Mlp(model: "[\"mlp-test\"]")),
            J("unknown model", 422, Mlp(model: "\"no-such-model\"")),
            J("model name with a zero-width space", 422, Mlp(model: "\"mlp\u200b-test\"")),
            J("model name with an escaped zero-width space", 422, Mlp(model: "\"mlp\\u200b-test\"")),
            J("model name with a right-to-left override", 422, Mlp(model: "\"\u202etset-plm\"")),
            J("model name an emoji", 422, Mlp(model: "\"🤖\"")),
            J("model name with a NUL", 422, Mlp(model: "\"mlp-test\\u0000\"")),
            J("model name with fullwidth letters", 422, Mlp(model: "\"ｍｌｐ-test\"")),
            J("model name in upper case", 422, Mlp(model: "\"MLP-TEST\"")),
            J("model name the NATS wildcard *", 422, Mlp(model: "\"*\"")),
            J("model name the NATS wildcard >", 422, Mlp(model: "\">\"")),
            J("model name a whole NATS subject", 422, Mlp(model: "\"jobs.local.mlp-test\"")),
            Lazy("model name of 1,000,000 characters", 422, () => Mlp(model: "\"" + new string('m', 1_000_000) + "\"")),

            // The inputs list.
            J("missing inputs", 422, """{"model":"mlp-test"}"""),
            J("inputs null", 422, """{"model":"mlp-test","inputs":null}"""),
            J("inputs an object instead of an array", 422, """{"model":"mlp-test","inputs":""" + ValidX + "}"),
            J("inputs a string", 422, """{"model":"mlp-test","inputs":"x"}"""),
            J("inputs an empty array", 422, """{"model":"mlp-test","inputs":[]}"""),
            J("inputs holding null", 422, """{"model":"mlp-test","inputs":[null]}"""),
            J("inputs holding a number", 422, """{"model":"mlp-test","inputs":[1]}"""),
            J("the same input twice", 422, Mlp(ValidX + "," + ValidX)),
            Lazy("the same input 20,000 times", 422, () => Mlp(Repeat(ValidX, 20_000))),
            J("extra top-level field", 422, Mlp(extra: ",\"callback\":\"http://example.invalid/\"")),
            J("extra top-level field __proto__", 422, Mlp(extra: ",\"__proto__\":{\"admin\":true}")),
            J("extra tensor field", 422, Mlp(X(extra: ",\"foo\":1"))),
            J("field names in the wrong case", 422, """{"Model":"mlp-test","Inputs":[""" + ValidX + "]}"),

            // The tensor's name and datatype.
            J("missing tensor name", 422, Mlp("""{"datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}""")),
            J("missing datatype", 422, Mlp("""{"name":"x","shape":[1,4],"data":[1,2,3,4]}""")),
            J("missing shape", 422, Mlp("""{"name":"x","datatype":"FP32","data":[1,2,3,4]}""")),
            J("missing data", 422, Mlp("""{"name":"x","datatype":"FP32","shape":[1,4]}""")),
            J("tensor name a number", 422, Mlp(X(name: "1"))),
            J("NUL in the input name", 422, Mlp(X(name: "\"x\\u0000\""))),
            J("input name in upper case", 422, Mlp(X(name: "\"X\""))),
            J("input name of another model", 422, Mlp(X(name: "\"audio\""))),
            J("unknown datatype FP16", 422, Mlp(X(datatype: "\"FP16\""))),
            J("datatype in lower case", 422, Mlp(X(datatype: "\"fp32\""))),
            J("datatype a number", 422, Mlp(X(datatype: "32"))),
            J("wrong datatype for the model: INT32", 422, Mlp(X(datatype: "\"INT32\""))),
            J("wrong datatype for the model: BYTES", 422, Mlp(X(datatype: "\"BYTES\"", data: "[\"a\",\"b\",\"c\",\"d\"]"))),

            // The shape.
            J("shape [-1,4]", 422, Mlp(X(shape: "[-1,4]"))),
            J("shape [0,4]", 422, Mlp(X(shape: "[0,4]", data: "[]"))),
            J("shape [1,-4]", 422, Mlp(X(shape: "[1,-4]"))),
            J("shape [9223372036854775807,4]", 422, Mlp(X(shape: "[9223372036854775807,4]"))),
            J("shape [9223372036854775808,4] (overflows a long)", 422, Mlp(X(shape: "[9223372036854775808,4]"))),
            J("shape [2147483648,4] (overflows an int)", 422, Mlp(X(shape: "[2147483648,4]"))),
            J("shape [-9223372036854775808,4]", 422, Mlp(X(shape: "[-9223372036854775808,4]"))),
            J("shape [1e3,4]", 422, Mlp(X(shape: "[1e3,4]"))),
            J("shape [1.5,4]", 422, Mlp(X(shape: "[1.5,4]"))),
            J("shape [\"1\",4]", 422, Mlp(X(shape: "[\"1\",4]"))),
            J("shape [null,4]", 422, Mlp(X(shape: "[null,4]"))),
            J("shape [true,4]", 422, Mlp(X(shape: "[true,4]"))),
            J("shape [[1],4]", 422, Mlp(X(shape: "[[1],4]"))),
            J("shape []", 422, Mlp(X(shape: "[]"))),
            J("shape of 9 dimensions", 422, Mlp(X(shape: "[1,1,1,1,1,1,1,1,4]"))),
            J("shape a number", 422, Mlp(X(shape: "4"))),
            J("shape an object", 422, Mlp(X(shape: "{\"0\":1,\"1\":4}"))),
            J("shape of rank 1", 422, Mlp(X(shape: "[4]"))),
            J("shape of rank 3", 422, Mlp(X(shape: "[1,4,1]"))),
            J("shape [1,5]", 422, Mlp(X(shape: "[1,5]", data: "[1,2,3,4,5]"))),
            J("batch of 65, over the model's maxBatch 64", 422, Mlp(X(shape: "[65,4]", data: zeros(260)))),
            J("shape [2147483647,2147483647]", 422, Mlp(X(shape: "[2147483647,2147483647]"))),
            Lazy("shape of 1,000,000 dimensions", 422, () => Mlp(X(shape: "[" + Repeat("1", 1_000_000) + "]"))),

            // The data.
            J("too few elements", 422, Mlp(X(data: "[1,2,3]"))),
            Lazy("1,000,000 elements for shape [1,4]", 422, () => Mlp(X(data: zeros(1_000_000)))),
            J("data null", 422, Mlp(X(data: "null"))),
            J("data an object", 422, Mlp(X(data: "{\"0\":1,\"1\":2,\"2\":3,\"3\":4}"))),
            J("data a string", 422, Mlp(X(data: "\"1,2,3,4\""))),
            J("numbers as strings", 422, Mlp(X(data: "[\"1\",\"2\",\"3\",\"4\"]"))),
            J("booleans in FP32 data", 422, Mlp(X(data: "[true,false,true,false]"))),
            J("nulls in FP32 data", 422, Mlp(X(data: "[null,null,null,null]"))),
            J("\"NaN\" as a string in FP32 data", 422, Mlp(X(data: "[\"NaN\",1,2,3]"))),
            J("1e39 in FP32 data (over float.MaxValue)", 422, Mlp(X(data: "[1e39,1,2,3]"))),
            J("-1e39 in FP32 data", 422, Mlp(X(data: "[-1e39,1,2,3]"))),
            J("1e400 in FP32 data (over double.MaxValue)", 422, Mlp(X(data: "[1e400,1,2,3]"))),
            J("a number of 10,000 digits", 422, Mlp(X(data: "[" + new string('9', 10_000) + ",1,2,3]"))),
            J("objects in the data", 422, Mlp(X(data: "[{},{},{},{}]"))),
            J("nested data 9 levels deep", 422, Mlp(X(data: Nested("1,2,3,4", 9)))),
            J("ragged nested data", 422, Mlp(X(data: "[[1,2,3],[4]]"))),
            J("nested data deeper than the shape", 422, Mlp(X(data: "[1,[2,[3]],4]"))),
            J("duplicate key whose last value is valid", 400, "{\"model\":\"no-such-model\",\"model\":\"mlp-test\",\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":[1,2,3,4]}]}"),
            J("nested data with a string inside", 422, Mlp(X(data: "[[1,2],[3,\"4\"]]"))),
            J("nested data with too few elements", 422, Mlp(X(data: "[[1,2],[3]]"))),

            // Region and priority.
            J("region a NATS wildcard subject jobs.>", 422, Mlp(extra: ",\"region\":\"jobs.>\"")),
            J("region with a dot", 422, Mlp(extra: ",\"region\":\"eu.west\"")),
            J("region the wildcard *", 422, Mlp(extra: ",\"region\":\"*\"")),
            J("region an empty string", 422, Mlp(extra: ",\"region\":\"\"")),
            J("region in upper case", 422, Mlp(extra: ",\"region\":\"EU\"")),
            J("region a number", 422, Mlp(extra: ",\"region\":1")),
            J("region of 64 characters", 422, Mlp(extra: ",\"region\":\"" + new string('r', 64) + "\"")),
            J("region with a space", 422, Mlp(extra: ",\"region\":\"eu west\"")),
            J("priority not interactive or batch", 422, Mlp(extra: ",\"priority\":\"urgent\"")),
            J("priority in title case", 422, Mlp(extra: ",\"priority\":\"Interactive\"")),
            J("priority a number", 422, Mlp(extra: ",\"priority\":1")),

            // Metadata.
            J("metadata with a number value", 422, Mlp(extra: ",\"metadata\":{\"k\":1}")),
            J("metadata with an object value", 422, Mlp(extra: ",\"metadata\":{\"k\":{\"a\":\"b\"}}")),
            J("metadata an array", 422, Mlp(extra: ",\"metadata\":[\"k\",\"v\"]")),
            J("metadata a string", 422, Mlp(extra: ",\"metadata\":\"k=v\"")),
            J("metadata of 33 entries", 422, Mlp(extra: ",\"metadata\":{" + string.Join(",", Enumerable.Range(0, 33).Select(i => $"\"k{i}\":\"v\"")) + "}")),
            Lazy("metadata of 300,000 entries", 422, () => Mlp(extra: ",\"metadata\":{" + string.Join(",", Enumerable.Range(0, 300_000).Select(i => $"\"k{i}\":\"v\"")) + "}")),
            J("metadata key of 129 characters", 422, Mlp(extra: ",\"metadata\":{\"" + new string('k', 129) + "\":\"v\"}")),
            J("metadata value of 513 characters", 422, Mlp(extra: ",\"metadata\":{\"k\":\"" + new string('v', 513) + "\"}")),

            // What the job's history (PostgreSQL jsonb) could not store: accepted, each would stop its
            // recorder's partition for good.
            J("NUL escape in a metadata value", 422, Mlp(extra: ",\"metadata\":{\"k\":\"v\\u0000\"}")),
            J("NUL escape in a metadata key", 422, Mlp(extra: ",\"metadata\":{\"k\\u0000\":\"v\"}")),
            J("NUL escape in an unknown field's name", 422, Mlp(extra: ",\"\\u0000\":1")),
            J("NUL escape in the model name", 422, Mlp(model: "\"mlp-test\\u0000\"")),
            Lazy("FP32 element with 100,000 digits after the point", 422, () => Mlp(X(data: "[0." + new string('1', 100_000) + ",2,3,4]"))),
            J("FP32 element of 101 characters", 422, Mlp(X(data: "[1." + new string('0', 99) + ",2,3,4]"))),
            J("FP32 element 1e-99999 (zero as a float)", 422, Mlp(X(data: "[1e-99999,2,3,4]"))),
            J("FP32 element 0e1001", 422, Mlp(X(data: "[0e1001,2,3,4]"))),

            // Headers.
            new("Idempotency-Key of 300 characters", 422, Json, () => Utf8(ValidBody), Headers: new Dictionary<string, string> { ["Idempotency-Key"] = new string('k', 300) }),

            // The ?wait= query (the body is valid: the query alone refuses it).
            new("?wait=forever", 422, Json, () => Utf8(ValidBody), Query: "?wait=forever"),
            new("?wait=-5s", 422, Json, () => Utf8(ValidBody), Query: "?wait=-5s"),
            new("?wait=61s, over the 60 s limit", 422, Json, () => Utf8(ValidBody), Query: "?wait=61s"),
            new("?wait=5h", 422, Json, () => Utf8(ValidBody), Query: "?wait=5h"),
            new("?wait=1e3s", 422, Json, () => Utf8(ValidBody), Query: "?wait=1e3s"),
            new("?wait= with an Arabic-Indic digit three", 422, Json, () => Utf8(ValidBody), Query: "?wait=%D9%A3s"),
            new("?wait= with a fullwidth digit five", 422, Json, () => Utf8(ValidBody), Query: "?wait=%EF%BC%95s"),
            new("?wiat=5s, a misspelt wait (a valid job)", 400, Json, () => Utf8(ValidBody), Query: "?wiat=5s"),
            new("?wait=5s&priority=batch, a job field sent as a query parameter", 400, Json, () => Utf8(ValidBody), Query: "?wait=5s&priority=batch"),

            // The other models.
            J("ppocr-rec given FP32 data", 422, """{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"FP32","shape":[1],"data":[1]}]}"""),
            J("ppocr-rec image as a number", 422, """{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[1]}]}"""),
            J("ppocr-rec image that is not base64", 422, """{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["not base64!"]}]}"""),
            J("ppocr-rec image as a data: URL", 422, """{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["data:image/png;base64,iVBORw0KGgo="]}]}"""),
            J("ppocr-rec given mlp-test's input", 422, """{"model":"ppocr-rec","inputs":[""" + ValidX + "]}"),
            J("silero-vad with 575 samples", 422, """{"model":"silero-vad","inputs":[{"name":"audio","datatype":"FP32","shape":[1,575],"data":""" + zeros(575) + "}]}"),
            J("silero-vad with a batch of 2", 422, """{"model":"silero-vad","inputs":[{"name":"audio","datatype":"FP32","shape":[2,576],"data":""" + zeros(1152) + "}]}"),
        ];
        return battery;
    }
}
