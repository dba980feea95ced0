using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CqrsInference.Api.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Tests.Infrastructure;
using CsCheck;
using Npgsql;

namespace CqrsInference.Tests.Pipeline;

/// <summary>
/// A battery of malformed submits: each one gets a 4xx problem details, and none of them changes
/// the event store (Marten's mt_events), the event log (CQRSI_EVENTS) or the work queue (CQRSI_JOBS).
/// </summary>
public sealed partial class BadInputBatteryTests(PipelineFixture pipeline) : IClassFixture<PipelineFixture>
{
    private const string Json = "application/json";
    private const string ValidX = """{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}""";
    private static readonly string ValidBody = Mlp();

    private readonly HttpClient _client = pipeline.Client;

    /// <summary>One malformed request: its body is built only when sent (some are megabytes).</summary>
    private sealed record BadRequest(
        string Description,
        int Expected,
        string? ContentType,
        Func<byte[]> Body,
        bool Chunked = false,
        IReadOnlyDictionary<string, string>? Headers = null,
        string Query = "");

    private static readonly IReadOnlyList<BadRequest> Battery = BuildBattery();

    private static readonly Dictionary<string, BadRequest> ByDescription = Battery.ToDictionary(c => c.Description, StringComparer.Ordinal);

    public static TheoryData<string> BadRequests()
    {
        var data = new TheoryData<string>();
        foreach (var badRequest in Battery)
        {
            data.Add(badRequest.Description);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_malformed_request_gets_its_4xx_problem_details(string badRequest)
    {
        var request = ByDescription[badRequest];

        var (status, contentType, body) = await SendAsync(request);

        ShouldBeProblem(request.Description, request.Expected, status, contentType, body);
    }

    [Fact]
    public void The_battery_holds_at_least_fifty_distinct_requests()
    {
        Battery.Count.ShouldBeGreaterThanOrEqualTo(50);
        Battery.Select(c => c.Expected).Distinct().Order().ShouldBe([400, 413, 415, 422]);
    }

    [Fact]
    public async Task The_whole_battery_leaves_the_event_store_and_the_queues_unchanged()
    {
        var before = await CountsAsync();

        var unexpected = new List<string>();
        foreach (var request in Battery)
        {
            var (status, _, body) = await SendAsync(request);
            if (status != request.Expected)
            {
                unexpected.Add($"{request.Description}: {status} {Truncate(body)}");
            }
        }

        var after = await CountsAsync();
        after.ShouldBe(before, "the battery changed the event store or the queues; unexpected answers:\n" + string.Join("\n", unexpected));

        // One valid job afterwards: exactly its own three events are recorded, so the recorder had
        // nothing left over from the battery to record.
        var job = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);
        await _client.WaitForStatusAsync(job.Id, "succeeded");
        var done = await CountsAsync();
        done.RecordedEvents.ShouldBe(before.RecordedEvents + 3, "submitted, started and succeeded");
        done.EventLog.ShouldBe(before.EventLog + 3, "the job message, started and succeeded");
        await Retry.Until("the job to leave the work queue", () => QueueSizeAsync(), size => size == before.Queue);
    }

    [Fact]
    public async Task Random_malformed_requests_never_get_a_5xx_and_never_change_the_event_store()
    {
        var before = await CountsAsync();

        await RandomRequest.SampleAsync(
            async sample =>
            {
                using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(sample.Body));
                if (sample.ContentType is not null)
                {
                    content.Headers.TryAddWithoutValidation("Content-Type", sample.ContentType);
                }

                using var response = await _client.PostAsync(new Uri("/v1/jobs", UriKind.Relative), content);
                var body = await response.Content.ReadAsStringAsync();
                var status = (int)response.StatusCode;
                var json = sample.ContentType?.StartsWith(Json, StringComparison.OrdinalIgnoreCase) == true;
                if (!json)
                {
                    status.ShouldBe(415, Truncate(body));
                }
                else if (sample.Malformed)
                {
                    status.ShouldBe(400, Truncate(body));
                }
                else
                {
                    // Small, well-formed JSON that is never a valid job: 422 (or 400), never accepted, never 5xx.
                    status.ShouldBeOneOf([400, 422], $"{status} {Truncate(body)}");
                }

                ShouldBeProblem(sample.ToString(), status, status, response.Content.Headers.ContentType?.MediaType, body);
            },
            iter: 300,
            threads: 2,
            print: s => s.ToString());

        (await CountsAsync()).ShouldBe(before);
    }

