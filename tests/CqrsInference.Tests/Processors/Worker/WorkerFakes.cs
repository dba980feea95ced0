using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Messaging;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Running;

namespace CqrsInference.Tests.Processors.Worker;

/// <summary>Records how a delivery was settled, in order.</summary>
internal sealed class FakeAck : IDeliveryAck
{
    private readonly ConcurrentQueue<string> _calls = new();

    public IReadOnlyList<string> Calls => [.. _calls];

    public Task AckAsync() => Record("ack");

    public Task RetryAsync(TimeSpan after) => Record($"retry {after.TotalSeconds:0.###}s");

    public Task TerminateAsync() => Record("terminate");

    public Task ProgressAsync(CancellationToken ct) => Record("progress");

    private Task Record(string call)
    {
        _calls.Enqueue(call);
        return Task.CompletedTask;
    }
}

/// <summary>Jobs and deliveries made up for the stages' tests.</summary>
internal static class Jobs
{
    public static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    public static JobCommand Command(string region = "local", DateTimeOffset? deadline = null, BlobRef? inputsRef = null, string? fault = null, int? timeoutMs = null) =>
        new(Guid.NewGuid(), "acme", "mlp-test", "1", region, "interactive", Now.AddMilliseconds(-250), "digest",
            [new Tensor("x", "FP32", [1, 4], JsonDocument.Parse("[1,2,3,4]").RootElement.Clone())],
            fault is null ? null : new Dictionary<string, string> { [FaultInjectingRunner.MetadataKey] = fault },
            InputsRef: inputsRef, Deadline: deadline, TimeoutMs: timeoutMs);

    public static JobDelivery Delivery(JobCommand job, int attempt = 1, FakeAck? ack = null) =>
        Delivery(JsonSerializer.SerializeToUtf8Bytes(job, WireJson.Default.JobCommand), new JobQueue(job.Region, job.Model, job.Priority, job.Tenant), attempt, ack);

    public static JobDelivery Delivery(byte[] data, JobQueue queue, int attempt = 1, FakeAck? ack = null) =>
        new(queue, $"log.0.jobs.{queue.Region}.{queue.Model}.{queue.Priority}.{queue.Tenant}.0", data, default, 1, attempt, ack ?? new FakeAck());

    public static AdmittedJob Admitted(JobCommand job, int attempt = 1) => new(Delivery(job, attempt), job);

    /// <summary>A model definition for the stages that read one (no file behind it).</summary>
    public static ModelDefinition Model(int timeoutMs = ModelDefinition.DefaultTimeoutMs) => new()
    {
        Name = "mlp-test",
        Version = "1",
        Runner = "tensor",
        File = "generated/mlp-test.onnx",
        Inputs = [new TensorSpec("x", "FP32", [-1, 4])],
        Outputs = [new TensorSpec("y", "FP32", [-1, 3])],
        TimeoutMs = timeoutMs,
    };
}

/// <summary>Claims decided in advance per job; unknown jobs are won.</summary>
internal sealed class FakeClaims : IJobClaims
{
    public Dictionary<Guid, ClaimOutcome> Outcomes { get; } = [];

    /// <summary>A processor finds its own 'running' claim again on a redelivery: it runs.</summary>
    public Task<ClaimOutcome> ClaimForRunAsync(Guid jobId, int series, CancellationToken ct) =>
        Task.FromResult(Outcomes.GetValueOrDefault(jobId) == ClaimOutcome.Cancelled ? ClaimOutcome.Cancelled : ClaimOutcome.Won);

    public Task<ClaimOutcome> ClaimForCancelAsync(Guid jobId, int series, CancellationToken ct) => Task.FromResult(Outcomes.GetValueOrDefault(jobId, ClaimOutcome.Won));
}

/// <summary>An object store in memory: blobs by key; a missing key is what a deleted blob looks like.</summary>
internal sealed class FakeClaimCheck : IClaimCheck
{
    public Dictionary<string, IReadOnlyList<Tensor>> Blobs { get; } = [];

    public int Threshold { get; init; } = int.MaxValue;

    public Task<(IReadOnlyList<Tensor> Inline, BlobRef? Ref)> OffloadAsync(IReadOnlyList<Tensor> tensors, CancellationToken ct)
    {
        if (tensors.Count < Threshold)
        {
            return Task.FromResult<(IReadOnlyList<Tensor>, BlobRef?)>((tensors, null));
        }

        var key = Guid.NewGuid().ToString("N");
        Blobs[key] = tensors;
        return Task.FromResult<(IReadOnlyList<Tensor>, BlobRef?)>(([], new BlobRef("blobs", key, key, 1)));
    }

    public Task<IReadOnlyList<Tensor>> LoadAsync(BlobRef blob, CancellationToken ct) =>
        Blobs.TryGetValue(blob.Key, out var tensors) ? Task.FromResult(tensors) : throw new InvalidDataException($"Blob {blob.Key} is missing from the object store.");
}

