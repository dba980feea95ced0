using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Projections.Audit;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace CqrsInference.Tests.Audit;

/// <summary>
/// The audit endpoints' bounds: the feed pages every export, replay and verify run one at a time,
/// and verify's stream links are checked without per-stream state. A fixture of its own: these
/// tests change the host's audit options (page size, the replay hook) while they run.
/// </summary>
public sealed class AuditLimitsTests(PipelineWithSealedJobs audit) : IClassFixture<PipelineWithSealedJobs>
{
    private const string NdJson = "application/x-ndjson";

    [Fact]
    public async Task Json_pages_and_ndjson_exports_page_through_every_event_without_gaps_or_repeats()
    {
        var all = (await audit.Admin.GetFromJsonAsync<JsonElement>("/v1/audit/events?limit=1000"))
            .GetProperty("events").EnumerateArray().Select(e => e.GetProperty("sequence").GetInt64()).ToList();
        all.Count.ShouldBe(audit.Jobs.Count * 2);

        var (json, jsonCalls) = await PageJsonAsync(limit: 3);
        var (ndjson, ndjsonCalls) = await PageNdJsonAsync(limit: 3);

        json.ShouldBe(all);
        ndjson.ShouldBe(all);
        jsonCalls.ShouldBe((all.Count + 2) / 3);
        ndjsonCalls.ShouldBe((all.Count + 2) / 3);
    }

    [Theory]
    [InlineData("application/json", 0)]
    [InlineData("application/json", 10_001)]
    [InlineData(NdJson, 0)]
    [InlineData(NdJson, 100_001)]
    public async Task A_limit_out_of_range_is_422(string accept, int limit)
    {
        using var response = await GetAsync($"/v1/audit/events?limit={limit}", accept);

        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("limit")[0].GetString()!.ShouldContain("between 1 and");
    }

    [Fact]
    public async Task An_export_takes_a_limit_above_the_json_page_size()
    {
        using var response = await GetAsync("/v1/audit/events?limit=50000", NdJson);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBe(audit.Jobs.Count * 2);
    }

    [Theory]
    [InlineData("application/json", "2000-01-01T00:00:00-05:00", "2100-01-01T00:00:00%2B02:00")]
    [InlineData(NdJson, "2000-01-01T00:00:00-05:00", "2100-01-01T00:00:00%2B02:00")]
    [InlineData("application/json", "2000-01-01T00:00:00%2B02:00", "2100-01-01T00:00:00+02:00")]
    [InlineData(NdJson, "2000-01-01T00:00:00%2B02:00", "2100-01-01T00:00:00+02:00")]
    public async Task Time_ranges_with_offsets_are_answered_not_a_500(string accept, string from, string to)
    {
        using var response = await GetAsync($"/v1/audit/events?from={from}&to={to}", accept);

        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var body = await response.Content.ReadAsStringAsync();
        var count = accept == NdJson
            ? body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length
            : JsonDocument.Parse(body).RootElement.GetProperty("events").GetArrayLength();
        count.ShouldBe(audit.Jobs.Count * 2);
    }

