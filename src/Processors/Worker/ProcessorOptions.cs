using System.ComponentModel.DataAnnotations;
using CqrsInference.Processors.Runtime;

namespace CqrsInference.Processors.Worker;

/// <summary>Processor settings, bound from the <c>Processor</c> section.</summary>
internal sealed class ProcessorOptions
{
    /// <summary>Identifies this processor in job events; defaults to host name and process id.</summary>
    public string? WorkerId { get; set; }

    /// <summary>The region this processor's capacity counts in.</summary>
    public string Region { get; set; } = "local";

    /// <summary>Device class for cost and utilization (e.g. <c>h100</c>); defaults to the device used (<c>cpu</c>, <c>cuda</c>).</summary>
    public string? DeviceClass { get; set; }

    /// <summary>How often the processor reports that it is alive, with its online and busy seconds.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Models to serve: a name serves every serving version of that model, <c>name@version</c> one
    /// version (<see cref="ServedVersions"/>); empty serves every serving version whose files are present.
    /// </summary>
    public List<string> Models { get; set; } = [];

    /// <summary>
    /// Succeeded jobs a model's worker holds for its shadow version (<c>"state": "shadow"</c> in the
    /// manifest) at most; a job offered when it is full is not shadowed (counted in
    /// <c>cqrsi_shadow_dropped_total</c>), so shadows never hold primary jobs back. 0: this
    /// processor runs no shadows (and loads no shadow version).
    /// </summary>
    [Range(0, 100_000)]
    public int ShadowQueue { get; set; } = 64;

    /// <summary>
    /// A shadow batch starts only while at least this share of the host's CPU time (all cores) was
    /// idle over the last quarter second (<c>/proc/stat</c>; 0: no check). A shadow's results are
    /// published, recorded and rolled up at the usual priority, on the same cores when the API,
    /// NATS, the recorders or PostgreSQL share the processor's host: on a busy host the shadow waits
    /// and what its queue cannot hold is dropped, so that it never takes the primary's time.
    /// </summary>
    [Range(0.0, 1.0)]
    public double ShadowMinIdleCpu { get; set; } = 0.2;

    /// <summary>Overrides each model's execution slots when set.</summary>
    [Range(1, 1024)]
    public int? Slots { get; set; }

    /// <summary>Overrides each batching model's <c>maxBatch</c> when set (1 turns batching off; for benchmarks).</summary>
    [Range(1, 65_536)]
    public int? MaxBatch { get; set; }

    /// <summary>How long one pull request may take at the server (pulls do not wait for new jobs: the queued signal wakes the processor).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan PullExpires { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Serve the interactive path too (<c>cqrsi.infer.&lt;region&gt;.&lt;model&gt;</c>, NATS request/reply),
    /// from the same slots and batches as the queued jobs.
    /// </summary>
    public bool Interactive { get; set; } = true;

    /// <summary>On shutdown, how long in-flight work may take before it is handed back (Nak).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// A run still going after this publishes its jobs' <c>job_started</c> (callers see them
    /// running); a shorter one carries each start on its ending instead. Zero publishes every start
    /// before the run.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan ReportRunningAfter { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>First retry delay after a transient fault; doubles per attempt.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:10:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Honour the job metadata key <c>cqrsi-test-fault</c>: <c>transient</c> (every attempt fails),
    /// <c>transient:&lt;n&gt;</c> (the first n attempts fail), <c>sleep:&lt;ms&gt;</c>, <c>hang</c>
    /// (until the execution timeout aborts the run). For tests of redelivery, heartbeats and
    /// timeouts only; off by default.
    /// </summary>
    public bool FaultInjection { get; set; }

    public RuntimeOptions Runtime { get; set; } = new();

    /// <summary>Which queue a free slot serves next: priorities, tenants, overflow.</summary>
    public SchedulingOptions Scheduling { get; set; } = new();

    public string ResolveWorkerId() => WorkerId ?? $"{Environment.MachineName}-{Environment.ProcessId}";
}
