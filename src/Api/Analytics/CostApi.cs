using System.Globalization;
using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;
using CqrsInference.Projections.Analytics;
using CqrsInference.Projections.Pricing;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Analytics;

/// <summary>
/// What jobs cost, from the jobs' own runs: a tenant's invoice for a month (CSV, reproducible byte for
/// byte from the recorded events), and the hourly reconciliation of the jobs' device-seconds with the
/// usage roll-up and the processors' busy and slot seconds (docs/API.md, "Cost").
/// </summary>
internal static class CostApi
{
    /// <summary>The longest range one reconciliation reads (it reads every run that ended in it).</summary>
    public static readonly TimeSpan MaxReconciliationRange = TimeSpan.FromDays(31);

    private static readonly (int, string) BadInvoiceQuery = (StatusCodes.Status400BadRequest,
        "month is missing or not YYYY-MM, or tenant is not a tenant name (or missing, for the operator); 'errors' names each.");

    private static readonly (int, string) OtherTenantInvoice = (StatusCodes.Status403Forbidden, "The key's tenant is not the invoice's (only the operator reads any tenant's).");

    private static readonly (int, string) BadRange = (StatusCodes.Status400BadRequest,
        "from or to is not an ISO 8601 time, from is not before to, or the range is over 31 days; 'errors' names each.");

    public static RouteGroupBuilder MapCostAnalytics(this RouteGroupBuilder analytics)
    {
        analytics.MapGet("/invoice", InvoiceAsync).WithName("Invoice")
            .WithSummary("A tenant's invoice for a calendar month (UTC), as CSV: one line per job with a run that ended in the month, and a total line")
            .WithDescription("?tenant&month=YYYY-MM. Columns: jobId, submittedAt, model, modelVersion, runs, failedRuns, deviceSeconds (every run, "
                + "failed ones too; 6 decimals), failedDeviceSeconds, cost (at the price in force when each run ended; 9 decimals), failedCost. "
                + "Lines in submission order, then job id; the total line sums the lines as printed. The same recorded events give the same bytes "
                + "(also after ./run.sh replay). An analyst reads its own tenant's (tenant may be left out); the operator names any tenant.")
            .ProducesText(StatusCodes.Status200OK, ApiContract.Csv, "The invoice (RFC 4180, invariant culture, fixed decimals, \\n line ends).")
            .WithProblems(BadInvoiceQuery, OtherTenantInvoice)
            .RequirePolicy(ApiPolicies.Analyst);
        analytics.MapGet("/reconciliation", ReconciliationAsync).WithName("Reconciliation")
            .WithSummary("Per hour: the jobs' device-seconds against the usage roll-up's busy seconds, and the processors' slot-seconds as jobs + unattributed busy + idle (the platform operator's)")
            .WithDescription("?from&to (ISO 8601; default the last 24 h; at most 31 days), widened to whole hours (the report's from and to say so). Each row says whether the jobs and usage agree within 0.1% and explains every difference.")
            .WithProblems(BadRange)
            .RequirePolicy(ApiPolicies.Operator);
        return analytics;
    }

    public static async Task<Results<ContentHttpResult, ProblemHttpResult>> InvoiceAsync(
        ApiCaller caller, InvoiceReader invoices, Marten.IDocumentStore store, string? tenant, string? month, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (!TryParseMonth(month, out var start))
        {
            errors["month"] = [month is null ? "month is required: YYYY-MM." : $"month must be YYYY-MM (a year from 2000 and a month 01 to 12), not '{month}'."];
        }

        if (tenant is not null && !Commands.Models.Naming.IsToken(tenant))
        {
            errors["tenant"] = [Http.Problems.TenantRule];
        }
        else if (tenant is null && caller.IsOperator)
        {
            errors["tenant"] = ["tenant is required for the operator: name the tenant to invoice."];
        }

        if (errors.Count > 0)
        {
            return Http.Problems.BadQuery(errors);
        }

        var of = tenant ?? caller.Tenant;
        if (!caller.Sees(of))
        {
            return Http.Problems.Forbidden($"This key reads the invoices of tenant '{caller.Tenant}' only.");
        }

        var invoice = await invoices.ReadAsync(store.Options.DatabaseSchemaName, of, start, ct);
        return TypedResults.Text(invoice.ToCsv(), ApiContract.Csv, System.Text.Encoding.UTF8);
    }

    public static async Task<Results<Ok<ReconciliationReport>, ProblemHttpResult>> ReconciliationAsync(
        ReconciliationReader reconciliation, TimeProvider clock, string? from, string? to, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var end = Parse(to, "to", clock.GetUtcNow(), errors);
        var start = Parse(from, "from", end.AddDays(-1), errors);
        if (errors.Count == 0 && start >= end)
        {
            errors["from"] = ["from must be before to."];
        }
        else if (errors.Count == 0 && end - start > MaxReconciliationRange)
        {
            errors["to"] = ["The range may span at most 31 days."];
        }

        return errors.Count > 0
            ? Http.Problems.BadQuery(errors)
            : TypedResults.Ok(await reconciliation.ReadAsync(UsageBucket.HourOf(start), HourAtOrAfter(end), ct));
    }

    /// <summary>
    /// The range widened to whole hours at both ends: the usage roll-up and the processors' time are
    /// hourly, so an end inside an hour would count that hour's usage whole and its jobs in part.
    /// </summary>
    private static DateTimeOffset HourAtOrAfter(DateTimeOffset end) =>
        UsageBucket.HourOf(end) is var hour && hour == end ? end : hour.AddHours(1);

    /// <summary>Strictly <c>YYYY-MM</c>, year 2000 to 9998: the month's first instant, UTC.</summary>
    internal static bool TryParseMonth(string? value, out DateTimeOffset start)
    {
        start = default;
        if (value is not { Length: 7 } || value[4] != '-'
            || !int.TryParse(value.AsSpan(0, 4), NumberStyles.None, CultureInfo.InvariantCulture, out var year)
            || !int.TryParse(value.AsSpan(5, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var month)
            || year is < 2000 or > 9998 || month is < 1 or > 12)
        {
            return false;
        }

        start = new DateTimeOffset(year, month, 1, 0, 0, 0, TimeSpan.Zero);
        return true;
    }

    private static DateTimeOffset Parse(string? value, string field, DateTimeOffset fallback, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return fallback;
        }

        if (Http.Timestamps.TryParseUtc(value, out var parsed) && Http.Timestamps.InRange(parsed))
        {
            return parsed;
        }

        errors[field] = [$"{field} must be {(Http.Timestamps.TryParseUtc(value, out _) ? Http.Timestamps.RangeRule : Http.Timestamps.Rule)}."];
        return fallback;
    }
}
