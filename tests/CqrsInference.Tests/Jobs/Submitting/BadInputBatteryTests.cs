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

/// <summary>
/// A battery of malformed submits: each one gets a 4xx problem details, and none of them changes
/// the event store (Marten's mt_events), the event log (CQRSI_EVENTS) or the work queue (CQRSI_JOBS).
/// </summary>
public sealed partial class BadInputBatteryTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
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
    public async Task A_caller_without_a_key_is_told_that_it_has_none_when_an_endpoint_needs_one()
    {
        // The anonymous caller (Api:AllowAnonymous) was told "This key lacks what this needs".
        using var response = await _client.GetAsync("/v1/analytics/usage");

        response.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var detail = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString()!;
        detail.ShouldStartWith("A caller without a key may only submit and read (Api:AllowAnonymous); this needs a key with the role");
        detail.ShouldEndWith("send 'Authorization: Bearer <key>'.");
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

        // One valid job afterwards: exactly its own two events are recorded, so the recorder had
        // nothing left over from the battery to record.
        var job = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);
        await _client.WaitForStatusAsync(job.Id, "succeeded");
        var done = await CountsAsync();
        done.RecordedEvents.ShouldBe(before.RecordedEvents + 2, "submitted and succeeded (its start on its ending)");
        done.EventLog.ShouldBe(before.EventLog + 2, "the job message and its ending");
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
            // Content-* headers belong to the content, not the request.
            (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) ? content.Headers : (HttpHeaders)message.Headers).TryAddWithoutValidation(name, value);
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
        if (expected == 413)
        {
            // Whether the limit or Kestrel's count of a chunked body said it (which was titled "Bad request").
            problem.RootElement.GetProperty("title").GetString().ShouldBe("Payload too large", description);
        }

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

    // ---- The battery --------------------------------------------------------------------
}
