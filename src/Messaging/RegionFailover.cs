using CqrsInference.Commands.Jobs;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// Region failover (issue 22; docs/ARCHITECTURE.md, "Region failover"). The streams and buckets live
/// in one region, the home (the cluster of the servers the API that created them is connected
/// to); every standby region keeps a JetStream mirror of each, placed on its own servers
/// (<see cref="EnsureStandbyAsync"/>). When the home is lost, a standby takes over
/// (<see cref="TakeOverAsync"/>): the lost streams are removed from the super-cluster's
/// metadata, created again on the survivor's servers, and filled from the mirrors; the work
/// queue then holds exactly the mirrored jobs that have no terminal event in the mirrored log.
/// </summary>
/// <remarks>
/// nats-server 2.9.10 facts this rests on (tried, FailoverTests): a mirror cannot be written to
/// nor turned into a stream (its config cannot change), and a stream that sources a mirror of a
/// stream with its own name is refused ("detected cycle", 10052), so the copy is made by a client;
/// the metadata layer spans the whole super-cluster, so a takeover needs a majority of its
/// servers alive: with two one-server regions every API call in the survivor answers "JetStream
/// system temporarily unavailable" (10008). A third region (a witness) keeps that majority.
/// </remarks>
public sealed class RegionFailover(INatsJSContext js)
{
    /// <summary>The streams a region needs to take over: the log, the claims, the inputs, the quota and idempotency keys.</summary>
    public static IReadOnlyList<string> MirroredStreams { get; } =
    [
        NatsTopology.EventsStream,
        $"KV_{JobClaims.Bucket}",
        ClaimCheck.BucketStream,
        $"KV_{QuotaCounters.Bucket}",
        $"KV_{IdempotencyClaims.Bucket}",
    ];

    /// <summary>The name of the mirror of <paramref name="stream"/> kept in <paramref name="region"/>.</summary>
    public static string MirrorOf(string stream, string region) => $"{stream}_STANDBY_{region.ToUpperInvariant()}";

