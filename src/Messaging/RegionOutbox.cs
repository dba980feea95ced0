using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// Where an API holds the jobs it accepts while the region that keeps the log (the home) is lost
/// (docs/ARCHITECTURE.md, "Jobs held while the home is lost"): a work-queue stream on its own
/// region's servers, <c>CQRSI_HELD_&lt;REGION&gt;</c>, one message per job (the job command as the
/// queue would carry it, under <c>cqrsi.held.&lt;region&gt;.&lt;job&gt;</c>, with the job's queue
/// message id, so a retried hold is a duplicate), taken off one by one as they are forwarded to
/// the log (<see cref="ForwardAsync"/>). A submit with an <c>Idempotency-Key</c> carries its request
/// digest: a second body under the key (held here, or claimed in the home before it was lost and
/// so in this region's mirror of the claims) is a conflict.
/// </summary>
public sealed class RegionOutbox(INatsJSContext js, string region)
{
    public const string DigestHeader = "Cqrsi-Request-Digest";
    private const string Forwarder = "forwarder";

    public string Region => region;

    public string Stream { get; } = $"CQRSI_HELD_{region.ToUpperInvariant()}";

    public string Subject(Guid jobId) => $"cqrsi.held.{region}.{jobId:N}";

    /// <summary>Creates the stream on the region's servers (or brings it to <paramref name="maxJobs"/>); safe on every start.</summary>
    public async Task EnsureAsync(int replicas, long maxJobs, CancellationToken ct)
    {
        await js.CreateOrUpdateStreamAsync(
            new StreamConfig(Stream, [$"cqrsi.held.{region}.>"])
            {
                Description = $"Jobs accepted in region {region} while the log's region did not answer, until they are forwarded to it.",
                Retention = StreamConfigRetention.Workqueue,
                Storage = StreamConfigStorage.File,
                NumReplicas = replicas,
                Placement = new Placement { Cluster = region },
                MaxMsgs = maxJobs,
                Discard = StreamConfigDiscard.New,
                DuplicateWindow = TimeSpan.FromMinutes(10),
            },
            ct);
        await js.CreateOrUpdateConsumerAsync(Stream, new ConsumerConfig(Forwarder) { AckPolicy = ConsumerConfigAckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(60) }, ct);
    }

    /// <summary>Holds <paramref name="job"/>; with a <paramref name="digest"/>, a conflict when its key is held or was claimed with another body.</summary>
    public async Task<HeldJob> HoldAsync(JobCommand job, string? digest, CancellationToken ct)
    {
        if (digest is not null && await MirroredClaimAsync(job.JobId, ct) is { } claimed)
        {
            return new HeldJob(Duplicate: true, Conflict: claimed != digest, 0);
        }

        var payload = JsonSerializer.SerializeToUtf8Bytes(job, WireJson.Default.JobCommand);
        var headers = new NatsHeaders();
        if (digest is not null)
        {
            headers[DigestHeader] = digest;
        }

        var ack = await js.PublishAsync(Subject(job.JobId), payload, headers: headers, opts: new NatsJSPubOpts { MsgId = JobLifecycle.QueueMessageId(job) }, cancellationToken: ct);
        ack.EnsureStored();
        if (!ack.Duplicate || digest is null)
        {
            return new HeldJob(ack.Duplicate, Conflict: false, payload.Length);
        }

        // Held before under this key: the same body is a retry, another is a conflict (a held job
        // already forwarded is no longer here: its key's claim in the home answers from then on).
        var held = await LastAsync(Stream, Subject(job.JobId), ct);
        return new HeldJob(Duplicate: true, Conflict: held is not null && HeaderOf(held, DigestHeader) != digest, payload.Length);
    }

    /// <summary>The job if it is held here now (not yet forwarded), with its message's size.</summary>
    public async Task<(JobCommand Job, int Bytes)?> FindAsync(Guid jobId, CancellationToken ct) =>
        await LastAsync(Stream, Subject(jobId), ct) is { Data: { } data } && NatsQueuedJobs.Decode(data) is { } bytes
            ? (JsonSerializer.Deserialize(bytes, WireJson.Default.JobCommand)!, bytes.Length)
            : null;

    /// <summary>How many jobs are held here now.</summary>
    public async Task<long> CountAsync(CancellationToken ct) => (await js.GetStreamAsync(Stream, cancellationToken: ct)).Info.State.Messages;

    /// <summary>
    /// Forwards up to <paramref name="max"/> held jobs through <paramref name="forward"/> (the job
    /// and its request digest), each taken off once forwarded; returns how many. A failure leaves
    /// that job and the rest of the round held (delivered again a second later) and is thrown.
    /// </summary>
    public async Task<int> ForwardAsync(Func<JobCommand, string?, CancellationToken, Task> forward, int max, CancellationToken ct)
    {
        var consumer = await js.GetConsumerAsync(Stream, Forwarder, ct);
        var forwarded = 0;
        Exception? failed = null;
        await foreach (var message in consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = max }, cancellationToken: ct))
        {
            if (failed is null)
            {
                var job = JsonSerializer.Deserialize(message.Data, WireJson.Default.JobCommand)!;
                var digest = message.Headers?[DigestHeader] is { Count: > 0 } d ? d.ToString() : null;
                try
                {
                    await forward(job, digest, ct);
                    await message.AckAsync(new AckOpts { DoubleAck = true }, ct);
                    forwarded++;
                    continue;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    failed = e;
                }
            }

            // This one failed, or one before it in the round did: all are held again, soon.
            await message.NakAsync(delay: TimeSpan.FromSeconds(1), cancellationToken: CancellationToken.None);
        }

        if (failed is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
        }

        return forwarded;
    }

    /// <summary>The digest the home's idempotency bucket held for the job's key when last mirrored here; null when none (or no mirror).</summary>
    private async Task<string?> MirroredClaimAsync(Guid jobId, CancellationToken ct)
    {
        var entry = await LastAsync(RegionFailover.MirrorOf($"KV_{IdempotencyClaims.Bucket}", region), $"$KV.{IdempotencyClaims.Bucket}.{jobId:N}", ct);
        return entry?.Data is { } data && NatsQueuedJobs.Decode(data) is { Length: > 0 } value ? System.Text.Encoding.UTF8.GetString(value) : null;
    }

    /// <summary>A header of a message read from a stream (its header block, base64 in the answer); null when absent.</summary>
    private static string? HeaderOf(StoredMessage message, string name)
    {
        if (message.Hdrs is not { Length: > 0 } hdrs)
        {
            return null;
        }

        var prefix = name + ":";
        return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(hdrs)).Split("\r\n")
            .FirstOrDefault(line => line.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))?[prefix.Length..].Trim();
    }

    private async Task<StoredMessage?> LastAsync(string stream, string subject, CancellationToken ct)
    {
        try
        {
            var found = await (await js.GetStreamAsync(stream, cancellationToken: ct)).GetAsync(new StreamMsgGetRequest { LastBySubj = subject }, ct);
            return found.Message;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            // No such message, or no such stream (no mirror kept here).
            return null;
        }
    }
}
