using System.Net;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Recording;

/// <summary>The whole application with recorders that let deliveries gather for 400 ms.</summary>
public sealed class PipelineWithLingeringRecorders : PipelineWithAllRoles
{
    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Recorder:Linger"] = "00:00:00.400" };
}

public sealed class RecorderLingerTests(PipelineWithLingeringRecorders pipeline) : IClassFixture<PipelineWithLingeringRecorders>
{
    [Fact]
    public async Task Events_that_trickle_in_are_recorded_a_window_at_a_time_not_one_transaction_each()
    {
        var warm = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([9, 9, 9, 9]));
        await pipeline.Client.WaitForStatusAsync(warm.Id, "succeeded");

        // 24 jobs, one every 15 ms: recorded one by one, that would be a transaction per event (48).
        var ids = new List<Guid>();
        for (var i = 0; i < 24; i++)
        {
            var job = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([i, 1, 2, 3]));
            job.Status.ShouldBe(HttpStatusCode.Accepted);
            ids.Add(job.Id);
            await Task.Delay(15);
        }

        foreach (var id in ids)
        {
            await pipeline.Client.WaitForStatusAsync(id, "succeeded");
        }

        // Each transaction stamps its events with its own start time (now()): distinct stamps are transactions.
        await using var db = NpgsqlDataSource.Create(TestEnvironment.Postgres);
        await using var command = db.CreateCommand(
            $"select count(*), count(distinct timestamp) from {pipeline.Host.Schema}.mt_events where stream_id = any(@ids)");
        command.Parameters.AddWithValue("ids", ids.ToArray());
        var recorded = await Retry.Until("both events of every job to be recorded", async () =>
        {
            await using var reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            return (Events: reader.GetInt64(0), Transactions: reader.GetInt64(1));
        }, r => r.Events == 2 * ids.Count, TimeSpan.FromSeconds(20));

        recorded.Transactions.ShouldBeLessThanOrEqualTo(10, "two partitions, each recording what gathered in its 400 ms windows");
    }
}
