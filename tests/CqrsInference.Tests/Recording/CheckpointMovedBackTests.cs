using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Recording;

public sealed class CheckpointMovedBackTests(PipelineWithAllRoles pipeline) : IClassFixture<PipelineWithAllRoles>
{
    [Fact]
    public async Task Recorders_moved_back_to_the_start_of_the_log_record_nothing_twice_and_go_on()
    {
        var before = new List<Guid>();
        for (var i = 0; i < 6; i++)
        {
            before.Add((await pipeline.Client.SubmitAsync(Scenarios.MlpJob([i, 1, 1, 1]))).Id);
        }

        foreach (var id in before)
        {
            await pipeline.Client.WaitForStatusAsync(id, "succeeded");
        }

        const string jobEvents = "select count(*) from {0}.mt_events e join {0}.mt_streams s on s.id = e.stream_id where s.type = 'job_status'";
        var recorded = await CountAsync(jobEvents);

        // Every checkpoint back to the start, and the recorders' consumers gone: they start again
        // from the checkpoint, over jobs (with random ids) that are recorded already.
        await ExecuteAsync("update {0}.mt_doc_recordercheckpoint set data = jsonb_set(data, '{Sequence}', '0') where id like 'recorder-%'");
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            for (var p = 0; p < new TopologyOptions().Partitions; p++)
            {
                await js.DeleteConsumerAsync(NatsTopology.EventsStream, NatsTopology.RecorderConsumer(p));
            }
        }

        var after = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([9, 9, 9, 9]));
        await pipeline.Client.WaitForStatusAsync(after.Id, "succeeded", TimeSpan.FromSeconds(60));

        (await CountAsync(jobEvents)).ShouldBe(recorded + 2);
        foreach (var id in before)
        {
            (await pipeline.Client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events")).GetArrayLength().ShouldBe(2);
        }
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var db = NpgsqlDataSource.Create(TestEnvironment.Postgres);
        return (long)(await db.CreateCommand(string.Format(System.Globalization.CultureInfo.InvariantCulture, sql, pipeline.Host.Schema)).ExecuteScalarAsync())!;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var db = NpgsqlDataSource.Create(TestEnvironment.Postgres);
        (await db.CreateCommand(sql.Replace("{0}", pipeline.Host.Schema, StringComparison.Ordinal)).ExecuteNonQueryAsync()).ShouldBeGreaterThan(0);
    }
}
