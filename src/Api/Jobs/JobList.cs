using System.Buffers.Text;
using System.Globalization;
using System.Text;
using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using Marten;
using Marten.Linq.MatchesSql;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Jobs;

/// <summary>
/// <c>GET /v1/jobs</c>: the tenant's jobs, newest first, in pages. Paged like the audit feed: a page
/// of at most <c>limit</c> jobs and a cursor (<c>nextCursor</c>) to pass as <c>after</c> for the next
/// page, null on the last one. The order is (submitted at, id) descending, a total order (a bulk
/// submit's jobs share their submission time), and the cursor is the last job sent, so pages never
/// overlap or skip, however many jobs are submitted between them (those come first, on a new list).
/// </summary>
internal static class JobList
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 1000;

    /// <summary>
    /// The keyset condition: jobs after the cursor in (submitted at, id) descending order. The
    /// cursor's time is cast by PostgreSQL from the same text form as the stored one, so both round
    /// to microseconds alike (a parameter of type timestamptz would be truncated instead).
    /// </summary>
    private const string AfterCursor =
        "(CAST(d.data ->> 'SubmittedAt' as timestamp with time zone), d.id) < (CAST(? as timestamp with time zone), ?)";

    /// <summary>One page of jobs and where the next one starts (null: this is the last).</summary>
    public sealed record JobPage(IReadOnlyList<JobView> Jobs, string? NextCursor);

    public static async Task<Results<Ok<JobPage>, ProblemHttpResult>> ListAsync(
        ApiCaller caller, IQuerySession session, string? status, string? model, int? limit, string? after, string? tenant, CancellationToken ct)
    {
        if (Problems.OtherTenant(caller, tenant, "lists another tenant's jobs") is { } refused)
        {
            return refused;
        }

        var errors = new Dictionary<string, string[]>();
        if (limit is < 1 or > MaxLimit)
        {
            errors["limit"] = [$"limit must be between 1 and {MaxLimit}."];
        }

        if (status is not null && !JobStatuses.All.Contains(status))
        {
            errors["status"] = ["status must be queued, running, succeeded, failed, cancelled or expired."];
        }

        Cursor? cursor = null;
        if (after is not null && !Cursor.TryParse(after, out cursor))
        {
            errors["after"] = ["after must be the nextCursor of an earlier page."];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var owner = tenant ?? caller.Tenant;
        var query = session.Query<JobStatus>().Where(j => j.Tenant == owner);
        if (status is not null)
        {
            query = query.Where(j => j.Status == status);
        }

        if (model is not null)
        {
            query = query.Where(j => j.Model == model);
        }

        if (cursor is not null)
        {
            query = query.Where(j => j.MatchesSql(AfterCursor, cursor.SubmittedAt.ToString("O", CultureInfo.InvariantCulture), cursor.Id));
        }

        var page = limit ?? DefaultLimit;
        var jobs = await query.OrderByDescending(j => j.SubmittedAt).ThenByDescending(j => j.Id).Take(page + 1).ToListAsync(ct);
        var next = jobs.Count > page ? Cursor.After(jobs[page - 1]) : null;
        return TypedResults.Ok(new JobPage(jobs.Take(page).Select(JobView.From).ToList(), next));
    }

    /// <summary>The last job of a page, written as an opaque string (base64url of its submission time and id).</summary>
    private sealed record Cursor(DateTimeOffset SubmittedAt, Guid Id)
    {
        public static string After(JobStatus last) =>
            Base64Url.EncodeToString(Encoding.UTF8.GetBytes($"{last.SubmittedAt.UtcTicks.ToString(CultureInfo.InvariantCulture)}.{last.Id:N}"));

        public static bool TryParse(string text, out Cursor? cursor)
        {
            cursor = null;
            if (text.Length > 128 || !Base64Url.IsValid(text))
            {
                return false;
            }

            var parts = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(text)).Split('.');
            if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                || ticks > DateTimeOffset.MaxValue.UtcTicks || !Guid.TryParseExact(parts[1], "N", out var id))
            {
                return false;
            }

            cursor = new Cursor(new DateTimeOffset(ticks, TimeSpan.Zero), id);
            return true;
        }
    }
}
