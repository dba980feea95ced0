using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Messaging;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Processors.Worker;

/// <summary>
/// Serves one model: pulls jobs only for free capacity (slots × max batch), choosing among the
/// model's queues with a <see cref="QueuePlanner"/> (home region, priority, tenant, overflow), gathers them into
/// batches (up to <c>maxBatch</c>, waiting at most <c>maxBatchDelay</c>), runs each batch in one
/// ONNX call, publishes the lifecycle events and acks only after JetStream stored them.
/// </summary>
public sealed partial class ModelWorker(
    ModelDefinition model,
    IModelRunner runner,
    JobQueues queues,
    INatsJSContext js,
    ClaimCheck claimCheck,
    ProcessorOptions options,
    TopologyOptions topology,
    TimeProvider clock,
    ILogger logger)
{
    private readonly Channel<INatsJSMsg<byte[]>> _received = Channel.CreateUnbounded<INatsJSMsg<byte[]>>();
    private readonly SemaphoreSlim _capacityChanged = new(0);
    private readonly string _worker = options.ResolveWorkerId();
    private readonly JobClaims _claims = new(js);
    private int _reserved;
    private int _inFlight;

    private long _firstStart;
    private long _lastEnd;

    private int Slots => options.Slots ?? model.Slots;

    private int MaxBatch => options.MaxBatch is { } max && model.Batching is not null ? Math.Max(1, max) : model.MaxBatch;

    /// <summary>Jobs this worker may hold at once: every slot running a full batch.</summary>
    public int Capacity => Slots * MaxBatch;

    private long _busyTicks;

    /// <summary>Time spent inside ONNX runs, summed over slots, for the busy fraction.</summary>
    public TimeSpan BusyTime => TimeSpan.FromTicks(Interlocked.Read(ref _busyTicks));

    private long _completed;

    public long Completed => Interlocked.Read(ref _completed);

    public int SlotCount => Slots;

    public string Device => runner.Device;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        using var drain = new CancellationTokenSource();
        var fetching = FetchLoopAsync(stoppingToken);
        var executors = Enumerable.Range(0, Slots).Select(_ => ExecuteLoopAsync(drain.Token)).ToList();

        await fetching;

        // Stopping: no new pulls. Outstanding pull requests end by their expiry; what they still
        // deliver, and what is queued here, runs until the drain deadline, then is handed back.
        _received.Writer.TryComplete();
        drain.CancelAfter(options.DrainTimeout);
        await Task.WhenAll(executors);
        while (_received.Reader.TryRead(out var left))
        {
            await left.NakAsync(cancellationToken: CancellationToken.None);
        }

        var active = _firstStart == 0 ? TimeSpan.Zero : clock.GetElapsedTime(_firstStart, _lastEnd);
        LogStopped(logger, model.Name, Completed, BusyTime.TotalSeconds, active.TotalSeconds,
            active > TimeSpan.Zero ? 100 * BusyTime / (active * Slots) : 0, Slots);
    }

    private async Task FetchLoopAsync(CancellationToken ct)
    {
        var planner = new QueuePlanner(options.Region, options.Scheduling);
        using var wakeStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var waking = WakeOnQueuedAsync(wakeStop.Token);
        IReadOnlyList<QueueState> known = [];
        var knownAt = long.MinValue;
        var lastLook = 0L;
        var pulls = new List<Task>();
        while (!ct.IsCancellationRequested)
        {
            pulls.RemoveAll(p => p.IsCompleted);
            var free = Capacity - Volatile.Read(ref _reserved) - Volatile.Read(ref _inFlight);
            if (free <= 0 || pulls.Count >= 8)
            {
                await WaitForSignalAsync(TimeSpan.FromSeconds(1), ct);
                continue;
            }

            // The queues' counts are read again when woken, when what was read is used up, or
            // every 100 ms under load; in between the plan draws on what the last read left.
            var age = knownAt == long.MinValue ? TimeSpan.MaxValue : clock.GetElapsedTime(knownAt);
            var refreshed = false;
            var woken = Interlocked.Exchange(ref _woken, 0) == 1;
            if (age > TimeSpan.FromMilliseconds(100) || (woken && age > TimeSpan.FromMilliseconds(2)))
            {
                try
                {
                    known = await queues.ListAsync(model.Name, ct);
                    knownAt = clock.GetTimestamp();
                    refreshed = true;
                    if (clock.GetElapsedTime(lastLook) >= options.Scheduling.IdleScan)
                    {
                        known = await LookCloserAsync(known, ct);
                        lastLook = clock.GetTimestamp();
                    }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    // Stopping: what was pulled is drained by the caller.
                    break;
                }
                catch (Exception e) when (e is NatsException or TimeoutException)
                {
                    LogPullError(logger, model.Name, e.Message);
                    await WaitForSignalAsync(TimeSpan.FromSeconds(1), ct);
                    continue;
                }
            }

            var remoteAllowance = Math.Min(options.Scheduling.RemoteSlots, Slots) - Volatile.Read(ref _remoteInFlight) - Volatile.Read(ref _remoteReserved);
            var plan = planner.Plan(known, free, remoteAllowance, clock.GetUtcNow());
            if (plan.Count == 0)
            {
                if (refreshed && TakeWokenQueue() is { } queue)
                {
                    // Woken for a job the counts do not show yet: it is stored in the event log and
                    // reaches the work queue a moment later. A pull that waits at the server for it
                    // (one job, one slot) takes it the moment it arrives.
                    Interlocked.Increment(ref _reserved);
                    pulls.Add(PullAsync(new PullPlan(queue, 1, Remote: false, WaitAtServer: TimeSpan.FromMilliseconds(500))));
                }
                else if (refreshed || age < TimeSpan.FromMilliseconds(10))
                {
                    // Nothing to take: idle until a job is queued at home, capacity frees up, or
                    // the next look at the queues (other regions' backlogs, retries that came due).
                    await WaitForSignalAsync(options.Scheduling.IdleScan, ct);
                }

                knownAt = long.MinValue;
                continue;
            }

            known = known.Select(q => plan.FirstOrDefault(p => p.Queue == q.Queue) is { } taken
                ? q with { Waiting = Math.Max(0, q.Waiting - taken.Count), InFlight = q.InFlight + taken.Count }
                : q).ToList();
            foreach (var pull in plan)
            {
                _wokenQueues.TryRemove(pull.Queue, out _);
                Interlocked.Add(ref _reserved, pull.Count);
                if (pull.Remote)
                {
                    // Counted against RemoteSlots from now, not only once delivered: otherwise the
                    // next plan, made before this pull returns, would take another remote job.
                    Interlocked.Add(ref _remoteReserved, pull.Count);
                }

                pulls.Add(PullAsync(pull));
            }
        }

        await Task.WhenAll(pulls);
        await wakeStop.CancelAsync();
        await waking;
    }

    /// <summary>
    /// What the consumers' counts do not show, looked at every <see cref="SchedulingOptions.IdleScan"/>:
    /// a queue with jobs in flight and none waiting may hold a retry that came due or the job of a
    /// processor that died (JetStream redelivers those only to a pull), so it is worth one pull;
    /// and how long other regions' short queues have waited (overflow by age).
    /// </summary>
    private async Task<IReadOnlyList<QueueState>> LookCloserAsync(IReadOnlyList<QueueState> states, CancellationToken ct)
    {
        var waitingByRegion = states.GroupBy(q => q.Queue.Region).ToDictionary(g => g.Key, g => g.Sum(q => q.Waiting));
        var result = new List<QueueState>(states.Count);
        foreach (var state in states)
        {
            var closer = state.Waiting == 0 && state.InFlight > 0 ? state with { Waiting = 1 } : state;
            if (closer.Queue.Region != options.Region && closer.Waiting > 0 && options.Scheduling.Overflow
                && waitingByRegion[closer.Queue.Region] < options.Scheduling.OverflowThreshold)
            {
                closer = closer with { OldestAt = await queues.OldestAsync(closer.Queue, ct) };
            }

            result.Add(closer);
        }

        return result;
    }

    private int _woken;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<JobQueue, byte> _wokenQueues = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<JobQueue, byte> _waitingOn = new();

    /// <summary>A queue a wake-up named that no waiting pull covers yet, or null.</summary>
    private JobQueue? TakeWokenQueue()
    {
        foreach (var queue in _wokenQueues.Keys)
        {
            _wokenQueues.TryRemove(queue, out _);
            if (_waitingOn.TryAdd(queue, 0))
            {
                return queue;
            }
        }

        return null;
    }
    private int _remoteInFlight;
    private int _remoteReserved;

    private async Task WaitForSignalAsync(TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            await _capacityChanged.WaitAsync(timeout, ct);
        }
        catch (OperationCanceledException)
        {
        }

        // Signals that piled up meanwhile (every finished pull and batch, every wake-up) say one
        // thing: look again. Taken together, they cost one look, not one queue listing each.
        while (_capacityChanged.CurrentCount > 0 && await _capacityChanged.WaitAsync(0, CancellationToken.None))
        {
        }
    }

    /// <summary>The API announces each job it queued; one at home wakes the fetch loop.</summary>
    private async Task WakeOnQueuedAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var msg in js.Connection.SubscribeAsync<byte[]>(JobQueues.QueuedSubject(options.Region, model.Name), cancellationToken: ct))
            {
                if (JobQueue.TryParse("jobs" + msg.Subject[JobQueues.QueuedPrefix.Length..], out var queue))
                {
                    _wokenQueues.TryAdd(queue, 0);
                }

                if (Interlocked.Exchange(ref _woken, 1) == 0)
                {
                    _capacityChanged.Release();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private bool IsRemote(INatsJSMsg<byte[]> msg) => JobQueue.TryParse(msg.Subject, out var queue) && queue.Region != options.Region;

    private async Task PullAsync(PullPlan pull)
    {
        var delivered = 0;
        try
        {
            var consumer = await queues.EnsureAsync(pull.Queue, CancellationToken.None);
            var fetched = pull.WaitAtServer is { } wait
                ? consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = pull.Count, Expires = wait })
                : consumer.FetchNoWaitAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = pull.Count, Expires = options.PullExpires });
            await foreach (var msg in fetched)
            {
                delivered++;
                Interlocked.Decrement(ref _reserved);
                Interlocked.Increment(ref _inFlight);
                if (IsRemote(msg))
                {
                    Interlocked.Increment(ref _remoteInFlight);
                }

                if (!_received.Writer.TryWrite(msg))
                {
                    Interlocked.Decrement(ref _inFlight);
                    if (IsRemote(msg))
                    {
                        Interlocked.Decrement(ref _remoteInFlight);
                    }

                    await msg.NakAsync();
                }
            }
        }
        catch (NatsJSProtocolException e)
        {
            LogPullError(logger, model.Name, e.Message);
        }
        catch (NatsJSException e)
        {
            LogPullError(logger, model.Name, e.Message);
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
        catch (NatsException e)
        {
            LogPullError(logger, model.Name, e.Message);
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
        finally
        {
            Interlocked.Add(ref _reserved, -(pull.Count - delivered));
            if (pull.Remote)
            {
                Interlocked.Add(ref _remoteReserved, -pull.Count);
            }

            if (pull.WaitAtServer is not null)
            {
                _waitingOn.TryRemove(pull.Queue, out _);
            }

            _capacityChanged.Release();
        }
    }

    private async Task ExecuteLoopAsync(CancellationToken drain)
    {
        var delay = TimeSpan.FromMilliseconds(model.Batching?.MaxBatchDelayMs ?? 0);
        var batch = new List<INatsJSMsg<byte[]>>(MaxBatch);
        try
        {
            while (await _received.Reader.WaitToReadAsync(drain))
            {
                batch.Clear();
                if (!_received.Reader.TryRead(out var first))
                {
                    continue;
                }

                batch.Add(first);
                await FillBatchAsync(batch, delay, drain);
                try
                {
                    await ProcessBatchAsync(batch);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // NATS unreachable, a claim or publish that failed: nothing was acked, so hand
                    // the batch back for a later attempt instead of losing this executor.
                    LogBatchFailed(logger, model.Name, batch.Count, e);
                    foreach (var msg in batch)
                    {
                        await msg.NakAsync(delay: options.RetryBaseDelay).AsTask().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    }
                }
                finally
                {
                    Interlocked.Add(ref _inFlight, -batch.Count);
                    Interlocked.Add(ref _remoteInFlight, -batch.Count(IsRemote));
                    _capacityChanged.Release();
                }
            }
        }
        catch (OperationCanceledException) when (drain.IsCancellationRequested)
        {
        }
    }

    private async Task FillBatchAsync(List<INatsJSMsg<byte[]>> batch, TimeSpan delay, CancellationToken drain)
    {
        var deadline = clock.GetTimestamp() + (long)(delay.TotalSeconds * clock.TimestampFrequency);
        while (batch.Count < MaxBatch)
        {
            if (_received.Reader.TryRead(out var next))
            {
                batch.Add(next);
                continue;
            }

            var remaining = clock.GetElapsedTime(clock.GetTimestamp(), deadline);
            if (remaining <= TimeSpan.Zero || delay == TimeSpan.Zero)
            {
                return;
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(drain);
            wait.CancelAfter(remaining);
            try
            {
                if (!await _received.Reader.WaitToReadAsync(wait.Token))
                {
                    return;
                }
            }
            catch (OperationCanceledException) when (!drain.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task ProcessBatchAsync(List<INatsJSMsg<byte[]>> batch)
    {
        var device = runner.Device;
        var jobs = new List<(INatsJSMsg<byte[]> Msg, JobCommand Job, int Attempt)>(batch.Count);
        foreach (var msg in batch)
        {
            JobCommand? job = null;
            try
            {
                job = JsonSerializer.Deserialize(msg.Data ?? [], WireJson.Default.JobCommand);
            }
            catch (JsonException)
            {
            }

            if (job is null)
            {
                // Without a job id there is no job to fail: this can only be a foreign message.
                LogUndecodable(logger, msg.Subject, msg.Metadata?.Sequence.Stream ?? 0);
                await msg.AckTerminateAsync();
                continue;
            }

            jobs.Add((msg, job, (int)(msg.Metadata?.NumDelivered ?? 1)));
        }

        // Inputs left in the object store (claim check) are fetched and their hash checked; a blob
        // that is missing or changed can never run.
        var unusable = new List<(INatsJSMsg<byte[]> Msg, JobCommand Job, int Attempt, string Reason)>();
        for (var i = 0; i < jobs.Count; i++)
        {
            if (jobs[i].Job.InputsRef is { } blob)
            {
                try
                {
                    jobs[i] = jobs[i] with { Job = jobs[i].Job with { Inputs = await claimCheck.LoadAsync(blob, CancellationToken.None) } };
                }
                catch (InvalidDataException e)
                {
                    unusable.Add((jobs[i].Msg, jobs[i].Job, jobs[i].Attempt, e.Message));
                }
            }
        }

        if (unusable.Count > 0)
        {
            var failedAt = clock.GetUtcNow();
            await PublishAllAsync(unusable.Select(u => (u.Job, (object)new V1.JobFailed(
                u.Job.JobId, u.Attempt, _worker, runner.Device, failedAt, "input_corrupt", u.Reason, DeadLettered: false), $"{u.Job.JobId}:terminal")));
            await Task.WhenAll(unusable.Select(u => u.Msg.AckTerminateAsync().AsTask()));
            jobs = jobs.Where(j => !unusable.Any(u => u.Job.JobId == j.Job.JobId)).ToList();
        }

        // Claim each job before it runs: a job a cancel claimed first never runs. Its cancel event
        // is published again (same message id, so at most once in the log) in case the API died
        // between winning the claim and publishing it.
        var claims = await Task.WhenAll(jobs.Select(j => _claims.ClaimForRunAsync(j.Job.JobId, CancellationToken.None)));
        var cancelled = jobs.Where((_, i) => claims[i] == ClaimOutcome.Cancelled).ToList();
        if (cancelled.Count > 0)
        {
            await PublishAllAsync(cancelled.Select(j => (j.Job, (object)new V1.JobCancelled(j.Job.JobId, clock.GetUtcNow(), $"claim seen by {_worker}"), $"{j.Job.JobId}:terminal")));
            await Task.WhenAll(cancelled.Select(j => j.Msg.AckTerminateAsync().AsTask()));
            jobs = jobs.Where((_, i) => claims[i] != ClaimOutcome.Cancelled).ToList();
        }

        // A job still waiting when its deadline passed is not run: it ends expired.
        var now = clock.GetUtcNow();
        var expired = jobs.Where(j => j.Job.Deadline is { } deadline && deadline <= now).ToList();
        if (expired.Count > 0)
        {
            await PublishAllAsync(expired.Select(j => (j.Job, (object)new V1.JobExpired(j.Job.JobId, j.Job.Deadline!.Value, now, _worker), $"{j.Job.JobId}:terminal")));
            await Task.WhenAll(expired.Select(j => j.Msg.AckTerminateAsync().AsTask()));
            foreach (var job in expired)
            {
                Telemetry.JobsCompleted.Add(1, new("model", model.Name), new("region", job.Job.Region), new("status", JobStatuses.Expired));
            }

            jobs = jobs.Except(expired).ToList();
        }

        if (jobs.Count == 0)
        {
            return;
        }

        // One span per job, continuing the trace the API started (traceparent in the job's headers).
        var traces = jobs.ToDictionary(j => j.Job.JobId, j =>
        {
            var activity = Telemetry.Source.StartActivity("job.run", System.Diagnostics.ActivityKind.Consumer, Telemetry.Extract(j.Msg.Headers));
            activity?.SetTag(Telemetry.JobIdTag, j.Job.JobId.ToString());
            activity?.SetTag("cqrsi.attempt", j.Attempt);
            return activity;
        });
        foreach (var redelivered in jobs.Where(j => j.Attempt > 1))
        {
            Telemetry.Redeliveries.Add(1, new("model", model.Name), new("region", redelivered.Job.Region));
        }

        foreach (var overflowed in jobs.Where(j => j.Job.Region != options.Region))
        {
            Telemetry.Overflowed.Add(1, new("model", model.Name), new("region", overflowed.Job.Region), new("ran_in", options.Region));
        }

        var started = clock.GetUtcNow();
        var deviceClass = options.DeviceClass ?? device;
        JobContext Context(JobCommand job) => new(job.Tenant, job.Model, job.Region, deviceClass);
        await PublishAllAsync(
            jobs.Select(j => (j.Job, (object)new V1.JobStarted(
                j.Job.JobId, j.Attempt, _worker, device, started, Math.Max(0, (started - j.Job.SubmittedAt).TotalMilliseconds), Context(j.Job),
                options.Region, Overflowed: j.Job.Region != options.Region), $"{j.Job.JobId}:started:{j.Attempt}")),
            traces);

        IReadOnlyList<RunOutcome> outcomes;
        var watch = Stopwatch.StartNew();
        Interlocked.CompareExchange(ref _firstStart, clock.GetTimestamp(), 0);
        using (var heartbeat = new CancellationTokenSource())
        {
            var beating = HeartbeatAsync(jobs.Select(j => j.Msg).ToList(), heartbeat.Token);
            outcomes = await Task.Run(() => RunWithFaults(jobs.Select(j => (j.Job, j.Attempt)).ToList()));
            await heartbeat.CancelAsync();
            await beating;
        }

        watch.Stop();
        Interlocked.Add(ref _busyTicks, watch.Elapsed.Ticks);
        Telemetry.InferenceMs.Record(watch.Elapsed.TotalMilliseconds, new("model", model.Name), new("device", device));
        Telemetry.BatchSize.Record(jobs.Count, new KeyValuePair<string, object?>("model", model.Name));
        var finished = clock.GetUtcNow();
        var events = new List<(JobCommand, object, string)>(jobs.Count);
        var settle = new List<Func<Task>>(jobs.Count);
        for (var i = 0; i < jobs.Count; i++)
        {
            var (msg, job, attempt) = jobs[i];
            switch (outcomes[i])
            {
                case RunOutcome.Succeeded s:
                    var (outputs, outputsRef) = await claimCheck.OffloadAsync(s.Outputs, CancellationToken.None);
                    events.Add((job, new V1.JobSucceeded(job.JobId, attempt, _worker, device, finished, watch.Elapsed.TotalMilliseconds, jobs.Count, outputs, outputsRef, Context(job)), $"{job.JobId}:terminal"));
                    settle.Add(() => msg.AckAsync().AsTask());
                    break;
                case RunOutcome.Rejected r:
                    events.Add((job, new V1.JobFailed(job.JobId, attempt, _worker, device, finished, r.Code, r.Reason, DeadLettered: false, Context(job)), $"{job.JobId}:terminal"));
                    settle.Add(() => msg.AckTerminateAsync().AsTask());
                    break;
                case RunOutcome.Faulted f when attempt >= topology.MaxDeliver:
                    events.Add((job, new V1.JobFailed(job.JobId, attempt, _worker, device, finished, f.Code,
                        $"Gave up after {attempt} attempts (the delivery limit); last error: {f.Reason}", DeadLettered: true, Context(job)), $"{job.JobId}:terminal"));
                    settle.Add(() => msg.AckTerminateAsync().AsTask());
                    break;
                case RunOutcome.Faulted f:
                    var retryAfter = options.RetryBaseDelay * Math.Pow(2, attempt - 1);
                    events.Add((job, new V1.JobAttemptFailed(job.JobId, attempt, _worker, device, finished, f.Code, f.Reason, retryAfter), $"{job.JobId}:attempt_failed:{attempt}"));
                    settle.Add(() => msg.NakAsync(delay: retryAfter).AsTask());
                    break;
            }
        }

        // The results are durable in JetStream before any job leaves the queue: if this process
        // dies before the acks, the jobs are redelivered and the duplicate results are dropped by
        // their message ids.
        await PublishAllAsync(events, traces);
        await Task.WhenAll(settle.Select(s => s()));
        foreach (var (job, @event, _) in events)
        {
            var status = @event switch
            {
                V1.JobSucceeded => JobStatuses.Succeeded,
                V1.JobFailed failed => failed.DeadLettered ? "dead_lettered" : JobStatuses.Failed,
                _ => null,
            };
            if (status is not null)
            {
                Telemetry.JobsCompleted.Add(1, new("model", model.Name), new("region", job.Region), new("status", status == "dead_lettered" ? JobStatuses.Failed : status));
            }

            if (status == "dead_lettered")
            {
                Telemetry.DeadLetters.Add(1, new("model", model.Name), new("region", job.Region));
            }

            traces.GetValueOrDefault(job.JobId)?.SetTag("cqrsi.outcome", EventNames.Of(@event));
        }

        foreach (var activity in traces.Values)
        {
            activity?.Dispose();
        }

        Interlocked.Add(ref _completed, jobs.Count);
        _lastEnd = clock.GetTimestamp();
    }

    private IReadOnlyList<RunOutcome> RunWithFaults(IReadOnlyList<(JobCommand Job, int Attempt)> jobs)
    {
        var outcomes = runner.Run(jobs.Select(j => j.Job).ToList()).ToArray();
        if (!options.FaultInjection)
        {
            return outcomes;
        }

        for (var i = 0; i < jobs.Count; i++)
        {
            var fault = jobs[i].Job.Metadata?.GetValueOrDefault("cqrsi-test-fault");
            if (fault == "transient"
                || (fault?.StartsWith("transient:", StringComparison.Ordinal) == true
                    && jobs[i].Attempt <= int.Parse(fault["transient:".Length..], System.Globalization.CultureInfo.InvariantCulture)))
            {
                outcomes[i] = new RunOutcome.Faulted("injected_fault", "Injected transient fault (cqrsi-test-fault).");
            }
            else if (fault?.StartsWith("sleep:", StringComparison.Ordinal) == true)
            {
                Thread.Sleep(int.Parse(fault["sleep:".Length..], System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return outcomes;
    }

    private async Task HeartbeatAsync(IReadOnlyList<INatsJSMsg<byte[]>> msgs, CancellationToken ct)
    {
        var period = topology.JobAckWait / 3;
        try
        {
            while (true)
            {
                await Task.Delay(period, clock, ct);
                foreach (var msg in msgs)
                {
                    await msg.AckProgressAsync(cancellationToken: ct);
                }

                LogHeartbeat(logger, model.Name, msgs.Count);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task PublishAllAsync(IEnumerable<(JobCommand Job, object Event, string MsgId)> events, IReadOnlyDictionary<Guid, System.Diagnostics.Activity?>? traces = null)
    {
        var publishes = events.Select(e => EventWire.PublishAsync(
            js, NatsTopology.EventSubject(e.Job.Region, e.Job.Model), e.Event, e.MsgId, announce: true, traces?.GetValueOrDefault(e.Job.JobId), CancellationToken.None));
        await Task.WhenAll(publishes);
    }

    [LoggerMessage(LogLevel.Error, "A batch of {Count} {Model} jobs failed outside the model and goes back to the queue")]
    private static partial void LogBatchFailed(ILogger logger, string model, int count, Exception exception);

    [LoggerMessage(LogLevel.Warning, "Pulling jobs for {Model} failed: {Reason}")]
    private static partial void LogPullError(ILogger logger, string model, string reason);

    [LoggerMessage(LogLevel.Error, "Message {Subject} #{Sequence} is not a job; terminated")]
    private static partial void LogUndecodable(ILogger logger, string subject, ulong sequence);

    [LoggerMessage(LogLevel.Debug, "Heartbeat for {Count} running {Model} jobs")]
    private static partial void LogHeartbeat(ILogger logger, string model, int count);

    [LoggerMessage(LogLevel.Information, "Worker for {Model} stopped after {Completed} jobs: busy {BusySeconds:F3} s in inference of {ActiveSeconds:F3} s from first start to last finish ({BusyPercent:F1}% of {Slots} slots)")]
    private static partial void LogStopped(ILogger logger, string model, long completed, double busySeconds, double activeSeconds, double busyPercent, int slots);
}
