using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Jobs.Lifecycle;

/// <summary>
/// Retention of finished jobs: Marten archives their streams, their status documents keep the
/// summary without outputs, and nothing the audit and the analytics rely on changes.
/// </summary>
public sealed class RetentionTests(PipelineWithImmediateRetention pipeline) : IClassFixture<PipelineWithImmediateRetention>
{
    [Fact]
    public async Task An_archived_job_keeps_its_summary_without_outputs_and_says_when_it_was_archived()
    {
        var job = await RunJobAsync(7);

        (await pipeline.ArchiveAsync()).ShouldBeGreaterThanOrEqualTo(1);

        var archived = await pipeline.Operator.GetJobAsync(job);
        archived.GetProperty("status").GetString().ShouldBe("succeeded");
        archived.GetProperty("archivedAt").ValueKind.ShouldBe(JsonValueKind.String);
        archived.GetProperty("outputs").ValueKind.ShouldBe(JsonValueKind.Null);
        archived.GetProperty("runMs").GetDouble().ShouldBeGreaterThan(0);
        (await ScalarAsync($"select count(*) from {{schema}}.mt_streams where id = '{job}' and is_archived")).ShouldBe(1);
        (await ScalarAsync($"select count(*) from {{schema}}.mt_events where stream_id = '{job}' and not is_archived")).ShouldBe(0);
        (await pipeline.ArchiveAsync()).ShouldBe(0);
    }

    [Fact]
    public async Task An_archived_job_answers_410_for_its_history_and_its_events_stay_in_the_audit_feed()
    {
        var job = await RunJobAsync(8);
        await pipeline.ArchiveAsync();

        foreach (var path in new[] { $"/v1/jobs/{job}?version=1", $"/v1/jobs/{job}/events" })
        {
            using var response = await pipeline.Operator.GetAsync(path);
            response.StatusCode.ShouldBe(HttpStatusCode.Gone, path);
            response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
            (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString()!.ShouldContain("archived");
        }

        var feed = await pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/audit/events?limit=1000");
        feed.GetProperty("events").EnumerateArray().Count(e => e.GetProperty("streamId").GetGuid() == job).ShouldBeGreaterThanOrEqualTo(2);
    }

    [Fact]
    public async Task Archiving_leaves_the_audit_chain_the_roll_ups_and_replay_intact()
    {
        await RunJobAsync(9);
        await WaitForRollUpsAsync();
        var usage = await SettledUsageAsync();

        await pipeline.ArchiveAsync();

        (await pipeline.Operator.GetStringAsync(UsagePath)).ShouldBe(usage);
        var verify = await Retry.Until("every event to be sealed", () => pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/audit/verify"),
            r => r.GetProperty("unsealedEvents").GetInt64() == 0);
        verify.GetProperty("intact").GetBoolean().ShouldBeTrue(verify.ToString());
        using var replay = await pipeline.Operator.PostAsync("/v1/admin/replay?projection=job-status", null);
        var report = await replay.Content.ReadFromJsonAsync<JsonElement>();
        report.GetProperty("identical").GetBoolean().ShouldBeTrue(report.ToString());
    }

    private static string UsagePath => $"/v1/analytics/usage?from={DateTimeOffset.UtcNow.AddDays(-1):yyyy-MM-dd}T00:00:00Z&to={DateTimeOffset.UtcNow.AddDays(2):yyyy-MM-dd}T00:00:00Z&groupBy=model,tenant";

    private async Task<Guid> RunJobAsync(float x)
    {
        var job = await pipeline.Operator.SubmitAsync(Scenarios.MlpJob([x, 1, 2, 3]));
        await pipeline.Operator.WaitForStatusAsync(job.Id, "succeeded");
        return job.Id;
    }

    /// <summary>The usage roll-up once it shows jobs and reads the same twice a second apart (the daemon's lag report can run ahead of its writes).</summary>
    private async Task<string> SettledUsageAsync()
    {
        var previous = "";
        return await Retry.Until("the usage roll-up to settle", async () =>
        {
            var now = await pipeline.Operator.GetStringAsync(UsagePath);
            var settled = now != "[]" && now == previous ? now : null;
            previous = now;
            await Task.Delay(settled is null ? 1000 : 0);
            return settled;
        }, usage => usage is not null, TimeSpan.FromSeconds(60)) ?? "";
    }

    private Task WaitForRollUpsAsync() =>
        Retry.Until("the roll-ups to catch up", () => pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/analytics/lag"),
            lag => lag.GetProperty("projections").GetArrayLength() > 0 && lag.GetProperty("projections").EnumerateArray().All(p => p.GetProperty("behind").GetInt64() == 0));

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(TestEnvironment.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql.Replace("{schema}", pipeline.Host.Schema, StringComparison.Ordinal), connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }
}
