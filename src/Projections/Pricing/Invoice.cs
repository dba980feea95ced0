using System.Globalization;
using System.Text;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using Marten;
using Npgsql;

namespace CqrsInference.Projections.Pricing;

/// <summary>One line of an invoice: a job's runs that ended in the month, rounded as printed (device-seconds to 6 decimals, amounts to 9).</summary>
public sealed record InvoiceLine(
    Guid JobId, DateTimeOffset SubmittedAt, string Model, string ModelVersion, int Runs, int FailedRuns,
    decimal DeviceSeconds, decimal FailedDeviceSeconds, decimal Cost, decimal FailedCost);

/// <summary>
/// A tenant's invoice for a calendar month (UTC): one line per job that has a run ending in the month,
/// ordered by submission time, then job id; the totals are the sums of the lines as printed. A job
/// whose runs span two months is on both invoices, with the runs of each.
/// </summary>
public sealed record Invoice(string Tenant, DateTimeOffset Month, IReadOnlyList<InvoiceLine> Lines)
{
    public const int SecondsDecimals = 6;
    public const int CostDecimals = 9;

    /// <summary>
    /// The invoice as CSV, byte for byte the same for the same recorded events: invariant culture,
    /// fixed decimals, <c>\n</c> line ends, a header, the lines, then a <c>total</c> line.
    /// </summary>
    public string ToCsv()
    {
        var csv = new StringBuilder("jobId,submittedAt,model,modelVersion,runs,failedRuns,deviceSeconds,failedDeviceSeconds,cost,failedCost\n");
        foreach (var l in Lines)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{l.JobId:D},{l.SubmittedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture)},")
                .Append(Text(l.Model)).Append(',').Append(Text(l.ModelVersion)).Append(',')
                .Append(Numbers(l.Runs, l.FailedRuns, l.DeviceSeconds, l.FailedDeviceSeconds, l.Cost, l.FailedCost)).Append('\n');
        }

        return csv.Append("total,,,,")
            .Append(Numbers(Lines.Sum(l => l.Runs), Lines.Sum(l => l.FailedRuns), Lines.Sum(l => l.DeviceSeconds), Lines.Sum(l => l.FailedDeviceSeconds),
                Lines.Sum(l => l.Cost), Lines.Sum(l => l.FailedCost)))
            .Append('\n').ToString();
    }

    private static string Numbers(int runs, int failedRuns, decimal seconds, decimal failedSeconds, decimal cost, decimal failedCost) =>
        string.Create(CultureInfo.InvariantCulture, $"{runs},{failedRuns},{seconds:F6},{failedSeconds:F6},{cost:F9},{failedCost:F9}");

    /// <summary>RFC 4180 quoting, and a leading <c>'</c> for text a spreadsheet would run as a formula (as the analytics CSV does).</summary>
    private static string Text(string value)
    {
        if (value.Length > 0 && value[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            value = "'" + value;
        }

        return value.AsSpan().IndexOfAny(",\"\n\r'") < 0 ? value : $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
    }
}

/// <summary>
/// Reads invoices from the job status documents (their <see cref="JobStatus.JobStatus.Runs"/>) and the
/// price history: nothing else, so an invoice is a function of the recorded events. <c>schema</c> names
/// the tables: the live ones, or a rebuild's (<c>&lt;schema&gt;_replay</c>, <see cref="Audit.ProjectionReplay"/>).
/// </summary>
public sealed class InvoiceReader(IDocumentStore store, NpgsqlDataSource db, PriceHistory prices)
{
    /// <summary>A job's runs as SQL rows: <c>r</c>, one per run (none for a job without runs).</summary>
    internal const string RunsOf = "jsonb_array_elements(case when jsonb_typeof(d.data -> 'Runs') = 'array' then d.data -> 'Runs' else '[]'::jsonb end) r";

    public async Task<Invoice> ReadAsync(string schema, string tenant, DateTimeOffset month, CancellationToken ct)
    {
        var (start, end) = (month, month.AddMonths(1));
        var history = await prices.LoadAsync(ct);
        await using var command = db.CreateCommand(
            $"""
            select d.id, d.data ->> 'SubmittedAt', d.data ->> 'Model', d.data ->> 'ModelVersion', d.data -> 'Runs'
            from {schema}.mt_doc_jobstatus d
            where d.data ->> 'Tenant' = $1 and (d.data ->> 'SubmittedAt')::timestamptz < $3
              and exists (select 1 from {RunsOf} where (r ->> 'EndedAt')::timestamptz >= $2 and (r ->> 'EndedAt')::timestamptz < $3)
            """);
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(start);
        command.Parameters.AddWithValue(end);
        var serializer = store.Options.Serializer();
        var lines = new List<InvoiceLine>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var runs = (await serializer.FromJsonAsync<List<JobRun>>(reader, 4, ct)).Where(r => r.EndedAt >= start && r.EndedAt < end).ToList();
                lines.Add(Line(reader.GetGuid(0), DateTimeOffset.Parse(reader.GetString(1), CultureInfo.InvariantCulture), reader.GetString(2), reader.GetString(3), runs, history));
            }
        }

        return new Invoice(tenant, month, lines.OrderBy(l => l.SubmittedAt).ThenBy(l => l.JobId.ToString("D"), StringComparer.Ordinal).ToList());
    }

    /// <summary>A job's line: its runs in the month priced one by one (<see cref="JobCost"/>), then rounded once.</summary>
    private static InvoiceLine Line(Guid id, DateTimeOffset submittedAt, string model, string version, List<JobRun> runs, IReadOnlyList<V1.PriceListSet> history)
    {
        var cost = JobCost.Of(runs, history);
        return new InvoiceLine(id, submittedAt, model, version, runs.Count, cost.FailedRuns.Count,
            Math.Round((decimal)cost.DeviceSeconds, Invoice.SecondsDecimals), Math.Round((decimal)cost.FailedDeviceSeconds, Invoice.SecondsDecimals),
            Math.Round(cost.Amount, Invoice.CostDecimals), Math.Round(cost.FailedAmount, Invoice.CostDecimals));
    }
}
