using System.Security.Cryptography;
using System.Text;
using Mediator;

namespace CqrsInference.Commands.Jobs.Retrying;

/// <summary>
/// Retry a job that ended without succeeding. The caller has read the job (it exists and is the
/// tenant's) and passes what it saw: its status, its attempt series and the digest of the
/// Idempotency-Key of the retry that began that series. <paramref name="MaxRetries"/>: how many
/// retries a job may have (<c>Retry:MaxRetries</c>).
/// </summary>
public sealed record RetryInferenceJob(
    Guid JobId,
    string ObservedStatus,
    int ObservedSeries,
    string? ObservedRetryKey,
    string RetriedBy,
    string? IdempotencyKey,
    int MaxRetries,
    DateTimeOffset Now) : ICommand<RetryOutcome>;

/// <summary>What became of a retry.</summary>
public abstract record RetryOutcome
{
    /// <summary>
    /// Attempt series <paramref name="Series"/> is queued (by this call; or <paramref name="Repeated"/>:
    /// by an earlier request with the same Idempotency-Key, or a concurrent one for the same series).
    /// </summary>
    public sealed record Retried(int Series, bool Repeated) : RetryOutcome;

    /// <summary>The job is queued, running or succeeded: there is nothing to retry.</summary>
    public sealed record NotRetryable(string Status) : RetryOutcome;

    /// <summary>The job was retried as often as a job may be.</summary>
    public sealed record LimitReached(int MaxRetries) : RetryOutcome;

    /// <summary>The job's stored input is gone (the log's or the object store's retention): it cannot run again.</summary>
    public sealed record InputGone(string Reason) : RetryOutcome;
}

/// <summary>Where a retry finds the job's queue message again: the event log keeps it (<c>Topology:EventsMaxAge</c>).</summary>
public interface IQueuedJobs
{
    /// <summary>The job's latest queue message (its submission, or its last retry), or null when the log no longer has it.</summary>
    Task<JobCommand?> FindAsync(Guid jobId, CancellationToken ct);
}

/// <summary>The retry rules, without I/O: which jobs may be retried, how often, and which repeats are the same retry.</summary>
public static class RetryDecision
{
    /// <summary>The answer known before the stored input is looked at, or the series to queue.</summary>
    public static (RetryOutcome? Known, int NextSeries) Decide(RetryInferenceJob command)
    {
        if (command.IdempotencyKey is { } key && command.ObservedRetryKey == KeyDigest(key))
        {
            return (new RetryOutcome.Retried(command.ObservedSeries, Repeated: true), 0);
        }

        if (command.ObservedStatus is not (JobStatuses.Failed or JobStatuses.Expired or JobStatuses.Cancelled))
        {
            return (new RetryOutcome.NotRetryable(command.ObservedStatus), 0);
        }

        return command.ObservedSeries - 1 >= command.MaxRetries
            ? (new RetryOutcome.LimitReached(command.MaxRetries), 0)
            : (null, command.ObservedSeries + 1);
    }

    /// <summary>
    /// The queue message of the next series: the job's own, with the series marked. A deadline
    /// still ahead is kept; a passed one is dropped, or an expired job could never run again.
    /// </summary>
    public static JobCommand NextSeries(JobCommand stored, RetryInferenceJob command, int series) => stored with
    {
        Series = series,
        RetriedAt = command.Now,
        RetriedBy = command.RetriedBy,
        RetryKey = command.IdempotencyKey is { } key ? KeyDigest(key) : null,
        Deadline = stored.Deadline > command.Now ? stored.Deadline : null,
    };

    /// <summary>What the job's records keep of a retry's Idempotency-Key: a digest, never the key.</summary>
    public static string KeyDigest(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32];
}

/// <summary>
/// Queues the job again as its next attempt series: finds its queue message on the log, checks
/// that its stored input is still there, and publishes the message of the next series under
/// <see cref="JobLifecycle.QueueMessageId"/> (<c>&lt;job&gt;:retried:&lt;series&gt;</c>): two requests
/// that saw the same series publish the same message id and JetStream keeps one, so they make
/// one series; the recorder also records a series' retry once (<see cref="JobLifecycle.Changes"/>).
/// </summary>
public sealed class RetryInferenceJobHandler(IQueuedJobs queued, IClaimCheck claimCheck, IJobQueue queue)
    : ICommandHandler<RetryInferenceJob, RetryOutcome>
{
    public async ValueTask<RetryOutcome> Handle(RetryInferenceJob command, CancellationToken cancellationToken)
    {
        var (known, series) = RetryDecision.Decide(command);
        if (known is not null)
        {
            return known;
        }

        var stored = await queued.FindAsync(command.JobId, cancellationToken);
        if (stored is null)
        {
            return new RetryOutcome.InputGone("the event log no longer holds the job's queue message (Topology:EventsMaxAge)");
        }

        if (stored.InputsRef is { } blob)
        {
            try
            {
                await claimCheck.LoadAsync(blob, cancellationToken);
            }
            catch (InvalidDataException e)
            {
                return new RetryOutcome.InputGone($"its stored input is gone from the object store (ClaimCheck:MaxAge): {e.Message}");
            }
        }

        var (duplicate, _) = await queue.PublishAsync(RetryDecision.NextSeries(stored, command, series), cancellationToken);
        return new RetryOutcome.Retried(series, Repeated: duplicate);
    }
}
