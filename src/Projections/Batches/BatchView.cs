using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Pricing;
using CqrsInference.Projections.Pricing;
using Marten;
using Npgsql;

namespace CqrsInference.Projections.Batches;

/// <summary>How many lines stand in each state: the jobs' statuses (a job accepted but not recorded yet counts as queued), and the lines refused at submit.</summary>
internal sealed record BatchCounts(int Queued, int Running, int Succeeded, int Failed, int Cancelled, int Expired, int Refused);

/// <summary>Lines finished (ended, or refused at submit) out of all lines of the file.</summary>
internal sealed record BatchProgress(int Finished, int Total);

/// <summary>
/// What the batch's runs cost so far: the sum of its jobs' costs (<see cref="Pricing.JobCost"/>):
/// every run of every attempt and series, each job's share of the run it was batched in, failed
/// runs too (of which <see cref="FailedDeviceSeconds"/> and <see cref="FailedAmount"/>), each priced
/// at the price in force when it ended.
/// </summary>
internal sealed record BatchCost(double DeviceSeconds, decimal Amount, double FailedDeviceSeconds, decimal FailedAmount);

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
internal sealed class BatchReader(IDocumentStore store, NpgsqlDataSource db, PriceHistory prices, StoreReadTimeout? timeout = null)
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

    public async Task<BatchView> ViewAsync(BatchStatus batch, CancellationToken ct) => (await ViewsAsync([batch], ct))[0];

    /// <summary>The batches' views, the price history read once for all of them.</summary>
    public async Task<List<BatchView>> ViewsAsync(IEnumerable<BatchStatus> batches, CancellationToken ct)
    {
        var history = await prices.LoadAsync(ct);
        var views = new List<BatchView>();
        foreach (var batch in batches)
        {
            views.Add(await ViewAsync(batch, history, ct));
        }

        return views;
    }

    private async Task<BatchView> ViewAsync(BatchStatus batch, IReadOnlyList<V1.PriceListSet> history, CancellationToken ct)
    {
        var rows = await CountAsync(batch.Id, ct);
        int Count(string status) => rows.Where(r => r.Status == status).Sum(r => r.Jobs);
        var recorded = rows.Sum(r => r.Jobs);
        var counts = new BatchCounts(Count(JobStatuses.Queued) + Math.Max(0, batch.Accepted - recorded), Count(JobStatuses.Running), Count(JobStatuses.Succeeded),
            Count(JobStatuses.Failed), Count(JobStatuses.Cancelled), Count(JobStatuses.Expired), batch.Refused.Count);
        var finished = counts.Succeeded + counts.Failed + counts.Cancelled + counts.Expired + counts.Refused;
        return new BatchView(batch.Id, batch.Status, batch.SubmittedAt, batch.EndedAt, batch.Deadline, batch.Priority, batch.Webhook,
            batch.Lines, batch.Accepted, counts, new BatchProgress(finished, batch.Lines), await CostAsync(batch.Id, history, ct));
    }

    /// <summary>The batch's jobs recorded so far, counted by status.</summary>
    public async Task<List<(string Status, int Jobs)>> CountAsync(Guid batchId, CancellationToken ct)
    {
        await using var command = Command(
            $"""
            select d.data ->> 'Status', count(*)::int
            from {store.Options.DatabaseSchemaName}.mt_doc_jobstatus d
            where {BatchJobsSql.OfBatch}
            group by 1
            """, batchId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var rows = new List<(string, int)>();
        while (await reader.ReadAsync(ct))
        {
            rows.Add((reader.GetString(0), reader.GetInt32(1)));
        }

        return rows;
    }

    /// <summary>
    /// Every run of the batch's jobs, summed in SQL by device class, outcome and price period (the
    /// runs between two changes of the price list pay one price), then priced as
    /// <see cref="JobCost.Price"/> prices each run: the price is the same for every time of a period.
    /// </summary>
    private async Task<BatchCost> CostAsync(Guid batchId, IReadOnlyList<V1.PriceListSet> history, CancellationToken ct)
    {
        var changes = history.Select(h => h.From.UtcDateTime).Distinct().Order().ToArray();
        await using var command = Command(
            $"""
            select coalesce(r ->> 'DeviceClass', '{JobStatus.JobRun.UnknownDevice}'), (r ->> 'Outcome') = $3,
                   case when cardinality($2::timestamptz[]) = 0 then 0 else width_bucket((r ->> 'EndedAt')::timestamptz, $2::timestamptz[]) end,
                   sum((r ->> 'RunMs')::float8 / greatest(coalesce((r ->> 'BatchSize')::int, 1), 1)) / 1000
            from {store.Options.DatabaseSchemaName}.mt_doc_jobstatus d, {InvoiceReader.RunsOf}
            where {BatchJobsSql.OfBatch}
            group by 1, 2, 3
            """, batchId);
        command.Parameters.AddWithValue(changes);
        command.Parameters.AddWithValue(EventNames.JobSucceeded);
        var (seconds, amount, failedSeconds, failedAmount) = (0d, 0m, 0d, 0m);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            // Period k holds the runs that ended at or after the k-th change (0: before the first).
            var period = reader.GetInt32(2);
            var price = PriceLists.PriceAt(history, reader.GetString(0), period == 0 ? DateTimeOffset.MinValue : new DateTimeOffset(changes[period - 1]));
            var (runSeconds, cost) = (reader.GetDouble(3), DeviceTime.Cost(reader.GetDouble(3), price));
            (seconds, amount) = (seconds + runSeconds, amount + cost);
            if (!reader.GetBoolean(1))
            {
                (failedSeconds, failedAmount) = (failedSeconds + runSeconds, failedAmount + cost);
            }
        }

        return new BatchCost(seconds, amount, failedSeconds, failedAmount);
    }

    private NpgsqlCommand Command(string sql, Guid batchId)
    {
        var command = db.CreateCommand(sql);
        command.Parameters.AddWithValue(batchId);
        if (timeout is not null)
        {
            command.CommandTimeout = timeout.CommandSeconds;
        }

        return command;
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
