using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Running;

namespace CqrsInference.Processors.Worker.Publishing;

/// <summary>
/// The last stage of a worker: puts each job's event on the log and only then settles its delivery
/// (ack, retry or terminate). The results are durable in JetStream before any job leaves the queue:
/// if this process dies in between, the jobs are redelivered and the duplicate results are dropped
/// by their message ids. Counts what happened in the metrics.
/// </summary>
internal sealed class OutcomePublisher(IEventLog log, IClaimCheck claimCheck, OutcomeDecision decision, string model, string region)
{
    /// <summary>
    /// Records the submission of each interactive job of the batch (it never was on the queue, so
    /// the log has not seen it) before anything else is said of it.
    /// </summary>
    public Task RecordServedAsync(IReadOnlyList<JobDelivery> batch) =>
        Task.WhenAll(batch.Where(d => d.IsInteractive && d.Data is not null).Select(d => (d.Decoded ?? JobGate.Decode(d.Data)) is { } job
            ? log.AppendServedAsync(job, d.Data!, trace: null, CancellationToken.None)
            : Task.CompletedTask));

    /// <summary>Counts the starts of a batch's jobs (redeliveries, overflow).</summary>
    public void CountStarts(IReadOnlyList<AdmittedJob> jobs)
    {
        foreach (var job in jobs)
        {
            if (job.Attempt > 1)
            {
                Telemetry.Redeliveries.Add(1, new("model", model), new("region", job.Job.Region));
            }

            if (job.Job.Region != region)
            {
                Telemetry.Overflowed.Add(1, new("model", model), new("region", job.Job.Region), new("ran_in", region));
            }
        }
    }

    /// <summary>Publishes each job's start: its run is long enough for callers to see it running.</summary>
    public Task AnnounceStartedAsync(IReadOnlyList<AdmittedJob> jobs, JobTraces traces, DateTimeOffset startedAt) =>
        Task.WhenAll(jobs.Select(j => log.AppendAsync(JobRoute.Of(j.Job), decision.Started(j, startedAt), traces.Of(j.Job.JobId), CancellationToken.None)));

    /// <summary>
    /// The endings of a run: outputs over the claim-check threshold go to the object store first.
    /// With <paramref name="unannouncedStart"/>, no start was published and each ending carries it.
    /// </summary>
    public async Task<IReadOnlyList<JobEnding>> EndingsOfAsync(IReadOnlyList<AdmittedJob> jobs, BatchRun run, DateTimeOffset? unannouncedStart)
    {
        var endings = new List<JobEnding>(jobs.Count);
        var shares = RunShares.Of(run.Outcomes, run.Elapsed);
        for (var i = 0; i < jobs.Count; i++)
        {
            var outcome = run.Outcomes[i];
            if (outcome is RunOutcome.Succeeded succeeded)
            {
                var (inline, reference) = await claimCheck.OffloadAsync(succeeded.Outputs, CancellationToken.None);
                outcome = succeeded with { Outputs = inline, OutputsRef = reference };
            }

            var start = unannouncedStart is { } at ? decision.Start(jobs[i], at) : null;
            endings.Add(decision.Decide(jobs[i], outcome, run.FinishedAt, shares[i], start));
        }

        return endings;
    }

    /// <summary>The endings of jobs that did not run here because their model version is not served (<see cref="VersionExecutors"/>).</summary>
    public IReadOnlyList<JobEnding> EndingsOfNotServed(IReadOnlyList<(AdmittedJob Job, RunOutcome Outcome)> jobs, DateTimeOffset now) =>
        [.. jobs.Select(j => decision.Decide(j.Job, j.Outcome, new BatchRun([j.Outcome], now, now, TimeSpan.Zero), 1))];

    /// <summary>Publishes every ending's event, then settles every delivery.</summary>
    public async Task SettleAsync(IReadOnlyList<JobEnding> endings, JobTraces? traces)
    {
        if (endings.Count == 0)
        {
            return;
        }

        await Task.WhenAll(endings.Select(e => log.AppendAsync(JobRoute.Of(e.Job.Job), e.Event, traces?.Of(e.Job.Job.JobId), CancellationToken.None)));
        await Task.WhenAll(endings.Select(SettleOneAsync));
        foreach (var ending in endings)
        {
            Count(ending.Job.Job, ending.Event);
            traces?.Of(ending.Job.Job.JobId)?.SetTag("cqrsi.outcome", EventNames.Of(ending.Event));
        }
    }

    /// <summary>
    /// A batch failed around the model (not in it): each job goes back to the queue for a later
    /// attempt, except a job on its last delivery, which is dead-lettered (failed, with the error)
    /// so that no accepted job stays queued or running forever once JetStream stops delivering it.
    /// If even that cannot be published, it too goes back (the server decides whether it comes again).
    /// </summary>
    public async Task HandBackAsync(IReadOnlyList<JobDelivery> batch, Exception error, DateTimeOffset now, TimeSpan retryDelay)
    {
        var fault = new RunOutcome.Faulted(JobErrorCodes.ProcessorError, $"{error.GetType().Name}: {error.GetBaseException().Message}");
        var run = new BatchRun([fault], now, now, TimeSpan.Zero);
        var endings = batch.Select(d => JobGate.Decode(d.Data) is { } job ? decision.Decide(new AdmittedJob(d, job), fault, run, 1) : null).ToList();
        var last = endings.OfType<JobEnding>().Where(e => e.Settlement is Settlement.Terminate).ToList();
        try
        {
            await SettleAsync(last, traces: null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            last.Clear();
        }

        var settled = last.Select(e => e.Job.Delivery).ToHashSet();
        await Task.WhenAll(batch.Where(d => !settled.Contains(d)).Select(d => d.Ack.RetryAsync(retryDelay))).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static Task SettleOneAsync(JobEnding ending) => ending.Settlement switch
    {
        Settlement.Ack => ending.Job.Delivery.Ack.AckAsync(),
        Settlement.Retry retry => ending.Job.Delivery.Ack.RetryAsync(retry.After),
        _ => ending.Job.Delivery.Ack.TerminateAsync(),
    };

    private void Count(JobCommand job, object @event)
    {
        // Cancelled jobs end at the cancel, not here: a processor only repeats what the cancel did.
        if (!JobLifecycle.IsTerminal(@event) || @event is V1.JobCancelled)
        {
            return;
        }

        Telemetry.JobsCompleted.Add(1, new("model", model), new("region", job.Region), new("status", JobLifecycle.StatusAfter(@event)));
        if (JobLifecycle.IsDeadLettered(@event))
        {
            Telemetry.DeadLetters.Add(1, new("model", model), new("region", job.Region));
        }
    }
}
