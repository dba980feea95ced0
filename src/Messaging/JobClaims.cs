using CqrsInference.Commands.Jobs;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;

namespace CqrsInference.Messaging;

/// <summary>
/// Decides, once per job, whether it runs or is cancelled: processors and cancels both try to
/// create the job's key in a JetStream key-value bucket, and the server lets exactly one create
/// win. A cancelled job therefore never runs, and a running job cannot be cancelled.
/// </summary>
public sealed class JobClaims(INatsJSContext js) : IJobClaims
{
    public const string Bucket = "cqrsi_claims";
    private const string RunningValue = "running";
    private const string CancelledValue = "cancelled";
    private INatsKVStore? _store;

    public static Task EnsureBucketAsync(INatsJSContext js, CancellationToken ct, int replicas = 1) =>
        KvBuckets.EnsureAsync(js, Bucket, "Per-job claim: 'running' (a processor took it) or 'cancelled'.", TimeSpan.FromDays(7), replicas, ct);

    /// <summary>A processor's claim. A redelivered job finds its own 'running' claim and runs again.</summary>
    public async Task<ClaimOutcome> ClaimForRunAsync(Guid jobId, CancellationToken ct)
    {
        var outcome = await ClaimAsync(jobId, RunningValue, ct);
        return outcome == ClaimOutcome.Running ? ClaimOutcome.Won : outcome;
    }

    /// <summary>A cancel's claim: <see cref="ClaimOutcome.Won"/> means the job will never run.</summary>
    public async Task<ClaimOutcome> ClaimForCancelAsync(Guid jobId, CancellationToken ct)
    {
        var outcome = await ClaimAsync(jobId, CancelledValue, ct);
        return outcome == ClaimOutcome.Cancelled ? ClaimOutcome.Cancelled : outcome;
    }

    /// <summary>
    /// The claim of a job a processor holds becomes 'cancelled': a delivery of it that comes again
    /// (its processor died, or it waits for another attempt) is then ended cancelled by the gate.
    /// </summary>
    public async Task MarkCancelledAsync(Guid jobId, CancellationToken ct)
    {
        var store = _store ??= await new NatsKVContext(js).GetStoreAsync(Bucket, ct);
        await store.PutAsync(jobId.ToString("N"), CancelledValue, cancellationToken: ct);
    }

    private async Task<ClaimOutcome> ClaimAsync(Guid jobId, string value, CancellationToken ct)
    {
        var store = _store ??= await new NatsKVContext(js).GetStoreAsync(Bucket, ct);
        var (created, first) = await KvBuckets.CreateOrReadAsync(store, jobId.ToString("N"), value, ct);
        return created ? ClaimOutcome.Won : first == CancelledValue ? ClaimOutcome.Cancelled : ClaimOutcome.Running;
    }
}