/// <summary>An event log in memory, in publish order; it can be told to fail.</summary>
internal sealed class FakeEventLog : IEventLog
{
    private readonly ConcurrentQueue<object> _events = new();

    public IReadOnlyList<object> Events => [.. _events];

    public Exception? FailWith { get; set; }

    public Task AppendAsync(JobRoute job, object @event, Activity? trace, CancellationToken ct)
    {
        if (FailWith is { } failure)
        {
            return Task.FromException(failure);
        }

        _events.Enqueue(@event);
        return Task.CompletedTask;
    }

    /// <summary>A served submission is kept as the submitted event the recorder makes of it.</summary>
    public Task AppendServedAsync(JobCommand job, byte[] message, Activity? trace, CancellationToken ct) =>
        AppendAsync(JobRoute.Of(job), job.ToSubmitted(message.Length), trace, ct);
}

/// <summary>
/// A runner whose outcomes the test chooses (by default every job succeeds with its inputs as
/// outputs); with <paramref name="runUntil"/>, a run lasts until the test sets it or the run is
/// aborted (then it throws as an aborted ONNX run does).
/// </summary>
internal sealed class FakeRunner(Func<JobCommand, RunOutcome>? outcome = null, ManualResetEventSlim? runUntil = null) : IJobRunner
{
    public string Device => "cpu";

    public int Runs { get; private set; }

    public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort)
    {
        Runs++;
        try
        {
            runUntil?.Wait(TimeSpan.FromSeconds(30), abort);
        }
        catch (OperationCanceledException)
        {
            throw new ExecutionTimeoutException();
        }

        return jobs.Select(j => outcome?.Invoke(j.Job) ?? new RunOutcome.Succeeded(j.Job.Inputs)).ToList();
    }
}

/// <summary>
/// Queues in memory: the counts a listing shows, the jobs a pull takes (in order), wake-ups the test
/// sends, and every pull made. A listing can be told to fail.
/// </summary>
internal sealed class FakeJobSource : IJobSource
{
    private readonly Channel<JobQueue> _wakeUps = Channel.CreateUnbounded<JobQueue>();
    private readonly ConcurrentQueue<(JobQueue Queue, int Count, TimeSpan? Wait)> _pulls = new();

    public ConcurrentDictionary<JobQueue, ConcurrentQueue<JobDelivery>> Queues { get; } = new();

    public IReadOnlyList<(JobQueue Queue, int Count, TimeSpan? Wait)> Pulls => [.. _pulls];

    public int FailListings { get; set; }

    private int _listings;

    /// <summary>How many times the queues were listed.</summary>
    public int Listings => Volatile.Read(ref _listings);

    public void Add(JobQueue queue, params JobDelivery[] deliveries)
    {
        var jobs = Queues.GetOrAdd(queue, _ => new ConcurrentQueue<JobDelivery>());
        foreach (var delivery in deliveries)
        {
            jobs.Enqueue(delivery);
        }
    }

    public void WakeUp(JobQueue queue) => _wakeUps.Writer.TryWrite(queue);

    /// <summary>How long a listing takes (a server with many tenants' queues).</summary>
    public TimeSpan ListingTakes { get; set; }

    public async Task<IReadOnlyList<QueueState>> ListAsync(string model, CancellationToken ct)
    {
        Interlocked.Increment(ref _listings);
        if (FailListings > 0)
        {
            FailListings--;
            throw new TimeoutException("no answer from the server");
        }

        if (ListingTakes > TimeSpan.Zero)
        {
            await Task.Delay(ListingTakes, ct);
        }

        return Queues.Select(q => new QueueState(q.Key, q.Value.Count, 0)).ToList();
    }

    private int _stateReads;

    /// <summary>How many times one queue's counts were read.</summary>
    public int StateReads => Volatile.Read(ref _stateReads);

    public Task<QueueState?> StateAsync(JobQueue queue, CancellationToken ct)
    {
        Interlocked.Increment(ref _stateReads);
        return Task.FromResult(Queues.TryGetValue(queue, out var jobs) ? new QueueState(queue, jobs.Count, 0) : null);
    }

    public Task<DateTimeOffset?> OldestAsync(JobQueue queue, CancellationToken ct) => Task.FromResult<DateTimeOffset?>(Jobs.Now);

    public async IAsyncEnumerable<JobDelivery> PullAsync(JobQueue queue, int count, TimeSpan? waitAtServer, [EnumeratorCancellation] CancellationToken ct)
    {
        _pulls.Enqueue((queue, count, waitAtServer));
        var jobs = Queues.GetOrAdd(queue, _ => new ConcurrentQueue<JobDelivery>());
        for (var taken = 0; taken < count && jobs.TryDequeue(out var delivery); taken++)
        {
            yield return delivery;
        }

        await Task.Yield();
    }

    public async IAsyncEnumerable<JobQueue> WakeUpsAsync(string region, string model, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var queue in _wakeUps.Reader.ReadAllAsync(ct))
        {
            yield return queue;
        }
    }
}
