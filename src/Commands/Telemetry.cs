using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CqrsInference.Commands;

/// <summary>
/// The system's traces and metrics. A job's trace starts at the submit and travels in NATS headers
/// (W3C <c>traceparent</c>) through the processor to the recorder. Metric names become Prometheus
/// names at <c>/metrics</c> (dots to underscores; counters get <c>_total</c>).
/// </summary>
public static class Telemetry
{
    public const string Name = "CqrsInference";
    public const string JobIdTag = "cqrsi.job_id";

    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> JobsSubmitted = Meter.CreateCounter<long>("cqrsi.jobs.submitted", description: "Jobs accepted (202) by the API");
    public static readonly Counter<long> JobsCompleted = Meter.CreateCounter<long>("cqrsi.jobs.completed", description: "Jobs that reached a terminal state in a processor, by status");
    public static readonly Counter<long> Redeliveries = Meter.CreateCounter<long>("cqrsi.jobs.redeliveries", description: "Deliveries of a job after its first");
    public static readonly Counter<long> DeadLetters = Meter.CreateCounter<long>("cqrsi.jobs.dead_letters", description: "Jobs that ran out of attempts");

    public static readonly Counter<long> Overflowed = Meter.CreateCounter<long>("cqrsi.jobs.overflowed", description: "Starts of a region's jobs on another region's processor (by the job's region and ran_in)");
    public static readonly Histogram<double> InferenceMs = Meter.CreateHistogram<double>("cqrsi.inference.duration", unit: "ms", description: "Time of one ONNX call (one batch)");
    public static readonly Histogram<long> BatchSize = Meter.CreateHistogram<long>("cqrsi.inference.batch_size", description: "Jobs per ONNX call");
}
