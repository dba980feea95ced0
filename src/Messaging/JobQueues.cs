using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Models;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// One work queue: the jobs of one tenant for one model in one region at one priority, served through
/// its own durable consumer on the work-queue stream, which every processor of the model shares. Its
/// jobs are published to <c>jobs.&lt;region&gt;.&lt;model&gt;.&lt;priority&gt;.&lt;tenant&gt;.&lt;job&gt;</c>
/// (<see cref="LogSubjects"/>). Separate queues are what let a processor choose what to run next:
/// its home region first, interactive before batch (weighted, so batch is never starved), tenants in
/// turn, and other regions' backlogs when it is idle.
/// </summary>
public sealed record JobQueue(string Region, string Model, string Priority, string Tenant)
{
    /// <summary>The queue's jobs as stored, in every partition of the log.</summary>
    public string Filter => LogSubjects.QueueFilter(this);

    /// <summary>
    /// The durable's name: derived from the filter (tokens may contain '_' and '-', so joining them
    /// could collide) and the same in every process.
    /// </summary>
    public string ConsumerName => "q_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Filter)))[..24];

    /// <summary>
    /// The queue a subject names: a stored job (<c>log.&lt;p&gt;.jobs.&lt;region&gt;.&lt;model&gt;.&lt;priority&gt;.&lt;tenant&gt;.&lt;job&gt;</c>)
    /// or the queue part of one (<c>jobs.&lt;region&gt;.&lt;model&gt;.&lt;priority&gt;.&lt;tenant&gt;</c>).
    /// </summary>
    public static bool TryParse(string? subject, out JobQueue queue)
    {
        queue = null!;
        var parts = subject?.Split('.');
        var at = parts switch
        {
            { Length: 8 } when parts[0] == LogSubjects.Root && parts[2] == "jobs" => 3,
            { Length: 5 } when parts[0] == "jobs" => 1,
            _ => -1,
        };
        if (at < 0 || parts is null || !parts.Skip(at).Take(4).All(Naming.IsToken) || !Priorities.All.Contains(parts[at + 2]))
        {
            return false;
        }

        queue = new JobQueue(parts[at], parts[at + 1], parts[at + 2], parts[at + 3]);
        return true;
    }

    public static JobQueue Of(JobCommand job) => new(job.Region, job.Model, job.Priority, job.Tenant);
}

/// <summary>
/// A queue as its consumer reports it: jobs not yet delivered, and delivered but not yet acknowledged
/// (running, or handed back to wait for a retry); when known, when its oldest job was queued.
/// </summary>
public sealed record QueueState(JobQueue Queue, long Waiting, long InFlight, DateTimeOffset? OldestAt = null);

/// <summary>Creates the queues' consumers and reads their state.</summary>
public sealed class JobQueues(INatsJSContext js, TopologyOptions options)
{
    /// <summary>Core NATS subjects on which the API announces each job it queued (processors wake on them).</summary>
    public const string QueuedPrefix = "cqrsi.queued";

    public static string QueuedSubject(JobQueue queue) => $"{QueuedPrefix}.{queue.Region}.{queue.Model}.{queue.Priority}.{queue.Tenant}";

    private readonly ConcurrentDictionary<string, Task<INatsJSConsumer>> _consumers = new();
    private INatsJSStream? _jobsStream;

    public static string QueuedSubject(string region, string model) => $"{QueuedPrefix}.{region}.{model}.>";

    /// <summary>The queue a consumer's filter serves (<c>log.*.jobs.&lt;region&gt;.&lt;model&gt;.&lt;priority&gt;.&lt;tenant&gt;.*</c>), or null.</summary>
    private static JobQueue? QueueOf(string? filter) =>
        filter is not null && filter.StartsWith("log.*.jobs.", StringComparison.Ordinal) && filter.EndsWith(".*", StringComparison.Ordinal)
        && JobQueue.TryParse("jobs." + filter["log.*.jobs.".Length..^2], out var queue) ? queue : null;

    /// <summary>The queue a wake-up subject names.</summary>
    public static bool TryParseQueued(string subject, out JobQueue queue)
    {
        queue = null!;
        return subject.StartsWith(QueuedPrefix + ".", StringComparison.Ordinal) && JobQueue.TryParse("jobs" + subject[QueuedPrefix.Length..], out queue);
    }

    /// <summary>
    /// The queue's consumer, created on first use in this process (creating it again is harmless);
    /// <paramref name="recreate"/> creates it even if this process made it before (it was deleted).
    /// </summary>
    public async Task<INatsJSConsumer> EnsureAsync(JobQueue queue, CancellationToken ct, bool recreate = false)
    {
        if (recreate)
        {
            _consumers.TryRemove(queue.ConsumerName, out _);
        }

        // Two callers at once may both create it: the same configuration twice is harmless.
        var creating = _consumers.GetOrAdd(queue.ConsumerName, _ => CreateAsync(queue));
        try
        {
            return await creating.WaitAsync(ct);
        }
        catch (Exception) when (creating.IsFaulted)
        {
            _consumers.TryRemove(new KeyValuePair<string, Task<INatsJSConsumer>>(queue.ConsumerName, creating));
            throw;
        }
    }

    private async Task<INatsJSConsumer> CreateAsync(JobQueue queue) =>
        await js.CreateOrUpdateConsumerAsync(
            NatsTopology.JobsStream,
            new ConsumerConfig(queue.ConsumerName)
            {
                FilterSubject = queue.Filter,
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                AckWait = options.JobAckWait,
                MaxDeliver = options.MaxDeliver,
                MaxAckPending = 100_000,
                MaxWaiting = 512,
                Description = $"{queue.Priority} jobs of tenant {queue.Tenant} for model {queue.Model} in region {queue.Region}",
            });

