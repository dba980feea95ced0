using CqrsInference.Commands.Models;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Commands.Jobs.Submitting;

/// <summary>
/// How jobs are taken in, one or many: decide, admit, then make durable. The pure decision first
/// for every job (nothing is stored unless every job is valid), then the tenant's rate, the queues'
/// depth and the tenant's quota for all of them, the idempotency look-up, large inputs to the
/// object store, and the queue publishes (pipelined: the jobs are durable once every one is
/// acknowledged, and that is the 202).
/// </summary>
public sealed partial class JobIntake(
    ModelCatalog catalog,
    IJobQueue queue,
    IInteractiveRuns interactive,
    IIdempotencyRecords idempotency,
    IIdempotencyClaims claims,
    IAcceptedJobs acceptedJobs,
    ISubmitAdmission admission,
    IClaimCheck claimCheck,
    IJobHolding holding,
    SubmitOptions options,
    ILogger<JobIntake> logger)
{
    public async Task<SubmitOutcome> SubmitAsync(IReadOnlyList<SubmitInferenceJob> commands, bool bulk, CancellationToken ct)
    {
        var decided = Decide(commands, bulk);
        if (decided is not SubmitOutcome.AcceptedAll accepted)
        {
            return decided;
        }

        if (holding.HomeLost)
        {
            return await HoldAsync(commands, accepted, ct);
        }

        using var deadline = holding.Enabled ? CancellationTokenSource.CreateLinkedTokenSource(ct, holding.WhenHomeLost) : CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(options.DurableWithin + (commands[0].InteractiveWithin ?? TimeSpan.Zero));
        try
        {
            return await AdmitAsync(commands, accepted, deadline.Token);
        }
        catch (Exception e) when (holding.HomeLost && !ct.IsCancellationRequested && (e is OperationCanceledException || holding.IsOutage(e)))
        {
            // The home was lost while this submit waited on it (or failed because of it): the jobs
            // are held in this region instead; one that reached the log too is dropped there as a
            // duplicate when it is forwarded (the same message id).
            return await HoldAsync(commands, accepted, ct);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested && holding.Enabled)
        {
            // The log did not confirm in time, and the home may be going (it is found lost only
            // after a look or two): held, the jobs are durable now and reach the log when it answers.
            return await HoldAsync(commands, accepted, ct);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"The job queue did not confirm within {options.DurableWithin.TotalSeconds:0.#} s; the jobs may or may not be stored: retry with the same Idempotency-Key.");
        }
    }

    /// <summary>Admits the decided jobs (rate, depth, quota, idempotency) and makes them durable.</summary>
    private async Task<SubmitOutcome> AdmitAsync(IReadOnlyList<SubmitInferenceJob> commands, SubmitOutcome.AcceptedAll accepted, CancellationToken ct)
    {
        var tenant = commands[0].Tenant;
        var first = commands[0];

        // A retry of a request admitted before (its key claimed with this body) is not charged again;
        // a request refused at admission claimed nothing, so its retry is admitted afresh.
        var retried = first.IdempotencyKey is not null && await claims.FindAsync(first.JobId, ct) == first.RequestDigest;
        if (!retried && await admission.RefuseAsync(tenant, accepted.Jobs.Select(j => j.Job.Model).Distinct().ToList(), accepted.Jobs.Count, ct) is { } refused)
        {
            return refused;
        }

        if (first.IdempotencyKey is not null && await ClaimAsync(commands, ct) is { } conflict)
        {
            return conflict;
        }

        var recorded = first.IdempotencyKey is null
            ? new Dictionary<Guid, string>()
            : await idempotency.FindDigestsAsync(commands.Select(c => c.JobId).ToList(), tenant, ct);
        if (recorded.Values.Any(digest => digest != first.RequestDigest))
        {
            return new SubmitOutcome.IdempotencyConflict(recorded.First(r => r.Value != first.RequestDigest).Key);
        }

        // A retried key: the jobs already recorded are answered as they were; the rest (a bulk
        // submit cut short, say) are published now, and the queue's de-duplication window drops
        // any that were published but not yet recorded.
        using var activity = Telemetry.Source.StartActivity("jobs.submit", System.Diagnostics.ActivityKind.Producer);
        activity?.SetTag(Telemetry.JobIdTag, first.JobId.ToString());
        activity?.SetTag("cqrsi.jobs", commands.Count);
        return new SubmitOutcome.AcceptedAll(await Task.WhenAll(accepted.Jobs.Select(j => recorded.ContainsKey(j.Job.JobId)
            ? Task.FromResult(j with { Replayed = true })
            : PublishAsync(j.Job, commands.Count == 1 ? first.InteractiveWithin : null, ct))));
    }

    /// <summary>
    /// Claims the key for every job of the request (the first job alone first, so that a request
    /// whose key another body holds claims nothing); a conflict if another request's body holds it.
    /// </summary>
    private async Task<SubmitOutcome.IdempotencyConflict?> ClaimAsync(IReadOnlyList<SubmitInferenceJob> commands, CancellationToken ct)
    {
        var digest = commands[0].RequestDigest;
        if (await claims.ClaimAsync(commands[0].JobId, digest, ct) != digest)
        {
            return new SubmitOutcome.IdempotencyConflict(commands[0].JobId);
        }

        var held = await Task.WhenAll(commands.Skip(1).Select(c => claims.ClaimAsync(c.JobId, digest, ct)));
        var other = Array.FindIndex(held, d => d != digest);
        return other < 0 ? null : new SubmitOutcome.IdempotencyConflict(commands[other + 1].JobId);
    }

    /// <summary>Every job's decision; the first refusal of a single submit, or every job's errors (under <c>jobs[i]</c>) of a bulk one.</summary>
    private SubmitOutcome Decide(IReadOnlyList<SubmitInferenceJob> commands, bool bulk)
    {
        var accepted = new List<SubmitOutcome.Accepted>(commands.Count);
        var errors = new FieldErrors();
        for (var i = 0; i < commands.Count; i++)
        {
            switch (SubmitDecision.Decide(catalog, commands[i], options))
            {
                case SubmitOutcome.Accepted ok:
                    accepted.Add(ok);
                    break;
                case var refused when !bulk:
                    return refused;
                case SubmitOutcome.Rejected rejected:
                    foreach (var (field, messages) in rejected.Errors)
                    {
                        foreach (var message in messages)
                        {
                            errors.Add($"jobs[{i}].{field}", message);
                        }
                    }

                    break;
                case SubmitOutcome.UnknownModel unknown:
                    errors.Add($"jobs[{i}].model", $"Model '{unknown.Model}' is not served here; GET /v1/models lists the models.");
                    break;
                case SubmitOutcome.VersionNotServed version:
                    errors.Add($"jobs[{i}].modelVersion", version.Refusal.Detail);
                    break;
            }
        }

        return errors.Count > 0 ? new SubmitOutcome.Rejected(errors.ToDictionary()) : new SubmitOutcome.AcceptedAll(accepted);
    }

    /// <summary>
    /// Large inputs go to the object store first; the message carries their reference. An
    /// interactive job is offered to the processors first (<see cref="IInteractiveRuns"/>); it is
    /// queued when none served it in time.
    /// </summary>
    private async Task<SubmitOutcome.Accepted> PublishAsync(JobCommand decided, TimeSpan? interactiveWithin, CancellationToken ct)
    {
        var job = await OffloadAsync(decided, ct);
        if (interactiveWithin is { } within && await ServeAsync(job, within, ct) is { } servedIn)
        {
            return servedIn;
        }

        // Queued, or an interactive job nobody served: a processor may have recorded its submission
        // and died, so it is queued even when its caller has left (the job must end).
        using var durable = ct.IsCancellationRequested ? new CancellationTokenSource(options.DurableWithin) : null;
        return new SubmitOutcome.Accepted(job, Replayed: await QueueAsync(job, counted: false, durable?.Token ?? ct));
    }

    /// <summary>
    /// Sends a job held while the home was lost (<see cref="IJobHolding"/>) to the log the way a
    /// submit queues one: large inputs to the object store first (the store lives in the home, so
    /// they were held inline). Returns whether the log had it already.
    /// </summary>
    public async Task<bool> ForwardHeldAsync(JobCommand held, CancellationToken ct) =>
        await QueueAsync(held.InputsRef is null ? await OffloadAsync(held, ct) : held, counted: true, ct);

    /// <summary>How long a processor has to answer an interactive job (<c>Submit:InteractiveAnswerWithin</c>).</summary>
    public TimeSpan AnswerWithin => options.InteractiveAnswerWithin;

    /// <summary>
    /// Queues an interactive job another run took (<see cref="SubmitOutcome.Accepted.Taken"/>) that its
    /// caller did not see end: that run's processor may have died, and nothing else would queue it.
    /// A job queued already is a duplicate on the log; a run still going ends it first (one ending).
    /// </summary>
    public async Task QueueTakenAsync(JobCommand job)
    {
        using var durable = new CancellationTokenSource(options.DurableWithin);
        await QueueAsync(job, counted: true, durable.Token);
    }

    /// <summary>The job with its large inputs in the object store and their reference in their place.</summary>
    private async Task<JobCommand> OffloadAsync(JobCommand job, CancellationToken ct)
    {
        var (inline, reference) = await claimCheck.OffloadAsync(job.Inputs, ct);
        return job with { Inputs = inline, InputsRef = reference };
    }

    /// <summary>
    /// Publishes the job to the log (and so its queue); true when the log had it already. Counted in
    /// the submitted jobs unless <paramref name="counted"/> (a held job was counted when held).
    /// </summary>
    private async Task<bool> QueueAsync(JobCommand job, bool counted, CancellationToken ct)
    {
        var (duplicate, inputBytes) = await queue.PublishAsync(job, ct);
        LogAccepted(logger, job.JobId, job.Model, job.Region, duplicate);
        if (!duplicate && !counted)
        {
            Telemetry.JobsSubmitted.Add(1, new("model", job.Model), new("region", job.Region));
        }

        // The job is durable now; the recorder records its submission from the event log. Until
        // then it reads as queued from the API's memory (docs/ARCHITECTURE.md).
        acceptedJobs.Accepted(job.ToSubmitted(inputBytes));
        return duplicate;
    }

    /// <summary>
    /// The job run on the interactive path: accepted with the region that ran it; a retry of a job
    /// another run took, as a replay (the caller follows it); or null when no processor took it.
    /// </summary>
    private async Task<SubmitOutcome.Accepted?> ServeAsync(JobCommand job, TimeSpan within, CancellationToken ct)
    {
        string servedIn;
        try
        {
            switch (await interactive.RunAsync(job, within, ct))
            {
                case InteractiveOutcome.Served served:
                    servedIn = served.Region;
                    break;
                case InteractiveOutcome.Taken:
                    return new SubmitOutcome.Accepted(job, Replayed: true, Taken: true);
                default:
                    return null;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return null;
        }

        LogServed(logger, job.JobId, job.Model, servedIn);
        Telemetry.JobsSubmitted.Add(1, new("model", job.Model), new("region", job.Region));
        acceptedJobs.Accepted(job.ToSubmitted(0));
        return new SubmitOutcome.Accepted(job, Replayed: false, servedIn);
    }

    [LoggerMessage(LogLevel.Debug, "Interactive job {JobId} for {Model} served in {Region}")]
    private static partial void LogServed(ILogger logger, Guid jobId, string model, string region);

    [LoggerMessage(LogLevel.Debug, "Job {JobId} accepted for {Model} in {Region} (duplicate: {Duplicate})")]
    private static partial void LogAccepted(ILogger logger, Guid jobId, string model, string region, bool duplicate);
}