    /// <summary>Creates (or keeps) the mirrors of every mirrored stream in each standby region, on that region's servers.</summary>
    public async Task EnsureStandbyAsync(IEnumerable<string> standbyRegions, int replicas, CancellationToken ct)
    {
        foreach (var region in standbyRegions)
        {
            foreach (var stream in MirroredStreams)
            {
                var config = new StreamConfig
                {
                    Name = MirrorOf(stream, region),
                    Mirror = new StreamSource { Name = stream },
                    Placement = new Placement { Cluster = region },
                    Storage = StreamConfigStorage.File,
                    NumReplicas = replicas,
                    Description = $"Standby copy of {stream} in region {region}: what {region} takes over from (RegionFailover).",
                };
                try
                {
                    await js.CreateStreamAsync(config, ct);
                }
                catch (NatsJSApiException e) when (e.Error.ErrCode == 10058)
                {
                    // Already there (stream name in use): a mirror's config cannot change anyway.
                }
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="region"/>'s mirror of the log is what a takeover into that region
    /// copies from: it exists and was made before the log (a takeover makes the new log after the
    /// mirror it copies). False when there is none, or when it was made after the log: then it is
    /// no takeover's source but a late standby request (see <see cref="DropLateMirrorsAsync"/>).
    /// </summary>
    public async Task<bool> IsTakeoverSourceAsync(string region, CancellationToken ct) =>
        await InfoOrNullAsync(NatsTopology.EventsStream, ct) is { } log && await IsTakeoverSourceAsync(region, log.Created, ct);

    /// <summary>As above, for a log made at <paramref name="logCreated"/> (read by the caller already).</summary>
    public async Task<bool> IsTakeoverSourceAsync(string region, DateTimeOffset logCreated, CancellationToken ct) =>
        await InfoOrNullAsync(MirrorOf(NatsTopology.EventsStream, region), ct) is { } mirror && mirror.Created < logCreated;

    /// <summary>Whether <paramref name="region"/> keeps a mirror of the log (what a takeover into it copies).</summary>
    public async Task<bool> HasLogMirrorAsync(string region, CancellationToken ct) =>
        await InfoOrNullAsync(MirrorOf(NatsTopology.EventsStream, region), ct) is not null;

    /// <summary>
    /// Deletes the mirrors in <paramref name="home"/>, the region the log lives in, that were made
    /// after the log: standby requests sent to the old home before a takeover and delivered after
    /// it (a client's buffer flushed when its lost region came back). A region keeps no standby of
    /// its own log, and such a mirror would read as a takeover still copying. Returns how many.
    /// A takeover's own source, made before the new log, is left to the takeover.
    /// </summary>
    public async Task<int> DropLateMirrorsAsync(string home, CancellationToken ct) =>
        await InfoOrNullAsync(NatsTopology.EventsStream, ct) is { } log ? await DropLateMirrorsAsync(home, log.Created, ct) : 0;

    /// <summary>As above, for a log made at <paramref name="logCreated"/> (read by the caller already).</summary>
    public async Task<int> DropLateMirrorsAsync(string home, DateTimeOffset logCreated, CancellationToken ct)
    {
        var dropped = 0;
        foreach (var stream in MirroredStreams)
        {
            if (await InfoOrNullAsync(MirrorOf(stream, home), ct) is { } mirror && mirror.Created > logCreated)
            {
                await js.DeleteStreamAsync(MirrorOf(stream, home), ct);
                dropped++;
            }
        }

        return dropped;
    }

    private async Task<StreamInfo?> InfoOrNullAsync(string stream, CancellationToken ct)
    {
        try
        {
            return (await js.GetStreamAsync(stream, cancellationToken: ct)).Info;
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == 10059)
        {
            return null;
        }
    }

    /// <summary>The bucket whose keys say which takeover of a lost region runs (or ran within <see cref="LockFor"/>).</summary>
    public const string LockBucket = "cqrsi_takeover";

    public static readonly TimeSpan LockFor = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Claims the takeover of <paramref name="lost"/> for <paramref name="runner"/> in the whole
    /// super-cluster (a key created in <see cref="LockBucket"/>; the server lets one create win);
    /// null when claimed, else the runner that holds it. The key expires after <see cref="LockFor"/>.
    /// </summary>
    public async Task<string?> LockAsync(string lost, string runner, CancellationToken ct)
    {
        await KvBuckets.EnsureAsync(js, LockBucket, "Region takeovers running or just run: one at a time in the super-cluster.", LockFor, 1, ct);
        var store = await new NATS.Client.KeyValueStore.NatsKVContext(js).GetStoreAsync(LockBucket, ct);
        var (created, holder) = await KvBuckets.CreateOrReadAsync(store, lost, runner, ct);
        return created ? null : holder;
    }

    /// <summary>Gives the claim back (a takeover that failed may be run again at once).</summary>
    public async Task UnlockAsync(string lost, CancellationToken ct) =>
        await (await new NATS.Client.KeyValueStore.NatsKVContext(js).GetStoreAsync(LockBucket, ct)).DeleteAsync(lost, cancellationToken: ct);

    /// <summary>How far a region's mirror of <paramref name="stream"/> is behind: messages not yet copied, and since when it last heard from the origin.</summary>
    public async Task<(long Lag, TimeSpan? Active, ulong LastSeq)> LagAsync(string stream, string region, CancellationToken ct)
    {
        var info = (await js.GetStreamAsync(MirrorOf(stream, region), cancellationToken: ct)).Info;
        return (info.Mirror?.Lag ?? 0, info.Mirror?.Active, info.State.LastSeq);
    }

    /// <summary>
    /// Makes <paramref name="survivor"/> the home: run with a connection to the survivor's servers,
    /// after the home's servers are lost. <paramref name="recreate"/> creates the empty streams and
    /// buckets there (<see cref="NatsTopology.EnsureAsync"/> on that connection).
    /// </summary>
    public Task<TakeoverReport> TakeOverAsync(string survivor, Func<CancellationToken, Task> recreate, CancellationToken ct) =>
        TakeOverAsync(survivor, recreate, null, ct);

    /// <summary>
    /// As above, and moves the recorders' <paramref name="checkpoints"/> into the copy's numbering
    /// (fenced before the copy, moved after it), so recording goes on exactly once.
    /// </summary>
    public async Task<TakeoverReport> TakeOverAsync(string survivor, Func<CancellationToken, Task> recreate, IRecorderCheckpoints? checkpoints, CancellationToken ct)
    {
        // Each unanswered delete waits out the request timeout: all at once, not one after another.
        await Task.WhenAll(MirroredStreams.Append(NatsTopology.JobsStream).Append(WebhookQueue.Stream).Select(s => ForgetLostStreamAsync(s, ct)));

        // The lost log is gone from the metadata: nothing more can be recorded from it, so the fenced checkpoints are final.
        var recorded = checkpoints is null ? new Dictionary<string, ulong>() : await checkpoints.FenceAsync(ct);
        await recreate(ct);
        var copied = new Dictionary<string, long>();
        var backlog = new FailoverBacklog();
        var map = new CheckpointMap(recorded.Values);
        foreach (var stream in MirroredStreams)
        {
            var log = stream == NatsTopology.EventsStream;
            copied[stream] = await CopyAsync(MirrorOf(stream, survivor), log ? backlog : null, log ? map : null, ct);
        }

        var moved = recorded.ToDictionary(c => c.Key, c => new CheckpointMove(c.Value, map[c.Value]));
        if (checkpoints is not null)
        {
            await checkpoints.MoveAsync(moved.ToDictionary(m => m.Key, m => m.Value.To), ct);
        }

        var ended = await DropEndedJobsAsync(backlog, ct);
        foreach (var stream in MirroredStreams)
        {
            await js.DeleteStreamAsync(MirrorOf(stream, survivor), ct);
        }

        return new TakeoverReport(survivor, copied, backlog.Jobs, ended, moved);
    }

    /// <summary>
    /// Removes a stream of the lost home from the metadata. Its servers are gone, so no one
    /// answers the delete; the metadata leader applies it all the same, which is checked by asking
    /// for the stream until it is unknown.
    /// </summary>
    private async Task ForgetLostStreamAsync(string stream, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await js.DeleteStreamAsync(stream, ct);
                return;
            }
            catch (NatsJSApiException e) when (e.Error.ErrCode == 10059)
            {
                return;
            }
            catch (NatsJSApiNoResponseException) when (attempt < 30)
            {
                // The delete was applied or the metadata is electing a leader: ask again.
            }
            catch (NatsJSApiException e) when (e.Error.ErrCode == 10008 && attempt < 30)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
        }
    }

    /// <summary>Republishes every message of a mirror, subject and headers as stored, into the stream that now owns those subjects.</summary>
    private async Task<long> CopyAsync(string mirror, FailoverBacklog? backlog, CheckpointMap? map, CancellationToken ct)
    {
        var info = (await js.GetStreamAsync(mirror, cancellationToken: ct)).Info.State;
        if (info.Messages == 0)
        {
            return 0;
        }

        var consumer = await js.CreateOrderedConsumerAsync(mirror, new NatsJSOrderedConsumerOpts { DeliverPolicy = ConsumerConfigDeliverPolicy.All }, ct);
        long count = 0;
        await foreach (var msg in consumer.ConsumeAsync<NatsMemoryOwner<byte>>(cancellationToken: ct))
        {
            using var payload = msg.Data;
            var headers = new NatsHeaders();
            foreach (var (key, value) in msg.Headers ?? [])
            {
                if (!key.StartsWith("Nats-Expected", StringComparison.Ordinal))
                {
                    headers[key] = value;
                }
            }

            var ack = await js.PublishAsync(msg.Subject, payload.Memory, headers: headers, cancellationToken: ct);
            ack.EnsureSuccess();
            backlog?.Saw(msg.Subject, headers.TryGetValue("Nats-Msg-Id", out var id) ? id.ToString() : null);
            map?.Copied(msg.Metadata?.Sequence.Stream ?? 0, ack.Seq);
            count++;
            if (msg.Metadata?.Sequence.Stream >= info.LastSeq)
            {
                break;
            }
        }

        return count;
    }

    /// <summary>
    /// The queue sources every copied queue message; the backlog rule (<see cref="FailoverBacklog"/>)
    /// purges those of jobs whose latest series already ended (a terminal event reached the mirror),
    /// so the survivor runs exactly the mirrored backlog. A job that ended in the lost home after its
    /// last mirrored event runs again; the recorder keeps its first terminal event only.
    /// </summary>
    private async Task<int> DropEndedJobsAsync(FailoverBacklog backlog, CancellationToken ct)
    {
        var jobs = await js.GetStreamAsync(NatsTopology.JobsStream, cancellationToken: ct);
        for (var i = 0; i < 600 && jobs.Info.State.Messages < backlog.QueueMessages; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), ct);
            await jobs.RefreshAsync(ct);
        }

        var ended = 0;
        foreach (var (subject, keep, jobEnded) in backlog.Purges())
        {
            await jobs.PurgeAsync(new StreamPurgeRequest { Filter = subject, Keep = keep }, ct);
            ended += jobEnded ? 1 : 0;
        }

        return ended;
    }

    /// <summary>
    /// What a takeover did: the new home, messages copied per stream, jobs queued in the copied log
    /// and those that had ended (dropped from the queue), and each recorder checkpoint's move from
    /// the lost log's sequence to the copy's.
    /// </summary>
    public sealed record TakeoverReport(
        string Home, IReadOnlyDictionary<string, long> Copied, int Submissions, int EndedJobs, IReadOnlyDictionary<string, CheckpointMove> Checkpoints);

    /// <summary>A recorder checkpoint moved by a takeover.</summary>
    public sealed record CheckpointMove(ulong From, ulong To);
}
