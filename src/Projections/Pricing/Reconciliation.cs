using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.Analytics;
using Marten;
using Npgsql;

namespace CqrsInference.Projections.Pricing;

/// <summary>
/// One hour (or the whole range) of reconciliation: the jobs' device-seconds (the sum of their runs'
/// shares) against the usage roll-up's busy seconds, and the processors' slot-seconds split into the
/// jobs' device-seconds, busy time no job's ending carries, and idle time:
/// <c>jobs + unattributed + idle = slot seconds</c>. The differences are stated with why they arise.
/// </summary>
public sealed record ReconciliationRow(
    DateTimeOffset? Hour,
    double JobsDeviceSeconds,
    double JobsFailedDeviceSeconds,
    long Runs,
    double UsageBusySeconds,
    double JobsMinusUsage,
    double ProcessorBusySeconds,
    double ProcessorSlotSeconds,
    double ProcessorIdleSeconds,
    double UnattributedBusySeconds,
    bool Reconciled,
    string Explanation);

public sealed record ReconciliationReport(DateTimeOffset From, DateTimeOffset To, IReadOnlyList<ReconciliationRow> Hours, ReconciliationRow Total);

/// <summary>Reads the three sides of each hour (jobs' runs, usage buckets, processors' heartbeats) and reconciles them (<see cref="Reconcile"/>, no I/O).</summary>
public sealed class ReconciliationReader(IDocumentStore store, NpgsqlDataSource db)
{
    /// <summary>Relative difference allowed between the jobs' device-seconds and the usage roll-up's busy seconds.</summary>
    public const double Tolerance = 0.001;

    private const int Decimals = 6;

    public async Task<ReconciliationReport> ReadAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken ct)
    {
        var jobs = await JobRunsAsync(from, to, ct);
        await using var session = store.QuerySession();
        var usage = (await session.Query<UsageBucket>().Where(u => u.Hour >= from && u.Hour < to).ToListAsync(ct))
            .GroupBy(u => u.Hour).ToDictionary(g => g.Key, g => g.Sum(u => u.BusySeconds));
        var processors = (await session.Query<ProcessorUsage>().Where(u => u.Hour >= from && u.Hour < to).ToListAsync(ct))
            .GroupBy(u => u.Hour).ToDictionary(g => g.Key, g => (Busy: g.Sum(u => u.BusySeconds), Slot: g.Sum(u => u.SlotSeconds)));
        var hours = jobs.Keys.Union(usage.Keys).Union(processors.Keys).Order().Select(hour =>
        {
            var (seconds, failed, runs) = jobs.GetValueOrDefault(hour);
            var (busy, slot) = processors.GetValueOrDefault(hour);
            return Reconcile(hour, seconds, failed, runs, usage.GetValueOrDefault(hour), busy, slot);
        }).ToList();
        var total = Reconcile(null, hours.Sum(h => h.JobsDeviceSeconds), hours.Sum(h => h.JobsFailedDeviceSeconds), hours.Sum(h => h.Runs),
            hours.Sum(h => h.UsageBusySeconds), hours.Sum(h => h.ProcessorBusySeconds), hours.Sum(h => h.ProcessorSlotSeconds));
        return new ReconciliationReport(from, to, hours, total);
    }

    /// <summary>Every run that ended in [from, to), summed per hour of its end: device-seconds, of which failed, and the count.</summary>
    private async Task<Dictionary<DateTimeOffset, (double Seconds, double Failed, long Runs)>> JobRunsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            $"""
            select (r ->> 'EndedAt')::timestamptz, (r ->> 'RunMs')::float8, (r ->> 'BatchSize')::int, r ->> 'Outcome'
            from {store.Options.DatabaseSchemaName}.mt_doc_jobstatus d, {InvoiceReader.RunsOf}
            where (d.data ->> 'SubmittedAt')::timestamptz < $2 and (r ->> 'EndedAt')::timestamptz >= $1 and (r ->> 'EndedAt')::timestamptz < $2
            """);
        command.Parameters.AddWithValue(from);
        command.Parameters.AddWithValue(to);
        var hours = new Dictionary<DateTimeOffset, (double Seconds, double Failed, long Runs)>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var hour = UsageBucket.HourOf(await reader.GetFieldValueAsync<DateTimeOffset>(0, ct));
            var seconds = DeviceTime.Seconds(reader.GetDouble(1), reader.GetInt32(2));
            var failed = reader.GetString(3) == EventNames.JobSucceeded ? 0 : seconds;
            var (s, f, n) = hours.GetValueOrDefault(hour);
            hours[hour] = (s + seconds, f + failed, n + 1);
        }

        return hours;
    }

    /// <summary>One hour's sides compared, rounded to microseconds, with why they differ.</summary>
    public static ReconciliationRow Reconcile(DateTimeOffset? hour, double jobs, double failed, long runs, double usage, double processorBusy, double slot)
    {
        var jobsMinusUsage = jobs - usage;
        var unattributed = processorBusy - jobs;
        var reconciled = Math.Abs(jobsMinusUsage) <= Tolerance * Math.Max(jobs, usage) + 1e-9;
        return new ReconciliationRow(hour, Round(jobs), Round(failed), runs, Round(usage), Round(jobsMinusUsage), Round(processorBusy), Round(slot),
            Round(slot - processorBusy), Round(unattributed), reconciled, Explain(reconciled, jobsMinusUsage, unattributed, slot));
    }

    private static string Explain(bool reconciled, double jobsMinusUsage, double unattributed, double slot)
    {
        var why = new List<string>();
        if (!reconciled)
        {
            why.Add(jobsMinusUsage > 0
                ? "the usage roll-up has not counted every recorded run yet (async daemon; see /v1/analytics/lag)"
                : "the usage roll-up counted runs whose job documents no longer list them (a job recorded before runs were kept)");
        }

        if (Math.Abs(unattributed) > 1e-6)
        {
            why.Add(unattributed > 0
                ? "processors were busy with runs no recorded ending carries (a cancel that won while the batch ran, a redelivered job run twice), "
                    + "or with runs that ended in the previous hour and were counted at the next heartbeat"
                : "runs ended in this hour but their processor's heartbeat counted them in the next hour (or has not arrived yet)");
        }

        if (slot == 0 && unattributed < 0)
        {
            why.Add("no processor heartbeat recorded in this hour");
        }

        return why.Count == 0 ? "reconciled: jobs = usage = processors' busy time" : string.Join("; ", why);
    }

    private static double Round(double value) => Math.Round(value, Decimals);
}
