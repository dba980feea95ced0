using System.Text.Json;
using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Projections.JobStatus;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>The answer to a bulk submit: every job as it stands, in the order submitted.</summary>
internal sealed record BulkSubmitted(IReadOnlyList<JobView> Jobs);

/// <summary>
/// <c>POST /v1/jobs:bulk</c> with <c>{"jobs":[ &lt;job&gt;, … ]}</c>: many jobs in one request, accepted
/// or refused together (a 422 names every fault as <c>jobs[i].…</c>), each with its own id, under the
/// same rules and limits per job as a single submit. An <c>Idempotency-Key</c> covers the request:
/// job i's id derives from the key and i, so a retry (after a 503 mid-way, say) completes the same
/// set without duplicates.
/// </summary>
internal static class BulkSubmitEndpoint
{
    public const int MaxJobs = 1000;

    /// <summary>Why <c>?wait=</c> is refused here.</summary>
    public const string WaitRefusal =
        "A bulk submit answers once every job is queued; it does not wait for them to end. Follow each job (GET /v1/jobs/{id}/stream, or a webhook), or submit a job on its own with ?wait=.";

    public static async Task<Results<Accepted<BulkSubmitted>, ProblemHttpResult>> SubmitAsync(
        HttpRequest request, ApiCaller caller, SubmitServices services, CancellationToken ct)
    {
        if (request.Query.ContainsKey("wait"))
        {
            // Said, not ignored (and not a documented parameter): a caller who asks to wait would
            // otherwise take the 202 for the results.
            return Problems.Validation("wait", WaitRefusal);
        }

        var (body, idempotencyKey, problem) = await SubmitRequestReader.ReadBodyAsync(request, ct);
        if (body is null)
        {
            return problem!;
        }

        var (jobs, invalid) = Parse(body.Value);
        if (jobs is null)
        {
            return invalid!;
        }

        var now = services.Clock.GetUtcNow();
        var digest = RequestDigest.Of(body.Value.GetRawText());
        var commands = jobs.Select((job, i) => new SubmitInferenceJob(
            idempotencyKey is null ? Guid.CreateVersion7(now) : DeterministicGuid.ForIdempotencyKey(caller.Tenant, $"{idempotencyKey}\nbulk\n{i}"),
            caller.Tenant, job.Model, job.Region, job.Priority, job.Inputs, job.Metadata, idempotencyKey, digest, now, job.Webhook, job.Deadline, job.Timeout, WebhookEvents: job.WebhookEvents, ModelVersion: job.ModelVersion)).ToList();
        ApiExceptionHandler.Submitting(request.HttpContext, commands.Select(c => c.JobId).ToList());
        return await services.Sender.Send(new SubmitInferenceJobs(commands), ct) switch
        {
            SubmitOutcome.AcceptedAll all => TypedResults.Accepted((string?)null, new BulkSubmitted(await ViewsAsync(all, caller.Tenant, services, ct))),
            var refused => SubmitProblems.Of(request.HttpContext, refused),
        };
    }

    /// <summary>
    /// Each job as accepted; a retried request's jobs recorded before as they stand (succeeded, say),
    /// as a retried single submit answers, unless PostgreSQL does not answer within 2 s.
    /// </summary>
    private static async Task<List<JobView>> ViewsAsync(SubmitOutcome.AcceptedAll all, string tenant, SubmitServices services, CancellationToken ct)
    {
        var replayed = all.Jobs.Where(a => a.Replayed).Select(a => a.Job.JobId).ToList();
        var current = replayed.Count == 0
            ? new Dictionary<Guid, JobStatus>()
            : await services.Jobs.FindManyOrNothingWithinAsync(services.Session, replayed, tenant, JobReader.MemoryAnswersAfter, ct);
        return [.. all.Jobs.Select(a => JobView.From(current.GetValueOrDefault(a.Job.JobId) ?? JobStatusProjection.Create(a.Job.ToSubmitted(0))))];
    }

    private static (List<JobRequest>? Jobs, ProblemHttpResult? Problem) Parse(JsonElement root)
    {
        var errors = new FieldErrors();
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("jobs", out var jobs) || jobs.ValueKind != JsonValueKind.Array)
        {
            return (null, Problems.Validation("jobs", "The body must be {\"jobs\": [ <job>, … ]}."));
        }

        foreach (var property in root.EnumerateObject().Where(p => p.Name != "jobs"))
        {
            errors.Add(property.Name, $"Unknown field '{property.Name}'; the only field is: jobs.");
        }

        if (jobs.GetArrayLength() is 0 or > MaxJobs)
        {
            return (null, Problems.Validation("jobs", $"A bulk submit holds 1 to {MaxJobs} jobs."));
        }

        var parsed = new List<JobRequest>(jobs.GetArrayLength());
        var i = 0;
        foreach (var element in jobs.EnumerateArray())
        {
            var jobErrors = new FieldErrors();
            var job = JobRequestParser.Parse(element, jobErrors);
            errors.Merge($"jobs[{i}]", jobErrors);

            if (job is { Interactive: true })
            {
                errors.Add($"jobs[{i}].mode", "A bulk submit queues its jobs; submit an interactive job on its own (POST /v1/jobs).");
            }
            else if (job is not null)
            {
                parsed.Add(job);
            }

            i++;
        }

        return errors.Count > 0 ? (null, Problems.Validation(errors.ToDictionary())) : (parsed, null);
    }
}
