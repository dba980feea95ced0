using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using Npgsql;

namespace CqrsInference.Bench;

/// <summary>
/// How the jobs a benchmark submitted stand in the event store: of <paramref name="Jobs"/>, how many
/// have no recorded submission or more than one, and no terminal event or more than one. Every
/// count but <paramref name="Jobs"/> is 0 when each job was recorded exactly once.
/// </summary>
internal sealed record EventCounts(int Jobs, int NoSubmission, int ManySubmissions, int NoEnding, int ManyEndings)
{
    public bool ExactlyOnce => NoSubmission == 0 && ManySubmissions == 0 && NoEnding == 0 && ManyEndings == 0;
}

/// <summary>
/// Counts the recorded events of given jobs straight from Marten's <c>mt_events</c> (not through the
/// API, so that neither the read model nor the API's own rules can hide a duplicate).
/// </summary>
internal static class RecordedEvents
{
    private static readonly string[] Endings = [EventNames.JobSucceeded, EventNames.JobFailed, EventNames.JobCancelled, EventNames.JobExpired];

    /// <summary>
    /// Counts once the recorders have caught up: until every job has its submission and its ending
    /// (or <paramref name="timeout"/> passes, and what is missing shows in the counts).
    /// </summary>
    public static async Task<EventCounts> WaitAndCountAsync(BenchSettings settings, IReadOnlyCollection<Guid> jobs, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var counts = await CountAsync(settings, jobs);
            if ((counts.NoSubmission == 0 && counts.NoEnding == 0) || watch.Elapsed > timeout)
            {
                return counts;
            }

            await Task.Delay(500);
        }
    }

    public static async Task<EventCounts> CountAsync(BenchSettings settings, IReadOnlyCollection<Guid> jobs)
    {
        await using var connection = new NpgsqlConnection(settings.Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            $"""
            select count(*) filter (where submissions = 0), count(*) filter (where submissions > 1),
                   count(*) filter (where endings = 0), count(*) filter (where endings > 1)
            from (select j.id,
                         count(e.seq_id) filter (where e.type = $2) as submissions,
                         count(e.seq_id) filter (where e.type = any($3)) as endings
                  from unnest($1::uuid[]) as j(id) left join {settings.Schema}.mt_events e on e.stream_id = j.id
                  group by j.id) per_job
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = jobs.Distinct().ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = EventNames.JobSubmitted });
        command.Parameters.Add(new NpgsqlParameter { Value = Endings });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new EventCounts(jobs.Distinct().Count(), (int)reader.GetInt64(0), (int)reader.GetInt64(1), (int)reader.GetInt64(2), (int)reader.GetInt64(3));
    }
}
