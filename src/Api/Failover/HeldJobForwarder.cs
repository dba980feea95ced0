using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;

namespace CqrsInference.Api.Failover;

/// <summary>
/// Forwards the jobs this region held while the home was lost (<see cref="JobHolding"/>) to the log
/// once it answers again, from wherever it lives then (the home back, or this region after a
/// takeover): the inputs to the object store when they are large, the job to the log (its queue
/// message id, so one that reached the log before is dropped there as a duplicate), its key's
/// claim and its tenant's quota count; each is taken off the hold once forwarded. Any API of the
/// region may forward any held job (one consumer of the hold's work queue).
/// </summary>
internal sealed partial class HeldJobForwarder(
    JobHolding holding,
    Commands.Jobs.Submitting.JobIntake intake,
    IIdempotencyClaims claims,
    Jobs.Submitting.TenantQuota quota,
    ILogger<HeldJobForwarder> logger,
    OutageWatches? watches = null) : BackgroundService
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(1);
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("held job forwarder");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!holding.Enabled)
        {
            return;
        }

        var forwarded = 0L;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var round = holding.HomeLost || !holding.Ready ? 0 : await holding.Outbox.ForwardAsync(ForwardAsync, 64, stoppingToken);
                if (round > 0)
                {
                    forwarded += round;
                    _watch.Worked();
                    LogForwarded(logger, round, forwarded);
                    continue;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (holding.IsOutage(e))
            {
                _watch.Failed(e);
            }

            await Task.Delay(Idle, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task ForwardAsync(JobCommand held, string? digest, CancellationToken ct)
    {
        if (digest is not null && await claims.ClaimAsync(held.JobId, digest, ct) != digest)
        {
            // The home claimed the key for another body after its last mirrored claim: the lost
            // window (docs/ARCHITECTURE.md). The job is forwarded; the log keeps whichever came first.
            LogKeyConflict(logger, held.JobId);
        }

        if (!await intake.ForwardHeldAsync(held, ct))
        {
            await quota.CountAsync(held.Tenant, held.SubmittedAt, ct);
        }
    }

    [LoggerMessage(LogLevel.Information, "Forwarded {Count} held jobs to the log ({Total} since start)")]
    private static partial void LogForwarded(ILogger logger, int count, long total);

    [LoggerMessage(LogLevel.Warning, "Held job {JobId}: its Idempotency-Key was claimed in the lost home with another body (not mirrored before the loss)")]
    private static partial void LogKeyConflict(ILogger logger, Guid jobId);
}
