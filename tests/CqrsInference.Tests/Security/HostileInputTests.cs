using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using NATS.Net;

namespace CqrsInference.Tests.Security;

/// <summary>
/// Requests an attacker with valid keys would send, on every endpoint: names with control
/// characters, timestamps with and without offsets, webhook addresses that point back inside,
/// oversized and deeply nested bodies, query parameters out of range. Each is a 4xx problem+json,
/// nothing is written, and the service still takes work afterwards.
/// </summary>
public sealed partial class HostileInputTests(PipelineRequiringKeys pipeline) : IClassFixture<PipelineRequiringKeys>
{
    private const string Job = """{"model":"mlp-test","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]""";

    /// <summary>A valid job with one field set to <paramref name="json"/>.</summary>
    private static string JobWith(string field, string json) => $"{Job},\"{field}\":{json}}}";

    private static string Deep(int depth) => new string('[', depth) + new string(']', depth);

    private static string Big(int bytes) => $"{Job},\"metadata\":{{\"pad\":\"{new string('x', bytes)}\"}}}}";

    private static string Key(string tenant, string roles = "[\"submit\"]") => $$"""{"tenant":{{JsonSerializer.Serialize(tenant)}},"name":"k","roles":{{roles}}}""";

    public static readonly (string Method, string Path, string? Body, string Why)[] Requests =
    [
        // Names that become subject tokens, consumer names, headers or log fields.
        ("POST", "/v1/jobs", JobWith("region", "\"local\\n\""), "region with a trailing newline"),
        ("POST", "/v1/jobs", JobWith("region", "\"local\\r\\nX-Evil: 1\""), "region with a header injection"),
        ("POST", "/v1/jobs", JobWith("region", "\"a.b\""), "region with a subject separator"),
        ("POST", "/v1/jobs", JobWith("region", "\"*\""), "region that is a wildcard"),
        ("POST", "/v1/jobs", JobWith("region", "\">\""), "region that is a full wildcard"),
        ("POST", "/v1/jobs", JobWith("region", "\"LOCAL\""), "region in capitals"),
        ("POST", "/v1/jobs", JobWith("region", "\"nowhere\""), "region not served here"),
        ("POST", "/v1/jobs", JobWith("region", "\"\\u0000\""), "region that is a NUL"),
        ("POST", "/v1/jobs", JobWith("region", $"\"{new string('a', 64)}\""), "region of 64 characters"),
        ("POST", "/v1/jobs", JobWith("priority", "\"interactive\\n\""), "priority with a newline"),
        ("POST", "/v1/jobs", JobWith("priority", "\"urgent\""), "unknown priority"),
        ("POST", "/v1/jobs", Job.Replace("mlp-test", "mlp-test\\n", StringComparison.Ordinal) + "}", "model with a newline"),
        ("POST", "/v1/jobs", Job.Replace("mlp-test", "mlp.test", StringComparison.Ordinal) + "}", "model with a subject separator"),
        ("POST", "/v1/jobs", Job.Replace("\"x\"", "\"x\\u0007\"", StringComparison.Ordinal) + "}", "input name with a control character"),
        ("POST", "/v1/jobs:bulk", $"{{\"jobs\":[{JobWith("region", "\"local\\n\"")}]}}", "bulk job with a region with a newline"),
        ("POST", "/v1/admin/keys", Key("evil\n"), "tenant with a trailing newline"),
        ("POST", "/v1/admin/keys", Key("Evil"), "tenant in capitals"),
        ("POST", "/v1/admin/keys", Key("a.b"), "tenant with a subject separator"),
        ("POST", "/v1/admin/keys", Key(""), "empty tenant"),
        ("POST", "/v1/admin/keys", Key(new string('t', 300)), "tenant of 300 characters"),
        ("POST", "/v1/admin/keys", Key("alfa", "[\"operator\\n\"]"), "role with a newline"),
        ("POST", "/v1/admin/keys", Key("alfa", "[\"root\"]"), "unknown role"),
        ("POST", "/v1/admin/keys", Key("alfa", "[]"), "no role"),
        ("POST", "/v1/admin/keys", Key("alfa").Replace("\"k\"", "\"k\\u0000\"", StringComparison.Ordinal), "key name with a NUL"),
        ("POST", "/v1/admin/keys", Key("alfa").Replace("\"k\"", $"\"{new string('k', 201)}\"", StringComparison.Ordinal), "key name of 201 characters"),
        ("POST", "/v1/jobs", JobWith("metadata", "{\"k\":\"v\\u0000\"}"), "metadata value with a NUL"),
        ("GET", "/v1/analytics/edge?site=a%0A", null, "site with a newline"),
        ("GET", "/v1/admin/keys?tenant=evil%0A", null, "listing the keys of a tenant with a newline"),
        ("GET", "/v1/admin/webhook-key?tenant=evil%0A", null, "webhook key of a tenant with a newline"),

        // Timestamps: an offset is required, any offset is accepted (see Timestamps_with_offsets_*).
        ("POST", "/v1/jobs", JobWith("deadline", "\"2030-01-01T00:00:00\""), "deadline without an offset"),
        ("POST", "/v1/jobs", JobWith("deadline", "\"2030-01-01\""), "deadline that is a date"),
        ("POST", "/v1/jobs", JobWith("deadline", "\"tomorrow\""), "deadline that is a word"),
        ("POST", "/v1/jobs", JobWith("deadline", "\"2030-13-01T00:00:00Z\""), "deadline in month 13"),
        ("POST", "/v1/jobs", JobWith("deadline", "1893456000"), "deadline as a number"),
        ("GET", "/v1/audit/events?from=2026-01-01T00:00:00", null, "audit from without an offset"),
        ("GET", "/v1/audit/events?to=2026-01-01", null, "audit to that is a date"),
        ("GET", "/v1/audit/events?from=yesterday", null, "audit from that is a word"),
        ("GET", "/v1/audit/events?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", null, "audit range from after to"),
        ("GET", "/v1/analytics/usage?from=2026-01-01T00:00:00", null, "usage from without an offset"),
        ("GET", "/v1/analytics/usage?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", null, "usage range ending before it starts"),
        ("GET", "/v1/analytics/utilization?to=2026-01-01T25:00:00Z", null, "utilization at hour 25"),
        ("GET", "/v1/analytics/edge?from=2026-01-01T00:00:00", null, "edge from without an offset"),

        // Webhook addresses that would turn the platform against itself.
        ("POST", "/v1/jobs", JobWith("webhook", "\"http://127.0.0.1:8222/connz\""), "webhook to the NATS monitor"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://127.0.0.1/\""), "webhook to loopback"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://localhost/\""), "webhook to localhost"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://[::1]/\""), "webhook to IPv6 loopback"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://169.254.169.254/latest/meta-data\""), "webhook to cloud metadata"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://10.0.0.1/\""), "webhook to a private address"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://192.168.1.1/\""), "webhook to a home router"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://2130706433/\""), "webhook to loopback as one number"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://0x7f.1/\""), "webhook to loopback in hex"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://017700000001/\""), "webhook to loopback in octal"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://[::ffff:127.0.0.1]/\""), "webhook to IPv4-mapped loopback"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://100.64.0.1/\""), "webhook to carrier-grade NAT"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://224.0.0.1/\""), "webhook to multicast"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://0.0.0.0/\""), "webhook to the unspecified address"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"https://user:secret@example.com/\""), "webhook with credentials"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"ftp://example.com/\""), "webhook that is not http"),
        ("POST", "/v1/jobs", JobWith("webhook", "\"javascript:alert(1)\""), "webhook that is script"),

        // Bodies: oversized, deeply nested, not JSON, on every endpoint that takes one.
        ("POST", "/v1/jobs", Big(9 * 1024 * 1024), "submit over 8 MiB"),
        ("POST", "/v1/jobs:bulk", "{\"jobs\":[" + Big(9 * 1024 * 1024) + "]}", "bulk over 8 MiB"),
        ("POST", "/v1/admin/keys", Key("alfa") + new string(' ', 100_000), "key request over 64 KiB"),
        ("POST", "/v1/admin/replay", new string('x', 100_000), "replay with a body over 64 KiB"),
        ("POST", $"/v1/jobs/{Guid.Empty}:cancel", new string('x', 100_000), "cancel with a body over 64 KiB"),
        ("POST", "/v1/jobs", JobWith("metadata", Deep(200)), "submit nested 200 deep"),
        ("POST", "/v1/jobs:bulk", "{\"jobs\":" + Deep(200) + "}", "bulk nested 200 deep"),
        ("POST", "/v1/admin/keys", "{\"tenant\":\"alfa\",\"name\":" + Deep(200) + ",\"roles\":[\"submit\"]}", "key request nested 200 deep"),
        ("POST", "/v1/admin/keys", "{\"tenant\":", "key request cut short"),
        ("POST", "/v1/jobs:bulk", "{\"jobs\":[]}", "bulk without jobs"),

        // Query parameters out of range.
        ("GET", "/v1/jobs?limit=0", null, "list limit 0"),
        ("GET", "/v1/jobs?limit=-5", null, "list limit negative"),
        ("GET", "/v1/jobs?limit=100000000", null, "list limit huge"),
        ("GET", "/v1/jobs?limit=abc", null, "list limit not a number"),
        ("GET", "/v1/jobs?status=bogus", null, "list of an unknown status"),
        ("GET", "/v1/jobs?after=%00%0a'--", null, "list after a cursor no page gave"),
        ("GET", "/v1/jobs?tenant=%00", null, "jobs of a tenant named by a NUL"),
        ("GET", "/v1/batches?tenant=a%00b", null, "batches of a tenant with a NUL inside"),
        ("GET", "/v1/audit/events?tenant=%00", null, "audit feed of a tenant named by a NUL"),
        ("GET", "/v1/audit/events?tenant=", null, "audit feed of an empty tenant name"),
        ("GET", "/v1/audit/events?tenant=ACME", null, "audit feed of a tenant in capitals"),
        ("GET", $"/v1/jobs/{Guid.Empty}/stream", null, "a stream of a job that does not exist"),
        ("POST", "/v1/jobs", JobWith("webhookEvents", "[\"started\",{\"$ne\":1}]"), "webhook filter with an object"),
        ("GET", "/v1/audit/events?limit=0", null, "audit page of 0"),
        ("GET", "/v1/audit/events?limit=abc", null, "audit page not a number"),
        ("GET", "/v1/analytics/usage?groupBy=password", null, "usage grouped by an unknown field"),
        ("GET", "/v1/analytics/usage?bucket=minute", null, "usage by the minute"),
        ("GET", "/v1/analytics/utilization?groupBy=nope", null, "utilization grouped by an unknown field"),
        ("GET", "/v1/analytics/edge?bucket=week", null, "edge by the week"),
        ("GET", "/v1/analytics/usage?to=0001-01-01T12:00:00Z", null, "usage ending in year 1"),
        ("GET", "/v1/analytics/utilization?to=0001-01-01T12:00:00Z", null, "utilization ending in year 1"),
        ("GET", "/v1/analytics/edge?to=0001-01-01T12:00:00Z", null, "edge ending in year 1"),
        ("GET", "/v1/analytics/shadow?to=0001-01-01T12:00:00Z", null, "shadow ending in year 1"),
        ("GET", "/v1/analytics/reconciliation?to=0001-01-01T12:00:00Z", null, "reconciliation ending in year 1"),
        ("GET", "/v1/analytics/reconciliation?from=9999-12-31T22:00:00Z&to=9999-12-31T23:30:00Z", null, "reconciliation in the calendar's last hours"),
        ("POST", "/v1/jobs?wait=61s", Job + "}", "wait over a minute"),
        ("POST", "/v1/jobs?wait=-1s", Job + "}", "negative wait"),
        ("POST", "/v1/jobs?wait=forever", Job + "}", "wait that is a word"),
        ("POST", "/v1/admin/replay?projection=evil", null, "replay of an unknown projection"),
        ("DELETE", "/v1/admin/keys/not-a-key", null, "revoking a key that does not exist"),
        ("GET", $"/v1/jobs/{Guid.Empty}", null, "a job that does not exist"),
    ];

    [Fact]
    public async Task Every_hostile_request_is_a_4xx_problem_writes_nothing_and_the_service_still_takes_work()
    {
        Requests.Length.ShouldBeGreaterThanOrEqualTo(60);
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var (events, keys) = await WrittenAsync(client);

        var failures = new List<string>();
        foreach (var (method, path, body, why) in Requests)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }

            using var response = await client.SendAsync(request);
            var status = (int)response.StatusCode;
            var text = await response.Content.ReadAsStringAsync();
            if (status is < 400 or >= 500 || response.Content.Headers.ContentType?.MediaType != "application/problem+json")
            {
                failures.Add($"{why}: {method} {path[..Math.Min(path.Length, 80)]} → {status} {response.Content.Headers.ContentType} {text[..Math.Min(text.Length, 200)]}");
            }
        }

        failures.ShouldBeEmpty();
        (await WrittenAsync(client)).ShouldBe((events, keys), "nothing was written");
        var job = await client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);
        await client.WaitForStatusAsync(job.Id, "succeeded");
    }

    [Theory]
    [InlineData("{\"tenant\":\"alfa\",\"roles\":\"read\"}", "roles is not of the type this endpoint reads (GET /openapi/v1.json describes it).")]
    [InlineData("", "This endpoint reads a JSON body; none was sent.")]
    public async Task A_body_of_the_wrong_shape_is_named_in_the_callers_terms(string body, string detail)
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);

        using var response = await client.PostAsync("/v1/admin/keys", new StringContent(body, Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().ShouldBe(detail);
    }

    [Theory]
    [InlineData("/v1/jobs?limit=abc", "limit must be a whole number, not 'abc'.")]
    [InlineData("/v1/audit/events?limit=1e9", "limit must be a whole number, not '1e9'.")]
    public async Task A_parameter_of_the_wrong_form_is_named_in_the_callers_terms(string path, string detail)
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);

        using var response = await client.GetAsync(path);

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().ShouldBe(detail);
    }

    [Theory]
    [InlineData("GET", "/v1/nothing", HttpStatusCode.NotFound, "No endpoint answers GET /v1/nothing; GET /openapi/v1.json lists them (and /docs shows them).")]
    [InlineData("DELETE", "/v1/models", HttpStatusCode.MethodNotAllowed, "DELETE is not allowed on /v1/models; it takes GET.")]
    [InlineData("POST", "/health", HttpStatusCode.MethodNotAllowed, "POST is not allowed on /health; it takes GET, HEAD.")]
    public async Task A_path_or_method_no_endpoint_takes_is_said_in_the_problems_detail(string method, string path, HttpStatusCode status, string detail)
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        response.StatusCode.ShouldBe(status);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString().ShouldBe(detail);
    }

    [Theory]
    [InlineData("-05:00")]
    [InlineData("+02:00")]
    [InlineData("Z")]
    public async Task Timestamps_with_any_offset_are_read_in_utc_by_every_endpoint_that_takes_one(string offset)
    {
        using var client = pipeline.ClientWith(PipelineRequiringKeys.AdminKey);
        var from = Uri.EscapeDataString($"2026-11-01T00:00:00{offset}");
        var to = Uri.EscapeDataString($"2026-11-30T00:00:00{offset}");
        foreach (var path in new[]
        {
            $"/v1/audit/events?from={from}&to={to}",
            $"/v1/analytics/usage?from={from}&to={to}",
            $"/v1/analytics/utilization?from={from}&to={to}",
            $"/v1/analytics/edge?from={from}&to={to}",
        })
        {
            using var response = await client.GetAsync(path);
            response.StatusCode.ShouldBe(HttpStatusCode.OK, path);
        }

        using var ndjson = new HttpRequestMessage(HttpMethod.Get, $"/v1/audit/events?from={from}&to={to}");
        ndjson.Headers.Accept.ParseAdd("application/x-ndjson");
        (await client.SendAsync(ndjson)).StatusCode.ShouldBe(HttpStatusCode.OK);

        // A query string's '+' that was not escaped reads as a space: still the offset it meant.
        (await client.GetAsync("/v1/audit/events?from=2026-01-01T00:00:00+02:00")).StatusCode.ShouldBe(HttpStatusCode.OK);
        var zone = offset == "Z" ? TimeSpan.Zero : TimeSpan.Parse(offset.TrimStart('+'), System.Globalization.CultureInfo.InvariantCulture);
        var at = DateTimeOffset.UtcNow.AddHours(1).ToOffset(zone);
        var written = at.ToString("yyyy-MM-dd'T'HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) + offset;
        var deadline = await client.PostAsync("/v1/jobs", new StringContent(JobWith("deadline", $"\"{written}\""), Encoding.UTF8, "application/json"));
        deadline.StatusCode.ShouldBe(HttpStatusCode.Accepted, await deadline.Content.ReadAsStringAsync());
        var id = (await deadline.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        await client.WaitForStatusAsync(id, "succeeded");
        var submitted = (await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events")).EnumerateArray()
            .Single(e => e.GetProperty("type").GetString() == "v1.job_submitted").GetProperty("data");
        var stored = submitted.GetProperty("deadline").GetDateTimeOffset();
        stored.Offset.ShouldBe(TimeSpan.Zero, "kept in UTC");
        stored.ShouldBe(DateTimeOffset.Parse(written, System.Globalization.CultureInfo.InvariantCulture), TimeSpan.FromSeconds(1));
    }

    /// <summary>Messages in the event log and keys in the store: what a refused request must not change.</summary>
    private async Task<(ulong Events, int Keys)> WrittenAsync(HttpClient operatorClient)
    {
        await using var nats = new NatsClient(pipeline.Nats.Url);
        var js = nats.CreateJetStreamContext();
        var events = 0UL;
        foreach (var filter in new[] { LogSubjects.AllJobs, LogSubjects.AllJobEvents })
        {
            var stream = await js.GetStreamAsync(NatsTopology.EventsStream, new NATS.Client.JetStream.Models.StreamInfoRequest { SubjectsFilter = filter });
            events += (ulong)(stream.Info.State.Subjects?.Values.Sum(v => (long)v) ?? 0);
        }

        var keys = 0;
        foreach (var tenant in new[] { "default", "alfa", "evil", "a" })
        {
            keys += (await operatorClient.GetFromJsonAsync<JsonElement>($"/v1/admin/keys?tenant={tenant}")).GetArrayLength();
        }

        return (events, keys);
    }
}
