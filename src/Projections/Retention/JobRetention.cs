using System.ComponentModel.DataAnnotations;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Marten;
using Marten.Services;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CqrsInference.Projections.Retention;

public sealed class RetentionOptions
{
    /// <summary>
    /// A job finished (its <c>CompletedAt</c>) longer ago than this is archived; zero turns retention
    /// off. Must be longer than <c>Topology:EventsMaxAge</c> (checked at start: <see cref="AgainstEventLog"/>).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "3650.00:00:00")]
    public TimeSpan FinishedJobsAfter { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often the projections role looks for jobs to archive.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Jobs archived per transaction.</summary>
    [Range(1, 100_000)]
    public int Batch { get; set; } = 1000;

    /// <summary>
    /// Why this retention cannot run beside an event log that keeps messages for
    /// <paramref name="eventsMaxAge"/>, or null. The dangerous direction is a log that outlives the
    /// job in PostgreSQL: a job archived while the log still holds its events would be recorded again,
    /// into an archived stream, by any replay from the log (a recorder repositioned from an older
    /// checkpoint, a restore from backup). The other direction is the normal one: the log is only
    /// the buffer while PostgreSQL is away, and a job is kept long after its events left it.
    /// </summary>
    public string? AgainstEventLog(TimeSpan eventsMaxAge) =>
        FinishedJobsAfter > TimeSpan.Zero && FinishedJobsAfter <= eventsMaxAge
            ? $"Retention:FinishedJobsAfter ({FinishedJobsAfter}) must be longer than Topology:EventsMaxAge ({eventsMaxAge}), or 0 (retention off): "
              + "a job archived while the event log still holds its events would be recorded again by a replay from the log. "
              + "Raise Retention:FinishedJobsAfter or lower Topology:EventsMaxAge."
            : null;
}

/// <summary>How far retention has archived: every finished job completed before <see cref="CompletedBefore"/> is archived.</summary>
public sealed record RetentionMark(string Id, DateTimeOffset CompletedBefore);

/// <summary>
/// Retention of finished jobs (projections role, one archiver at a time by advisory lock). A job
/// that finished longer than <see cref="RetentionOptions.FinishedJobsAfter"/> ago has its stream
/// archived with Marten's own stream archiving (its stream and event rows marked archived: the
/// async daemon and Marten's event queries skip them from then on), and its status document made
/// slim: outputs dropped, <c>ArchivedAt</c> set, everything else kept, so a read answers what the job
/// was and that it is archived, the audit feed still knows whose it was, and a late copy of one of
/// its events is still recognised by the recorder as belonging to a finished job. Nothing is
/// deleted: the audit chain, the roll-ups already made and the audit feed stay as they were. The
/// jobs are found by the index on <c>CompletedAt</c> from the mark where the last round stopped, so a
/// round costs what it archives, not the history.
/// </summary>
internal sealed partial class JobRetention(
    IDocumentStore store, NpgsqlDataSource db, RetentionOptions options, TimeProvider clock, ILogger<JobRetention> logger, OutageWatches? watches = null)
    : BackgroundService
{
    public const string MarkId = "job-retention";

    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("retention");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.FinishedJobsAfter <= TimeSpan.Zero)
        {
            return;
        }

        // PostgreSQL away: the round is tried again with backoff (logged once); anything else is logged and retried next round.
        var outages = Retries.ThroughOutages(_watch, Outages.IsOutage, clock);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await outages.ExecuteAsync(
                    async ct =>
                    {
                        while (await ArchiveOnceAsync(ct) == options.Batch)
                        {
                        }
                    },
                    stoppingToken);
                _watch.Worked();
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or Marten.Exceptions.MartenCommandException or InvalidOperationException)
            {
                LogFailed(logger, e.Message);
            }

            await Task.Delay(options.Interval, clock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Archives the next finished jobs past the retention, in one transaction; returns how many (0 when another process holds the lock).</summary>
    public async Task<int> ArchiveOnceAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var cutoff = now - options.FinishedJobsAfter;
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var take = new NpgsqlCommand("select pg_try_advisory_xact_lock(hashtext($1))", connection, transaction))
        {
            take.Parameters.AddWithValue($"cqrsi-retention:{store.Options.DatabaseSchemaName}");
            if (await take.ExecuteScalarAsync(ct) is not true)
            {
                return 0;
            }
        }

        await using var session = store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: false));
        var mark = (await session.LoadAsync<RetentionMark>(MarkId, ct))?.CompletedBefore ?? DateTimeOffset.MinValue;
        var due = await session.Query<JobStatus.JobStatus>()
            .Where(j => j.CompletedAt >= mark && j.CompletedAt < cutoff && j.ArchivedAt == null)
            .OrderBy(j => j.CompletedAt)
            .Take(options.Batch)
            .ToListAsync(ct);
        var jobs = due.Where(j => JobLifecycle.IsTerminal(j.Status)).ToList();
        foreach (var job in jobs)
        {
            session.Events.ArchiveStream(job.Id);
        }

        // Up to the last job taken (more may share its moment), or up to the cutoff when none is left.
        session.Store(new RetentionMark(MarkId, due.Count == options.Batch ? due[^1].CompletedAt!.Value : cutoff));
        await session.SaveChangesAsync(ct);
        await SlimAsync(connection, transaction, jobs.Select(j => j.Id).ToArray(), now, ct);
        await transaction.CommitAsync(ct);
        if (jobs.Count > 0)
        {
            LogArchived(logger, jobs.Count, cutoff);
        }

        return due.Count;
    }

    private async Task SlimAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid[] ids, DateTimeOffset now, CancellationToken ct)
    {
        await using var slim = new NpgsqlCommand(
            $"""
            update {store.Options.DatabaseSchemaName}.mt_doc_jobstatus
            set data = (data - 'Outputs') || jsonb_build_object('ArchivedAt', $2::timestamptz), mt_last_modified = now()
            where id = any($1)
            """, connection, transaction);
        slim.Parameters.AddWithValue(ids);
        slim.Parameters.AddWithValue(now);
        await slim.ExecuteNonQueryAsync(ct);
    }

    [LoggerMessage(LogLevel.Information, "Archived {Count} jobs finished before {Cutoff}")]
    private static partial void LogArchived(ILogger logger, int count, DateTimeOffset cutoff);

    [LoggerMessage(LogLevel.Warning, "Archiving finished jobs failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
