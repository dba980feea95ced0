using CqrsInference.Api.Http;
using CqrsInference.Api.Jobs.Submitting;
using CqrsInference.Api.Security;
using CqrsInference.Commands;
using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Models;
using CqrsInference.Projections.Batches;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Batches;

/// <summary>The answer to a batch submit: the batch, and every line refused, by number, with its faults.</summary>
internal sealed record BatchAccepted(BatchView Batch, IReadOnlyList<RefusedLine> Refused);

/// <summary>What the batch endpoints share.</summary>
internal sealed class BatchServices(
    ISender sender, IDocumentSession session, BatchReader reader, ModelCatalog catalog, SubmitOptions submit, BatchOptions options,
    Hosting.TenantRateLimiter rate, Messaging.WebhookQueue webhooks, Messaging.JobQueues queues, TimeProvider clock)
{
    public ISender Sender => sender;

    public Messaging.JobQueues Queues => queues;

    public Messaging.WebhookQueue Webhooks => webhooks;

    public IDocumentSession Session => session;

    public BatchReader Reader => reader;

    public ModelCatalog Catalog => catalog;

    public SubmitOptions Submit => submit;

    public BatchOptions Options => options;

    public Hosting.TenantRateLimiter Rate => rate;

    public TimeProvider Clock => clock;
}

/// <summary>
/// <c>POST /v1/batches</c>: a JSONL file of job requests. Every line is decided on its own (a refused
/// line is reported by its number and <c>customId</c>, the valid ones run; <c>atomic=true</c> refuses the
/// whole file instead); the valid lines go through the same intake as <c>POST /v1/jobs:bulk</c>, in
/// chunks the tenant's burst allows (paced by its rate, up to <see cref="BatchOptions.AdmitWithin"/>),
/// each job's id derived from the batch id and its line; once they are durable the batch's
/// <see cref="V1.BatchSubmitted"/> is appended in Marten, and the answer is 202.
/// </summary>
internal static class BatchSubmitEndpoint
{
    private const int MaxChunk = 1000;

