using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Pricing;
using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;
using Marten;
using Marten.Exceptions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CqrsInference.Projections.Pricing;

/// <summary>Reads the price history (<see cref="PriceLists"/>): a handful of events, read whole each time it is asked for.</summary>
public sealed class PriceHistory(IDocumentStore store)
{
    public async Task<IReadOnlyList<V1.PriceListSet>> LoadAsync(CancellationToken ct)
    {
        await using var session = store.QuerySession();
        var events = await session.Events.FetchStreamAsync(PriceLists.StreamId, token: ct);
        return events.Select(e => e.Data).OfType<V1.PriceListSet>().ToList();
    }
}

/// <summary>
/// Records <c>Analytics:PricePerHour</c> in the price history when a projections host starts with a
/// list that differs from the last one recorded: from then on, runs are priced by it. Two hosts
/// starting at once append at the same stream version; the loser reads again and finds its list
/// recorded (or records it after the other's). Hosts configured with different lists would each record
/// theirs when they start: keep one list across hosts.
/// </summary>
internal sealed partial class PriceListRecording(
    IDocumentStore store, NpgsqlDataSource db, PriceHistory history, AnalyticsOptions options, TimeProvider clock, ILogger<PriceListRecording> logger, OutageWatches? watches = null)
    : BackgroundService
{
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("price list");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var outages = Retries.ThroughOutages(_watch, Outages.IsOutage, clock);
        try
        {
            await outages.ExecuteAsync(async ct => await RecordAsync(ct), stoppingToken);
            _watch.Worked();
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Appends the configured list if it differs from the last recorded; true when it did. One host
    /// at a time (a transaction-scoped advisory lock): hosts starting together would otherwise race,
    /// and the loser's append fails after drawing an event sequence number, a gap at the log's tail
    /// that <c>/v1/analytics/lag</c> reads as every roll-up one event behind until the next event.
    /// </summary>
    public async Task<bool> RecordAsync(CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var take = new NpgsqlCommand("select pg_advisory_xact_lock(hashtext('cqrsi-price-list'))", connection, transaction))
        {
            await take.ExecuteNonQueryAsync(ct);
        }

        var recorded = await RecordLockedAsync(ct);
        await transaction.CommitAsync(ct);
        return recorded;
    }

    private async Task<bool> RecordLockedAsync(CancellationToken ct)
    {
        for (var tries = 0; ; tries++)
        {
            var recorded = await history.LoadAsync(ct);
            if (!PriceLists.Differs(options.PricePerHour, recorded.LastOrDefault()))
            {
                return false;
            }

            await using var session = store.LightweightSession();
            var list = new V1.PriceListSet(PriceLists.Normalize(options.PricePerHour), clock.GetUtcNow(), Environment.MachineName);
            session.Events.Append(PriceLists.StreamId, recorded.Count + 1, list);
            try
            {
                await session.SaveChangesAsync(ct);
                LogRecorded(logger, string.Join(", ", list.PricePerHour.Select(p => $"{p.Key}: {p.Value}")), list.From);
                return true;
            }
            catch (Exception e) when (tries < 3 && ConcurrentWrites.LostRace(e))
            {
                // Another host appended meanwhile: read again.
            }
        }
    }

    [LoggerMessage(LogLevel.Information, "Price list recorded ({Prices}), in force from {From}")]
    private static partial void LogRecorded(ILogger logger, string prices, DateTimeOffset from);
}