    /// <summary>Deletes an empty queue's consumer (<see cref="QueueHousekeeping"/>); a job that arrives after is found and its consumer made again.</summary>
    public async Task RetireAsync(JobQueue queue, CancellationToken ct)
    {
        _consumers.TryRemove(queue.ConsumerName, out _);
        try
        {
            await js.DeleteConsumerAsync(NatsTopology.JobsStream, queue.ConsumerName, ct);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            // Another instance retired it first.
        }
    }

    /// <summary>
    /// Every job queue (of one model, or all), with its consumer's counts: one paged request. A
    /// consumer deleted while the server lists it (<see cref="RetireAsync"/> on another instance)
    /// comes back without its configuration, and NATS.Net's listing then throws a
    /// <see cref="NullReferenceException"/>: the listing is asked again.
    /// </summary>
    public async Task<IReadOnlyList<QueueState>> ListAsync(string? model, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await ListOnceAsync(model, ct);
            }
            catch (NullReferenceException) when (attempt < 3)
            {
                // A consumer vanished mid-list: list again.
            }
        }
    }

    private async Task<IReadOnlyList<QueueState>> ListOnceAsync(string? model, CancellationToken ct)
    {
        // Keyed by the consumer's name: the server lists in pages by offset, so a consumer created
        // or deleted while it lists (a takeover recreates them) can be listed twice; the last
        // listing stands.
        var states = new Dictionary<string, QueueState>();
        await foreach (var consumer in js.ListConsumersAsync(NatsTopology.JobsStream, ct))
        {
            if (QueueOf(consumer.Info.Config.FilterSubject) is { } queue && (model is null || queue.Model == model))
            {
                _consumers.TryAdd(queue.ConsumerName, Task.FromResult(consumer));
                states[consumer.Info.Name] = new QueueState(queue, (long)consumer.Info.NumPending, consumer.Info.NumAckPending);
            }
        }

        return [.. states.Values];
    }

    /// <summary>One queue's counts (a consumer info: no listing of every queue), or null when it has no consumer.</summary>
    public async Task<QueueState?> StateAsync(JobQueue queue, CancellationToken ct)
    {
        try
        {
            var info = (await js.GetConsumerAsync(NatsTopology.JobsStream, queue.ConsumerName, ct)).Info;
            return new QueueState(queue, (long)info.NumPending, info.NumAckPending);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return null;
        }
    }

    /// <summary>
    /// The work queue's fill, every queue together, against the limits the stream has (whichever
    /// process set them): jobs and bytes stored, and the stream's MaxMsgs and MaxBytes (-1: none).
    /// </summary>
    public async Task<(long Jobs, long Bytes, long MaxJobs, long MaxBytes)> StoredAsync(CancellationToken ct)
    {
        var info = (await js.GetStreamAsync(NatsTopology.JobsStream, cancellationToken: ct)).Info;
        return ((long)info.State.Messages, (long)info.State.Bytes, info.Config.MaxMsgs, info.Config.MaxBytes);
    }

    /// <summary>When the oldest job still in the queue (waiting or in flight) was stored, or null when it is empty.</summary>
    public async Task<DateTimeOffset?> OldestAsync(JobQueue queue, CancellationToken ct) =>
        (await GetAsync(new StreamMsgGetRequest { NextBySubj = queue.Filter, Seq = 1 }, ct))?.Time;

    /// <summary>The stream sequence of the newest job in the queue, or null when it is empty.</summary>
    public async Task<ulong?> LastSequenceAsync(JobQueue queue, CancellationToken ct) =>
        (await GetAsync(new StreamMsgGetRequest { LastBySubj = queue.Filter }, ct))?.Seq;

    /// <summary>The stream sequence <paramref name="jobId"/> is stored at in its queue (its latest series), or null when it is no longer there.</summary>
    public async Task<ulong?> SequenceOfAsync(JobQueue queue, Guid jobId, CancellationToken ct) =>
        (await GetAsync(new StreamMsgGetRequest { LastBySubj = LogSubjects.StoredJob(queue, jobId, options.Partitions) }, ct))?.Seq;

    /// <summary>
    /// Takes a cancelled job's message out of its queue, once its cancel is stored on the log: it can
    /// never run, and left there it was counted as waiting (depths, positions, the queue's limit) until
    /// a processor of its model pulled it, which for a model none serves is never. Best effort: a job
    /// left in the queue is still ended by the processor that pulls it (the claim says cancelled).
    /// </summary>
    public async Task WithdrawAsync(JobQueue queue, Guid jobId, CancellationToken ct)
    {
        try
        {
            if (await SequenceOfAsync(queue, jobId, ct) is { } sequence)
            {
                await _jobsStream!.DeleteMessageAsync(new StreamMsgDeleteRequest { Seq = sequence, NoErase = true }, ct);
            }
        }
        catch (Exception e) when (e is NatsJSApiException or NatsException or TimeoutException)
        {
        }
    }

    private async Task<StoredMessage?> GetAsync(StreamMsgGetRequest request, CancellationToken ct)
    {
        try
        {
            // The stream handle is looked up once: a get needs only its name.
            _jobsStream ??= await js.GetStreamAsync(NatsTopology.JobsStream, cancellationToken: ct);
            return (await _jobsStream.GetAsync(request, ct)).Message;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return null;
        }
    }
}
