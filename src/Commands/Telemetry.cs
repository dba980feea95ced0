using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CqrsInference.Commands;

/// <summary>
/// The system's traces and metrics. A job's trace starts at the submit and travels in NATS headers
/// (W3C <c>traceparent</c>) through the processor to the recorder. Instruments follow the
/// OpenTelemetry semantic conventions: durations in seconds (unit <c>s</c>), counts with an
/// annotation unit (<c>{job}</c>); Prometheus names them at <c>/metrics</c> with dots as underscores,
/// the unit as a suffix (<c>_seconds</c>) and <c>_total</c> on counters.
/// </summary>
public static class Telemetry
{
    public const string Name = "CqrsInference";
    public const string JobIdTag = "cqrsi.job_id";

    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> JobsSubmitted = Meter.CreateCounter<long>("cqrsi.jobs.submitted", "{job}", "Jobs accepted (202) by the API");
    public static readonly Counter<long> JobsCompleted = Meter.CreateCounter<long>("cqrsi.jobs.completed", "{job}", "Jobs that reached a terminal state in a processor, by status");
    public static readonly Counter<long> Redeliveries = Meter.CreateCounter<long>("cqrsi.jobs.redeliveries", "{delivery}", "Deliveries of a job after its first");
    public static readonly Counter<long> DeadLetters = Meter.CreateCounter<long>("cqrsi.jobs.dead_letters", "{job}", "Jobs that ran out of attempts");

    /// <summary>
    /// The series an operator's alerts on a model watch (its endings by status, redeliveries, dead
    /// letters in the processor's region), at 0 from the moment a processor serves it: a rule such as
    /// <c>rate(cqrsi_jobs_dead_letters_total[5m]) &gt; 0</c> then reads 0, not "no data", until the first.
    /// </summary>
    public static void CountFromZero(string model, string region)
    {
        foreach (var status in new[] { Jobs.JobStatuses.Succeeded, Jobs.JobStatuses.Failed, Jobs.JobStatuses.Cancelled, Jobs.JobStatuses.Expired })
        {
            JobsCompleted.Add(0, new("model", model), new("region", region), new("status", status));
        }

        Redeliveries.Add(0, new("model", model), new("region", region));
        DeadLetters.Add(0, new("model", model), new("region", region));
    }

    public static readonly Counter<long> ShadowRuns = Meter.CreateCounter<long>("cqrsi.shadow.runs", "{job}", "Succeeded jobs run again on their model's shadow version, by model and outcome (identical, different, failed)");
    public static readonly Counter<long> ShadowDropped = Meter.CreateCounter<long>("cqrsi.shadow.dropped", "{job}", "Succeeded jobs not run on the shadow version: its queue in the processor was full (or the processor stopped), by model");

    public static readonly Counter<long> Overflowed = Meter.CreateCounter<long>("cqrsi.jobs.overflowed", "{job}", "Starts of a region's jobs on another region's processor (by the job's region and ran_in)");

    /// <summary>Time of one ONNX call (one batch), in seconds; buckets from 0.5 ms to 30 s.</summary>
    public static readonly Histogram<double> InferenceDuration = Meter.CreateHistogram(
        "cqrsi.inference.duration",
        "s",
        "Time of one ONNX call (one batch)",
        tags: null,
        new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });

    public static readonly Histogram<long> BatchSize = Meter.CreateHistogram(
        "cqrsi.inference.batch_size",
        "{job}",
        "Jobs per ONNX call",
        tags: null,
        new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256] });
}
