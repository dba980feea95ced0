using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Recording;

/// <summary>Two partitions recorded side by side by a recorder process that is SIGKILLed mid-batch, then replaced.</summary>
public sealed class RecorderCrashTests(PipelineWithRecordersOutside pipeline) : IClassFixture<PipelineWithRecordersOutside>
{
    private const int Jobs = 1200;

    [Fact]
    public async Task A_recorder_killed_mid_batch_loses_and_doubles_nothing_in_either_partition()
    {
        var ids = new List<Guid>();
        for (var part = 0; part < 2; part++)
        {
            var body = $$"""{"jobs":[{{string.Join(",", Enumerable.Range(0, Jobs / 2).Select(i => Scenarios.MlpJob([part, i, 1, 1])))}}]}""";
            using var response = await pipeline.Client.PostAsync("/v1/jobs:bulk", new StringContent(body, Encoding.UTF8, "application/json"));
            ids.AddRange((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetGuid()));
        }

        // Every job has run (its result is in the log) before any recorder starts.
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            await Retry.Until("every job to run", () => JobMessages.QueuedAsync(js, "mlp-test"), q => q is { Waiting: 0, InFlight: 0 }, TimeSpan.FromSeconds(90));
        }

        // Small batches, so that the kill lands in the middle of the recording.
        var settings = new Dictionary<string, string>
        {
            ["Cqrsi:Roles"] = "projections",
            ["ConnectionStrings:Postgres"] = TestEnvironment.Postgres,
            ["Cqrsi:Schema"] = pipeline.Host.Schema,
            ["Recorder:BatchSize"] = "40",
        };
        await using (var doomed = await ProcessorProcess.StartAsync(pipeline.Nats.Url, "recorder-doomed", settings, readyMarker: "Recording"))
        {
            await Retry.Until("the first recorder to be part way through", () => RecordedJobEventsAsync(), n => n > 0, TimeSpan.FromSeconds(60), pollEvery: TimeSpan.FromMilliseconds(5));
            await doomed.KillAsync();
        }

        var atKill = await RecordedJobEventsAsync();
        atKill.ShouldBeLessThan(2 * Jobs, "the kill came after the recording had finished: nothing was tested");
        await using var successor = await ProcessorProcess.StartAsync(pipeline.Nats.Url, "recorder-successor", settings, readyMarker: "Recording");
        await Retry.Until("every event to be recorded", () => RecordedJobEventsAsync(), n => n >= 2 * Jobs, TimeSpan.FromSeconds(90));

        await using var db = NpgsqlDataSource.Create(TestEnvironment.Postgres);
        var schema = pipeline.Host.Schema;
        (await ScalarAsync(db, $"select count(*) from {schema}.mt_events e join {schema}.mt_streams s on s.id = e.stream_id where s.type = 'job_status'")).ShouldBe(2L * Jobs);
        (await ScalarAsync(db, $"select count(*) from (select stream_id from {schema}.mt_events group by stream_id having count(*) <> 2 and min(type) like 'v1.job_%') t")).ShouldBe(0L);
        (await ScalarAsync(db, $"select count(*) from {schema}.mt_doc_jobstatus where data ->> 'Status' = 'succeeded' and id = any(@ids)", ids.ToArray())).ShouldBe((long)Jobs);
        (await ScalarAsync(db, $"select count(distinct id) from {schema}.mt_doc_recordercheckpoint where id like 'recorder-%' and id not like '%:seen:%' and (data ->> 'Sequence')::bigint > 0")).ShouldBe(2L, "both partitions recorded (the checkpoints, not the idle partitions' marks of how far they saw the stream)");
        (await ScalarAsync(db, $"select count(*) from {schema}.mt_events e where not exists (select 1 from {schema}.mt_events f where f.seq_id < e.seq_id and f.stream_id = e.stream_id) and e.version <> 1")).ShouldBe(0L, "each stream's versions start at 1");
    }

    private async Task<long> RecordedJobEventsAsync()
    {
        await using var db = NpgsqlDataSource.Create(TestEnvironment.Postgres);
        try
        {
            return await ScalarAsync(db, $"select count(*) from {pipeline.Host.Schema}.mt_events where type like 'v1.job_%'");
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0;
        }
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource db, string sql, Guid[]? ids = null)
    {
        await using var command = db.CreateCommand(sql);
        if (ids is not null)
        {
            command.Parameters.AddWithValue("ids", ids);
        }

        return (long)(await command.ExecuteScalarAsync())!;
    }
}
