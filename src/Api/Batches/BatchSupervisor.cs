using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.Batches;
using Marten;
using Mediator;
using Npgsql;

namespace CqrsInference.Api.Batches;

/// <summary>
/// Ends batches: every <see cref="BatchOptions.SuperviseEvery"/> it looks at the running batches (one
/// supervisor at a time across API processes, by a PostgreSQL advisory lock held for the round's
/// transaction; all it knows is in the database, so a restart loses nothing). A batch whose deadline
/// passed gets <see cref="V1.BatchExpired"/>, one whose every accepted line ended gets
/// <see cref="V1.BatchCompleted"/>. Then the queued jobs of the batches that expired or were cancelled
/// lately (<see cref="BatchOptions.SweepAfterEnd"/>) are ended (<see cref="BatchSweep"/>): a job
/// recorded after its batch ended is caught by a later round. An ending owes the batch's webhook call
/// before the round commits (<see cref="BatchWebhooks"/>).
/// </summary>
internal sealed partial class BatchSupervisor(
    IDocumentStore store, NpgsqlDataSource db, ISender sender, Messaging.JobQueues queues, BatchReader reader, Messaging.WebhookQueue webhooks, BatchOptions options, TimeProvider clock,
    ILogger<BatchSupervisor> logger)
    : BackgroundService
{
    private DateTimeOffset? _after; // where the last round's page of running batches ended

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await SuperviseOnceAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested && e is not OperationCanceledException)
            {
                LogFailed(logger, e.Message);
            }

            await Task.Delay(options.SuperviseEvery, clock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>One round: ends the batches that are due, then sweeps the queued jobs of those that ended lately.</summary>
    public async Task SuperviseOnceAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        List<BatchStatus> ended;
        await using (var connection = await db.OpenConnectionAsync(ct))
        await using (var transaction = await connection.BeginTransactionAsync(ct))
        {
            await using (var take = new NpgsqlCommand("select pg_try_advisory_xact_lock(hashtext($1))", connection, transaction))
            {
                take.Parameters.AddWithValue($"cqrsi-batches:{store.Options.DatabaseSchemaName}");
                if (await take.ExecuteScalarAsync(ct) is not true)
                {
                    return;
                }
            }

            await using var session = store.LightweightSession(Marten.Services.SessionOptions.ForTransaction(transaction, shouldAutoCommit: false));
            foreach (var batch in await DueOrNextAsync(session, now, ct))
            {
                await EndIfDueAsync(session, batch, now, ct);
            }

            await session.SaveChangesAsync(ct);
            await transaction.CommitAsync(ct);
        }

        var since = now - options.SweepAfterEnd;
        await using (var query = store.QuerySession())
        {
            ended = (await query.Query<BatchStatus>()
                .Where(b => (b.Status == BatchStatuses.Expired || b.Status == BatchStatuses.Cancelled) && b.EndedAt > since)
                .ToListAsync(ct)).ToList();
        }

        foreach (var batch in ended)
        {
            var swept = await BatchSweep.EndQueuedAsync(
                store, sender, queues, batch.Id, batch.EndedAt ?? now, batch.Status == BatchStatuses.Expired ? batch.Deadline : null, batch.EndedBy ?? "batch", now, ct);
            if (swept > 0)
            {
                LogSwept(logger, swept, batch.Id, batch.Status);
            }
        }
    }

    /// <summary>
    /// The running batches past their deadline, and the next page of running batches after where the
    /// last round stopped (around again from the oldest once the newest was reached).
    /// </summary>
    private async Task<IReadOnlyList<BatchStatus>> DueOrNextAsync(IDocumentSession session, DateTimeOffset now, CancellationToken ct)
    {
        var expired = await session.Query<BatchStatus>()
            .Where(b => b.Status == BatchStatuses.Running && b.Deadline != null && b.Deadline <= now).Take(options.SupervisePage).ToListAsync(ct);
        var after = _after ?? DateTimeOffset.MinValue;
        var next = await session.Query<BatchStatus>()
            .Where(b => b.Status == BatchStatuses.Running && b.SubmittedAt > after).OrderBy(b => b.SubmittedAt).Take(options.SupervisePage).ToListAsync(ct);
        _after = next.Count < options.SupervisePage ? null : WholeMicrosecondAfter(next[^1].SubmittedAt);
        return [.. expired.Concat(next).DistinctBy(b => b.Id)];
    }

    /// <summary>
    /// The cursor past a batch's time as PostgreSQL compares it (timestamptz, whole microseconds,
    /// rounded): left at .NET's 100 ns, a time that rounds up came back as "after" itself, and the
    /// rounds looked at that one batch for ever.
    /// </summary>
    private static DateTimeOffset WholeMicrosecondAfter(DateTimeOffset time) =>
        time.AddTicks(TimeSpan.TicksPerMicrosecond - time.Ticks % TimeSpan.TicksPerMicrosecond);

    private async Task EndIfDueAsync(IDocumentSession session, BatchStatus batch, DateTimeOffset now, CancellationToken ct)
    {
        var rows = await reader.CountAsync(batch.Id, ct);
        var ended = rows.Where(r => JobLifecycle.IsTerminal(r.Status)).Sum(r => r.Jobs);
        if (batch.Deadline is { } deadline && deadline <= now)
        {
            session.Events.Append(batch.Id, new V1.BatchExpired(batch.Id, deadline, now, batch.Accepted - ended));
            await BatchWebhooks.OweAsync(webhooks, batch, BatchJobs.BatchExpired, ct);
            LogEnded(logger, batch.Id, BatchStatuses.Expired);
        }
        else if (ended >= batch.Accepted)
        {
            session.Events.Append(batch.Id, new V1.BatchCompleted(batch.Id, now));
            await BatchWebhooks.OweAsync(webhooks, batch, BatchJobs.BatchCompleted, ct);
            LogEnded(logger, batch.Id, BatchStatuses.Completed);
        }
    }

    [LoggerMessage(LogLevel.Information, "Batch {BatchId} {Status}")]
    private static partial void LogEnded(ILogger logger, Guid batchId, string status);

    [LoggerMessage(LogLevel.Information, "Ended {Count} queued jobs of batch {BatchId} ({Status})")]
    private static partial void LogSwept(ILogger logger, int count, Guid batchId, string status);

    [LoggerMessage(LogLevel.Warning, "Supervising batches failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
