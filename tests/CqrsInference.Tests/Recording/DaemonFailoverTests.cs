using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Npgsql;

namespace CqrsInference.Tests.Recording;

/// <summary>
/// Marten's async daemon (the roll-ups) after the process that leads it is SIGKILLed. Its
/// leadership locks live on PostgreSQL sessions that, a few seconds after winning, sit in a 60 s
/// <c>pg_sleep</c> watching for a lost connection; a server that does not check its clients
/// during a query keeps a dead process's locks, and the roll-ups stand still, until that sleep
/// ends. The application asks for the check on its connections (<c>client_connection_check_interval</c>).
/// </summary>
public sealed class DaemonFailoverTests(PipelineWithRecordersOutside pipeline) : IClassFixture<PipelineWithRecordersOutside>
{
    [Fact]
    public async Task A_killed_daemon_leaders_locks_end_within_seconds_and_a_successor_projects_the_whole_log()
    {
        var body = $$"""{"jobs":[{{string.Join(",", Enumerable.Range(0, 20).Select(i => Scenarios.MlpJob([i, 1, 2, 3])))}}]}""";
        using (var response = await pipeline.Client.PostAsync("/v1/jobs:bulk", new StringContent(body, Encoding.UTF8, "application/json")))
        {
            response.EnsureSuccessStatusCode();
            (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("jobs").GetArrayLength().ShouldBe(20);
        }

        // The doomed process's sessions carry a name of their own, so that other tests' daemons on
        // the same server are not mistaken for it.
        var doomedName = $"cqrsi-doomed-{Guid.NewGuid():N}"[..30];
        Dictionary<string, string> Settings(string applicationName) => new()
        {
            ["Cqrsi:Roles"] = "projections",
            ["ConnectionStrings:Postgres"] = $"{TestEnvironment.Postgres};Application Name={applicationName}",
            ["Cqrsi:Schema"] = pipeline.Host.Schema,
        };

        await using var db = NpgsqlDataSource.Create(TestEnvironment.Postgres);
        int[] sleeping;
        await using (var doomed = await ProcessorProcess.StartAsync(pipeline.Nats.Url, "daemon-doomed", Settings(doomedName), readyMarker: "Recording"))
        {
            sleeping = await Retry.Until("the daemon's lock sessions to sit in their watching pg_sleep", () => SleepingAsync(db, doomedName),
                pids => pids.Length > 0, TimeSpan.FromSeconds(60), pollEvery: TimeSpan.FromMilliseconds(200));
            await doomed.KillAsync();
        }

        await Retry.Until("the killed process's sessions to end", () => LiveAsync(db, sleeping), live => live == 0, TimeSpan.FromSeconds(10));

        // Counted from the successor's start: in a full test run on two cores the start alone can
        // take many seconds, and it is the ended locks above that a dead leader used to withhold.
        await using var successor = await ProcessorProcess.StartAsync(pipeline.Nats.Url, "daemon-successor", Settings("cqrsi-successor"), readyMarker: "Recording");
        var sinceStart = Stopwatch.StartNew();
        var schema = pipeline.Host.Schema;
        await Retry.Until("the job events to be recorded", () => ScalarAsync(db, $"select count(*) from {schema}.mt_events where type = 'v1.job_succeeded'"), n => n >= 20, TimeSpan.FromSeconds(30));
        var end = await ScalarAsync(db, $"select max(seq_id) from {schema}.mt_events");
        await Retry.Until($"the successor's daemon to project the whole log (to {end})",
            () => ProgressAsync(db, schema),
            progress => progress.Count > 0 && progress.Values.All(seq => seq >= end), TimeSpan.FromSeconds(60) - sinceStart.Elapsed);
    }

    private static async Task<int[]> SleepingAsync(NpgsqlDataSource db, string applicationName)
    {
        await using var command = db.CreateCommand(
            "select coalesce(array_agg(pid), '{}') from pg_stat_activity where application_name = @name and state = 'active' and query like '%pg_sleep%'");
        command.Parameters.AddWithValue("name", applicationName);
        return (int[])(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Each shard's progress (a timeout names them all, so the one that stood still shows).</summary>
    private static async Task<ShardProgress> ProgressAsync(NpgsqlDataSource db, string schema)
    {
        await using var command = db.CreateCommand($"select name, last_seq_id from {schema}.mt_event_progression where name <> 'HighWaterMark' order by name");
        await using var reader = await command.ExecuteReaderAsync();
        var progress = new ShardProgress();
        while (await reader.ReadAsync())
        {
            progress[reader.GetString(0)] = reader.GetInt64(1);
        }

        return progress;
    }

    private sealed class ShardProgress : SortedDictionary<string, long>
    {
        public override string ToString() => string.Join(", ", this.Select(p => $"{p.Key}: {p.Value}"));
    }

    private static async Task<long> LiveAsync(NpgsqlDataSource db, int[] pids)
    {
        await using var command = db.CreateCommand("select count(*) from pg_stat_activity where pid = any(@pids)");
        command.Parameters.AddWithValue("pids", pids);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource db, string sql)
    {
        await using var command = db.CreateCommand(sql);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