    // ---- Sending and checking -------------------------------------------------------------

    private async Task<(int Status, string? ContentType, string Body)> SendAsync(BadRequest request)
    {
        var bytes = request.Body();
        using HttpContent content = request.Chunked ? new UnsizedContent(bytes) : new ByteArrayContent(bytes);
        if (request.ContentType is not null)
        {
            content.Headers.TryAddWithoutValidation("Content-Type", request.ContentType);
        }

        using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs" + request.Query) { Content = content };
        foreach (var (name, value) in request.Headers ?? new Dictionary<string, string>())
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await _client.SendAsync(message);
        return ((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync());
    }

    private static void ShouldBeProblem(string description, int expected, int status, string? contentType, string body)
    {
        status.ShouldBe(expected, $"{description} answered {status}: {Truncate(body)}");
        contentType.ShouldBe("application/problem+json", $"{description}: {Truncate(body)}");
        using var problem = JsonDocument.Parse(body);
        problem.RootElement.GetProperty("status").GetInt32().ShouldBe(expected, description);
        problem.RootElement.GetProperty("title").GetString().ShouldNotBeNullOrWhiteSpace(description);
        if (expected == 422)
        {
            var errors = problem.RootElement.GetProperty("errors");
            errors.ValueKind.ShouldBe(JsonValueKind.Object, description);
            errors.EnumerateObject().ShouldNotBeEmpty(description);
        }
    }

    private static string Truncate(string body) => body.Length <= 600 ? body : body[..600] + "…";

    private sealed record Counts(long RecordedEvents, long EventLog, long Queue);

    private async Task<Counts> CountsAsync() => new(await RecordedEventCountAsync(), await StreamSizeAsync(NatsTopology.EventsStream), await QueueSizeAsync());

    private Task<long> QueueSizeAsync() => StreamSizeAsync(NatsTopology.JobsStream);

    /// <summary>Job messages only: processors' capacity facts (heartbeats) flow into the event log on their own.</summary>
    private async Task<long> StreamSizeAsync(string name)
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        return await JobMessages.CountAsync(js, name);
    }

    private async Task<long> RecordedEventCountAsync()
    {
        var table = $"{pipeline.Host.Schema}.mt_events";
        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using (var exists = new NpgsqlCommand("select to_regclass($1) is not null", connection))
        {
            exists.Parameters.AddWithValue(table);
            if (await exists.ExecuteScalarAsync() is not true)
            {
                return 0;
            }
        }

        await using var count = new NpgsqlCommand($"select count(*) from {table} where type not like 'v1.processor%'", connection);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>Content without a length: sent chunked, so the server learns its size only by reading.</summary>
    private sealed class UnsizedContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    // ---- The battery --------------------------------------------------------------------

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
            new("UTF-16 body declared as application/json; charset=utf-16", 400, "application/json; charset=utf-16", () => Encoding.Unicode.GetBytes(ValidBody)),

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

            // The other models.
            J("ppocr-rec given FP32 data", 422, """{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"FP32","shape":[1],"data":[1]}]}"""),
            J("ppocr-rec image as a number", 422, """{"model":"ppocr-rec","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[1]}]}"""),
            J("ppocr-rec given mlp-test's input", 422, """{"model":"ppocr-rec","inputs":[""" + ValidX + "]}"),
            J("silero-vad with 575 samples", 422, """{"model":"silero-vad","inputs":[{"name":"audio","datatype":"FP32","shape":[1,575],"data":""" + zeros(575) + "}]}"),
            J("silero-vad with a batch of 2", 422, """{"model":"silero-vad","inputs":[{"name":"audio","datatype":"FP32","shape":[2,576],"data":""" + zeros(1152) + "}]}"),
        ];
        return battery;
    }

    // ---- Random requests (CsCheck) --------------------------------------------------------

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
