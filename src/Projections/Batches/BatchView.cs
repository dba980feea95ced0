using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.Analytics;
using Marten;
using Npgsql;

namespace CqrsInference.Projections.Batches;

/// <summary>How many lines stand in each state: the jobs' statuses (a job accepted but not recorded yet counts as queued), and the lines refused at submit.</summary>
internal sealed record BatchCounts(int Queued, int Running, int Succeeded, int Failed, int Cancelled, int Expired, int Refused);

/// <summary>Lines finished (ended, or refused at submit) out of all lines of the file.</summary>
internal sealed record BatchProgress(int Finished, int Total);

/// <summary>
/// What the batch's runs cost so far: each job's share of the run it was batched in (<c>runMs</c> /
/// <c>batchSize</c>), in device-seconds, and priced by <c>Analytics:PricePerHour</c> of the device it ran on.
/// </summary>
internal sealed record BatchCost(double DeviceSeconds, decimal Amount);

/// <summary>The batch as <c>GET /v1/batches/{id}</c> returns it.</summary>
internal sealed record BatchView(
    Guid Id,
    string Status,
    DateTimeOffset SubmittedAt,
    DateTimeOffset? EndedAt,
    DateTimeOffset? Deadline,
    string Priority,
    string? Webhook,
    int Lines,
    int Accepted,
    BatchCounts Counts,
    BatchProgress Progress,
    BatchCost Cost);

/// <summary>
/// Reads batches for their tenant, and their counts from their jobs' status documents: for the API,
/// and for the webhook dispatcher, which sends a batch's view when it ends.
/// </summary>
internal sealed class BatchReader(IDocumentStore store, NpgsqlDataSource db, AnalyticsOptions analytics, StoreReadTimeout? timeout = null)
{
    /// <summary>The batch, or null when there is none or it is another tenant's (its existence is not disclosed).</summary>
    public Task<BatchStatus?> FindAsync(Guid id, string tenant, CancellationToken ct) => FindAsync(id, t => t == tenant, ct);

    /// <summary>The batch, or null when there is none or <paramref name="sees"/> does not see its tenant (the platform operator sees every tenant).</summary>
    public async Task<BatchStatus?> FindAsync(Guid id, Func<string, bool> sees, CancellationToken ct)
    {
        await using var session = store.QuerySession(new Marten.Services.SessionOptions { Timeout = timeout?.CommandSeconds });
        var batch = await session.LoadAsync<BatchStatus>(id, ct);
        return batch is not null && sees(batch.Tenant) ? batch : null;
    }

    public async Task<BatchView> ViewAsync(BatchStatus batch, CancellationToken ct)
    {
        var rows = await CountAsync(batch.Id, ct);
        int Count(string status) => rows.Where(r => r.Status == status).Sum(r => r.Jobs);
        var recorded = rows.Sum(r => r.Jobs);
        var counts = new BatchCounts(Count(JobStatuses.Queued) + Math.Max(0, batch.Accepted - recorded), Count(JobStatuses.Running), Count(JobStatuses.Succeeded),
            Count(JobStatuses.Failed), Count(JobStatuses.Cancelled), Count(JobStatuses.Expired), batch.Refused.Count);
        var finished = counts.Succeeded + counts.Failed + counts.Cancelled + counts.Expired + counts.Refused;
        var cost = new BatchCost(
            rows.Sum(r => r.DeviceSeconds),
            rows.Sum(r => (decimal)r.DeviceSeconds * analytics.PricePerHour.GetValueOrDefault(r.Device) / 3600m));
        return new BatchView(batch.Id, batch.Status, batch.SubmittedAt, batch.EndedAt, batch.Deadline, batch.Priority, batch.Webhook,
            batch.Lines, batch.Accepted, counts, new BatchProgress(finished, batch.Lines), cost);
    }

    /// <summary>The batch's jobs recorded so far, counted by status and device, with their device-seconds.</summary>
    public async Task<List<(string Status, string Device, int Jobs, double DeviceSeconds)>> CountAsync(Guid batchId, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            $"""
            select d.data ->> 'Status', coalesce(d.data ->> 'Device', ''), count(*)::int,
                   coalesce(sum((d.data ->> 'RunMs')::float8 / greatest(coalesce((d.data ->> 'BatchSize')::int, 1), 1)), 0) / 1000
            from {store.Options.DatabaseSchemaName}.mt_doc_jobstatus d
            where {BatchJobsSql.OfBatch}
            group by 1, 2
            """);
        command.Parameters.AddWithValue(batchId);
        if (timeout is not null)
        {
            command.CommandTimeout = timeout.CommandSeconds;
        }

        await using var reader = await command.ExecuteReaderAsync(ct);
        var rows = new List<(string, string, int, double)>();
        while (await reader.ReadAsync(ct))
        {
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetDouble(3)));
        }

        return rows;
    }
}

/// <summary>How SQL finds a batch's jobs: the expression of the index on <c>JobStatus.Batch.BatchId</c> (MartenSetup).</summary>
internal static class BatchJobsSql
{
    public const string OfBatch = "CAST(d.data -> 'Batch' ->> 'BatchId' as uuid) = $1";
}

/// <summary>
/// How long a read that answers a request waits for PostgreSQL per command (the API's
/// <c>Api:Timeouts:Command</c>), for the readers outside the requests' sessions; absent, the driver's.
/// </summary>
public sealed record StoreReadTimeout(int CommandSeconds);