    [Fact]
    public async Task A_second_replay_while_one_runs_is_409_and_the_first_still_reports()
    {
        var options = audit.Host.Services.GetRequiredService<AuditOptions>();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        options.ReplayPageHook = async ct =>
        {
            entered.TrySetResult();
            await release.Task.WaitAsync(ct);
        };
        try
        {
            var first = audit.Admin.PostAsync("/v1/admin/replay", null);
            await entered.Task.WaitAsync(TimeSpan.FromSeconds(30));

            using var second = await audit.Admin.PostAsync("/v1/admin/replay", null);
            second.StatusCode.ShouldBe(HttpStatusCode.Conflict);
            second.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
            (await second.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!.ShouldContain("A replay is already running, started at");

            release.SetResult();
            using var firstResponse = await first.WaitAsync(TimeSpan.FromSeconds(30));
            firstResponse.StatusCode.ShouldBe(HttpStatusCode.OK);
            (await firstResponse.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("identical").GetBoolean().ShouldBeTrue();
        }
        finally
        {
            options.ReplayPageHook = null;
            release.TrySetResult();
        }

        using var after = await audit.Admin.PostAsync("/v1/admin/replay", null);
        after.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Verify_while_another_process_verifies_is_409_until_it_ends()
    {
        // Another process's verify, as the database sees it: verify's advisory lock held on a session of its own.
        var holder = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(TestEnvironment.Postgres) { Pooling = false }.ConnectionString);
        await holder.OpenAsync();
        await using (var take = new NpgsqlCommand("select pg_advisory_lock(hashtext('cqrsi-audit-run'), hashtext($1))", holder))
        {
            take.Parameters.AddWithValue($"{audit.Host.Schema}:verify");
            await take.ExecuteNonQueryAsync();
        }

        using (var busy = await audit.Admin.GetAsync("/v1/audit/verify"))
        {
            await holder.DisposeAsync();
            busy.StatusCode.ShouldBe(HttpStatusCode.Conflict);
            (await busy.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!.ShouldContain("A verify is already running, started at");
        }

        (await audit.VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task Replay_in_pages_smaller_than_a_stream_rebuilds_every_document()
    {
        var options = audit.Host.Services.GetRequiredService<AuditOptions>();
        options.ReplayPage = 3;
        try
        {
            using var response = await audit.Admin.PostAsync("/v1/admin/replay", null);
            var report = await response.Content.ReadFromJsonAsync<JsonElement>();

            report.GetProperty("identical").GetBoolean().ShouldBeTrue(report.ToString());
            report.GetProperty("documents").GetInt64().ShouldBe(audit.Jobs.Count);
            report.GetProperty("events").GetInt64().ShouldBeGreaterThanOrEqualTo(audit.Jobs.Count * 2);
            report.GetProperty("unlistedDifferences").GetInt64().ShouldBe(0);
        }
        finally
        {
            options.ReplayPage = new AuditOptions().ReplayPage;
        }
    }

    [Fact]
    public async Task A_forged_stream_hash_is_named_by_verify()
    {
        var job = audit.Jobs[0];
        var sequence = await audit.SequenceOfAsync(job, 2);
        await audit.SqlAsync($"create table {{schema}}.seal_{sequence} as select * from {{schema}}.cqrsi_audit_seal where seq_id = {sequence}");
        try
        {
            await audit.SqlAsync($"update {{schema}}.cqrsi_audit_seal set stream_hash = sha256(stream_hash) where seq_id = {sequence}");

            var broken = (await audit.VerifyAsync()).GetProperty("firstBroken");

            broken.GetProperty("sequence").GetInt64().ShouldBe(sequence);
            broken.GetProperty("problem").GetString()!.ShouldContain("does not chain");
        }
        finally
        {
            await audit.SqlAsync($"update {{schema}}.cqrsi_audit_seal a set stream_hash = s.stream_hash from {{schema}}.seal_{sequence} s where a.seq_id = s.seq_id; drop table {{schema}}.seal_{sequence}");
        }

        (await audit.VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    private async Task<HttpResponseMessage> GetAsync(string path, string accept)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd(accept);
        return await audit.Admin.SendAsync(request);
    }

    private async Task<(List<long> Sequences, int Calls)> PageJsonAsync(int limit)
    {
        var sequences = new List<long>();
        var calls = 0;
        for (long? from = 0; from is { } next; calls++)
        {
            var page = await audit.Admin.GetFromJsonAsync<JsonElement>($"/v1/audit/events?fromSequence={next}&limit={limit}");
            var events = page.GetProperty("events").EnumerateArray().ToList();
            events.Count.ShouldBeLessThanOrEqualTo(limit);
            sequences.AddRange(events.Select(e => e.GetProperty("sequence").GetInt64()));
            from = page.GetProperty("nextSequence") is { ValueKind: JsonValueKind.Number } cursor ? cursor.GetInt64() : null;
        }

        return (sequences, calls);
    }

    /// <summary>Follows the trailing <c>{"nextSequence":n}</c> line of each export until an export has none.</summary>
    private async Task<(List<long> Sequences, int Calls)> PageNdJsonAsync(int limit)
    {
        var sequences = new List<long>();
        var calls = 0;
        for (long? from = 0; from is { } next; calls++)
        {
            using var response = await GetAsync($"/v1/audit/events?fromSequence={next}&limit={limit}", NdJson);
            response.Content.Headers.ContentType!.MediaType.ShouldBe(NdJson);
            from = null;
            var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            lines.Count(l => l.Contains("\"sequence\"", StringComparison.Ordinal)).ShouldBeLessThanOrEqualTo(limit);
            foreach (var line in lines.Select(l => JsonDocument.Parse(l).RootElement))
            {
                if (line.TryGetProperty("nextSequence", out var cursor))
                {
                    from = cursor.GetInt64();
                }
                else
                {
                    sequences.Add(line.GetProperty("sequence").GetInt64());
                }
            }
        }

        return (sequences, calls);
    }
}
