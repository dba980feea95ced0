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

    /// <summary>
    /// A processor's claim: <see cref="ClaimOutcome.Won"/> when it is the first, <see cref="ClaimOutcome.Running"/>
    /// when a run claimed it before (a redelivered job finds its own claim, and runs again),
    /// <see cref="ClaimOutcome.Cancelled"/> when a cancel did.
    /// </summary>
    public Task<ClaimOutcome> ClaimForRunAsync(Guid jobId, int series, CancellationToken ct) =>
        ClaimAsync(jobId, series, RunningValue, ct);

    /// <summary>A cancel's claim: <see cref="ClaimOutcome.Won"/> means the job will never run.</summary>
    public async Task<ClaimOutcome> ClaimForCancelAsync(Guid jobId, int series, CancellationToken ct)
    {
        var outcome = await ClaimAsync(jobId, series, CancelledValue, ct);
        return outcome == ClaimOutcome.Cancelled ? ClaimOutcome.Cancelled : outcome;
    }

    /// <summary>
    /// The claim of a job a processor holds becomes 'cancelled': a delivery of it that comes again
    /// (its processor died, or it waits for another attempt) is then ended cancelled by the gate.
    /// </summary>
    public async Task MarkCancelledAsync(Guid jobId, int series, CancellationToken ct)
    {
        var store = _store ??= await new NatsKVContext(js).GetStoreAsync(Bucket, ct);
        await store.PutAsync(Key(jobId, series), CancelledValue, cancellationToken: ct);
    }

    /// <summary>
    /// The key of a job's claim: the job id for its first attempt series (as before retries existed),
    /// <c>&lt;job&gt;-s&lt;series&gt;</c> for a later one, so a retried job is claimed afresh (a first series
    /// that was cancelled does not cancel the retry) and a late redelivery of an earlier series finds
    /// that series' claim, not the current one.
    /// </summary>
    public static string Key(Guid jobId, int series) =>
        series > 1 ? $"{jobId:N}-s{series.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : jobId.ToString("N");

    private async Task<ClaimOutcome> ClaimAsync(Guid jobId, int series, string value, CancellationToken ct)
    {
        var store = _store ??= await new NatsKVContext(js).GetStoreAsync(Bucket, ct);
        var (created, first) = await KvBuckets.CreateOrReadAsync(store, Key(jobId, series), value, ct);
        return created ? ClaimOutcome.Won : first == CancelledValue ? ClaimOutcome.Cancelled : ClaimOutcome.Running;
    }
}
