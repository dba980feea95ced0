using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Worker.Fetching;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Worker.Gating;

/// <summary>A delivered job that may run now.</summary>
internal sealed record AdmittedJob(JobDelivery Delivery, JobCommand Job)
{
    public int Attempt => Delivery.Attempt;
}

/// <summary>How a delivery is settled once its event is stored.</summary>
internal abstract record Settlement
{
    /// <summary>The job leaves the queue.</summary>
    public sealed record Ack : Settlement;

    /// <summary>The job goes back to the queue for another attempt after <paramref name="After"/>.</summary>
    public sealed record Retry(TimeSpan After) : Settlement;

    /// <summary>The job leaves the queue for good: it can never run.</summary>
    public sealed record Terminate : Settlement;
}

/// <summary>A job's event for this delivery and how the delivery is settled once the event is stored.</summary>
internal sealed record JobEnding(AdmittedJob Job, object Event, Settlement Settlement);

/// <summary>The gate's verdict on a batch: what runs, and what ends here without running.</summary>
internal sealed record GateResult(IReadOnlyList<AdmittedJob> Runnable, IReadOnlyList<JobEnding> Ended);

/// <summary>
/// The second stage of a worker: decides, per delivered job, whether it may run now. A message that
/// is no job is terminated; inputs left in the object store (claim check) are loaded and their hash
/// checked (a blob missing or changed fails the job: it can never run); each job is claimed before
/// it runs (a job a cancel claimed first never runs: its cancel event is published again, in case
/// the API died between winning the claim and publishing it); and a job still waiting when its
/// deadline passed ends expired.
/// </summary>
internal sealed partial class JobGate(IJobClaims claims, IClaimCheck claimCheck, WorkerIdentity worker, TimeProvider clock, ILogger logger)
{
    public async Task<GateResult> PassAsync(IReadOnlyList<JobDelivery> batch, CancellationToken ct)
    {
        var ended = new List<JobEnding>();
        var jobs = await DecodeAsync(batch);
        jobs = await LoadInputsAsync(jobs, ended, ct);
        jobs = await ClaimAsync(jobs, ended, ct);
        jobs = Unexpired(jobs, ended);
        return new GateResult(jobs, ended);
    }

    private async Task<List<AdmittedJob>> DecodeAsync(IReadOnlyList<JobDelivery> batch)
    {
        var jobs = new List<AdmittedJob>(batch.Count);
        foreach (var delivery in batch)
        {
            if ((delivery.Decoded ?? Decode(delivery.Data)) is { } job)
            {
                jobs.Add(new AdmittedJob(delivery, job));
                continue;
            }

            // Without a job id there is no job to fail: this can only be a foreign message.
            LogUndecodable(logger, delivery.Subject, delivery.Sequence);
            await delivery.Ack.TerminateAsync();
        }

        return jobs;
    }

    public static JobCommand? Decode(byte[]? data)
    {
        try
        {
            return JsonSerializer.Deserialize(data ?? [], WireJson.Default.JobCommand);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task<List<AdmittedJob>> LoadInputsAsync(List<AdmittedJob> jobs, List<JobEnding> ended, CancellationToken ct)
    {
        var loaded = new List<AdmittedJob>(jobs.Count);
        foreach (var admitted in jobs)
        {
            if (admitted.Job.InputsRef is not { } blob)
            {
                loaded.Add(admitted);
                continue;
            }

            try
            {
                loaded.Add(admitted with { Job = admitted.Job with { Inputs = await claimCheck.LoadAsync(blob, ct) } });
            }
            catch (InvalidDataException e)
            {
                var failed = new V1.JobFailed(admitted.Job.JobId, admitted.Attempt, worker.Worker, worker.Device, clock.GetUtcNow(),
                    JobErrorCodes.InputCorrupt, e.Message, DeadLettered: false);
                ended.Add(new JobEnding(admitted, failed, new Settlement.Terminate()));
            }
        }

        return loaded;
    }

    private async Task<List<AdmittedJob>> ClaimAsync(List<AdmittedJob> jobs, List<JobEnding> ended, CancellationToken ct)
    {
        var outcomes = await Task.WhenAll(jobs.Select(j => claims.ClaimForRunAsync(j.Job.JobId, j.Job.SeriesNumber, ct)));
        var claimed = new List<AdmittedJob>(jobs.Count);
        for (var i = 0; i < jobs.Count; i++)
        {
            if (outcomes[i] == ClaimOutcome.Cancelled)
            {
                var cancelled = new V1.JobCancelled(jobs[i].Job.JobId, clock.GetUtcNow(), $"claim seen by {worker.Worker}");
                ended.Add(new JobEnding(jobs[i], cancelled, new Settlement.Terminate()));
            }
            else if (outcomes[i] == ClaimOutcome.Running && jobs[i].Delivery.Ack is InteractiveReply reply)
            {
                // A caller's retry of a job another run claimed: a queue's redelivery runs again (its
                // processor may have died), a caller's request does not (it would run the model once
                // per retry, billed once); the caller follows the job instead.
                await reply.TakenAsync();
            }
            else
            {
                claimed.Add(jobs[i]);
            }
        }

        return claimed;
    }

    private List<AdmittedJob> Unexpired(List<AdmittedJob> jobs, List<JobEnding> ended)
    {
        var now = clock.GetUtcNow();
        var running = new List<AdmittedJob>(jobs.Count);
        foreach (var admitted in jobs)
        {
            if (admitted.Job.Deadline is { } deadline && deadline <= now)
            {
                ended.Add(new JobEnding(admitted, new V1.JobExpired(admitted.Job.JobId, deadline, now, worker.Worker), new Settlement.Terminate()));
            }
            else
            {
                running.Add(admitted);
            }
        }

        return running;
    }

    [LoggerMessage(LogLevel.Error, "Message {Subject} #{Sequence} is not a job; terminated")]
    private static partial void LogUndecodable(ILogger logger, string subject, ulong sequence);
}