    public static async Task<Results<Accepted<BatchAccepted>, ProblemHttpResult>> SubmitAsync(
        HttpRequest request, ApiCaller caller, BatchServices services, CancellationToken ct)
    {
        var now = services.Clock.GetUtcNow();
        var (file, problem) = await BatchFileReader.ReadAsync(request, services.Options, now, ct);
        if (file is null)
        {
            return problem!;
        }

        if (WebhookRefusal(file.Options.Webhook, services.Submit) is { } refusal)
        {
            return Problems.Validation("webhook", refusal);
        }

        var batchId = BatchJobs.BatchId(caller.Tenant, file.IdempotencyKey, now);
        if (await services.Reader.FindAsync(batchId, caller.Tenant, ct) is { } existing)
        {
            return await AsBeforeAsync(existing, file, services, ct);
        }

        var commands = Decide(file, batchId, caller.Tenant, now, services);
        if (file.Options.Atomic && file.Refused.Count > 0)
        {
            return AtomicRefusal(file.Refused);
        }

        var (admitted, refusedOutcome) = await AdmitAsync(commands, caller.Tenant, file.Refused, services, ct);
        if (admitted.Count == 0 && refusedOutcome is not null)
        {
            return SubmitProblems.Of(request.HttpContext, refusedOutcome);
        }

        var submitted = new V1.BatchSubmitted(batchId, caller.Tenant, now, file.Lines, admitted.Select(c => c.Batch!.Line).Order().ToList(),
            file.Refused.OrderBy(r => r.Line).ToList(), file.Options.Deadline, file.Options.Webhook, file.Options.Priority, file.Digest, caller.KeyId);
        services.Session.Events.StartStream<BatchStatus>(batchId, submitted);
        try
        {
            await services.Session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (Projections.ConcurrentWrites.LostRace(e))
        {
            // The same Idempotency-Key at once: the first to save is the batch (the jobs' ids are the
            // same in both, so the queue holds each once); this request answers as its retry would.
            return await AsBeforeAsync((await services.Reader.FindAsync(batchId, caller.Tenant, ct))!, file, services, ct);
        }

        var batch = BatchStatusProjection.Create(submitted);
        return Accepted(await services.Reader.ViewAsync(batch, ct), batch.Refused);
    }

    /// <summary>A batch of the same Idempotency-Key: itself again for the same request, else 409.</summary>
    private static async Task<Results<Accepted<BatchAccepted>, ProblemHttpResult>> AsBeforeAsync(BatchStatus existing, BatchFile file, BatchServices services, CancellationToken ct) =>
        existing.RequestDigest == file.Digest
            ? Accepted(await services.Reader.ViewAsync(existing, ct), existing.Refused)
            : Problems.IdempotencyConflict(existing.Id, "batch");

    private static string NotAdmitted(SubmitOutcome outcome) => outcome switch
    {
        SubmitOutcome.QuotaExhausted quota => $"Not admitted: the tenant has submitted its {quota.Limit} jobs for today (UTC).",
        SubmitOutcome.QueueFull full => $"Not admitted: {full.Detail}",
        SubmitOutcome.RateLimited => "Not admitted: the tenant's submit rate did not admit it within Batches:AdmitWithin.",
        _ => $"Not admitted: {outcome.GetType().Name}.",
    };

    private static Accepted<BatchAccepted> Accepted(BatchView view, IReadOnlyList<RefusedLine> refused) =>
        TypedResults.Accepted($"/v1/batches/{view.Id}", new BatchAccepted(view, refused));

    /// <summary>Every bad line's faults under <c>lines[n].field</c>, at most <see cref="FieldErrors.MaxListed"/> listed (5,000 bad lines answered 259 KB).</summary>
    private static ProblemHttpResult AtomicRefusal(List<RefusedLine> refused)
    {
        var errors = new FieldErrors();
        foreach (var (line, field, message) in refused.OrderBy(r => r.Line).SelectMany(r => r.Errors.SelectMany(e => e.Value.Select(m => (r.Line, e.Key, m)))))
        {
            errors.Add($"lines[{line}].{field}", message);
        }

        return Problems.Validation(errors.ToDictionary());
    }

    private static string? WebhookRefusal(string? webhook, SubmitOptions submit) => webhook switch
    {
        null => null,
        _ when !submit.WebhooksEnabled => "Webhooks are not enabled on this deployment (Webhooks:SigningKey is not set).",
        _ => submit.WebhookAddresses.Refusal(webhook),
    };

    /// <summary>Each valid line as its command, decided on its own; a line the model's rules refuse joins the refused lines.</summary>
    private static List<SubmitInferenceJob> Decide(BatchFile file, Guid batchId, string tenant, DateTimeOffset now, BatchServices services)
    {
        var commands = new List<SubmitInferenceJob>(file.Valid.Count);
        foreach (var line in file.Valid)
        {
            var job = line.Job;
            var deadline = (job.Deadline, file.Options.Deadline) switch
            {
                ({ } own, { } batch) => own < batch ? own : batch,
                var (own, batch) => own ?? batch,
            };
            var command = new SubmitInferenceJob(BatchJobs.JobId(batchId, line.Line), tenant, job.Model, job.Region, job.Priority ?? file.Options.Priority,
                job.Inputs, job.Metadata, IdempotencyKey: null, line.Digest, now, job.Webhook, deadline, job.Timeout, WebhookEvents: job.WebhookEvents,
                Batch: new BatchLine(batchId, line.Line, line.CustomId), ModelVersion: job.ModelVersion);
            switch (SubmitDecision.Decide(services.Catalog, command, services.Submit))
            {
                case SubmitOutcome.Accepted:
                    commands.Add(command);
                    break;
                case SubmitOutcome.Rejected rejected:
                    file.Refused.Add(new RefusedLine(line.Line, line.CustomId, rejected.Errors));
                    break;
                case SubmitOutcome.UnknownModel unknown:
                    file.Refused.Add(new RefusedLine(line.Line, line.CustomId, new Dictionary<string, string[]>
                    {
                        ["model"] = [$"Model '{unknown.Model}' is not served here; GET /v1/models lists the models."],
                    }));
                    break;
                case SubmitOutcome.VersionNotServed version:
                    file.Refused.Add(new RefusedLine(line.Line, line.CustomId, new Dictionary<string, string[]> { ["modelVersion"] = [version.Refusal.Detail] }));
                    break;
            }
        }

        return commands;
    }

    /// <summary>
    /// The lines through the intake in chunks of at most the tenant's burst, waiting out its rate; a
    /// chunk refused otherwise (quota, queue full) has its lines refused, with the reason. The first
    /// refusal that is not the rate comes back too (the whole batch is refused when nothing was admitted).
    /// </summary>
    private static async Task<(List<SubmitInferenceJob> Admitted, SubmitOutcome? Refused)> AdmitAsync(
        List<SubmitInferenceJob> commands, string tenant, List<RefusedLine> refusedLines, BatchServices services, CancellationToken ct)
    {
        var admitted = new List<SubmitInferenceJob>(commands.Count);
        var notAdmitted = new List<RefusedLine>();
        SubmitOutcome? refused = null;
        var waitUntil = services.Clock.GetUtcNow() + services.Options.AdmitWithin;
        foreach (var chunk in commands.Chunk(Math.Min(MaxChunk, services.Rate.BurstFor(tenant))))
        {
            var outcome = await services.Sender.Send(new SubmitInferenceJobs(chunk), ct);
            while (outcome is SubmitOutcome.RateLimited limited && services.Clock.GetUtcNow() + limited.RetryAfter <= waitUntil)
            {
                await Task.Delay(limited.RetryAfter, services.Clock, ct);
                outcome = await services.Sender.Send(new SubmitInferenceJobs(chunk), ct);
            }

            if (outcome is SubmitOutcome.AcceptedAll)
            {
                admitted.AddRange(chunk);
                continue;
            }

            refused ??= outcome;
            var reason = new Dictionary<string, string[]> { ["$"] = [NotAdmitted(outcome)] };
            notAdmitted.AddRange(chunk.Select(c => new RefusedLine(c.Batch!.Line, c.Batch.CustomId, reason)));
        }

        if (admitted.Count > 0)
        {
            refusedLines.AddRange(notAdmitted);
        }

        return (admitted, refused);
    }
}
