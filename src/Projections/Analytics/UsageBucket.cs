using System.Globalization;
using CqrsInference.Commands.Jobs;
using Marten.Events.Projections;

namespace CqrsInference.Projections.Analytics;

/// <summary>
/// Usage of one hour × model × region × tenant × device class: what analysts group and sum.
/// Submissions have no device yet and count under device <c>-</c>. The region is the job's own
/// (home) region, also for jobs that overflowed to another region's processors (counted in
/// <see cref="Overflowed"/>); per-processor utilization counts in the processor's region.
/// </summary>
public sealed class UsageBucket
{
    public string Id { get; set; } = "";

    public DateTimeOffset Hour { get; set; }

    public string Model { get; set; } = "";

    public string Region { get; set; } = "";

    public string Tenant { get; set; } = "";

    public string Device { get; set; } = "";

    public long Submitted { get; set; }

    public long Succeeded { get; set; }

    public long Failed { get; set; }

    /// <summary>
    /// Device time in inference: each run's batch run time divided by its batch size
    /// (<see cref="DeviceTime"/>), for every run that has its ending recorded, failed ones too.
    /// </summary>
    public double BusySeconds { get; set; }

    /// <summary>The part of <see cref="BusySeconds"/> spent on runs that failed (attempts retried, jobs failed).</summary>
    public double FailedBusySeconds { get; set; }

    public long BatchSizeSum { get; set; }

    /// <summary>Starts of this region's jobs on another region's processor (overflow).</summary>
    public long Overflowed { get; set; }

    public long[] QueueWaitMs { get; set; } = new long[Histogram.Buckets];

    public long[] RunMs { get; set; } = new long[Histogram.Buckets];

    public static DateTimeOffset HourOf(DateTimeOffset time)
    {
        var utc = time.UtcDateTime;
        return new DateTimeOffset(utc.Year, utc.Month, utc.Day, utc.Hour, 0, 0, TimeSpan.Zero);
    }

    public static string Key(DateTimeOffset time, string model, string region, string tenant, string device) =>
        $"{HourOf(time).ToString("yyyyMMddHH", CultureInfo.InvariantCulture)}|{model}|{region}|{tenant}|{device}";

    internal void Describe(DateTimeOffset time, string model, string region, string tenant, string device)
    {
        (Hour, Model, Region, Tenant, Device) = (HourOf(time), model, region, tenant, device);
    }
}

/// <summary>Async roll-up of job events into <see cref="UsageBucket"/>s (Marten async daemon).</summary>
public sealed class UsageProjection : MultiStreamProjection<UsageBucket, string>
{
    private const string Unknown = "?";

    public UsageProjection()
    {
        Identity<V1.JobSubmitted>(e => UsageBucket.Key(e.SubmittedAt, e.Model, e.Region, e.Tenant, "-"));
        Identity<V1.JobStarted>(e => Key(e.StartedAt, e.Context));
        Identity<V1.JobSucceeded>(e => Key(e.CompletedAt, e.Context));
        Identity<V1.JobFailed>(e => Key(e.FailedAt, e.Context));
        Identity<V1.JobAttemptFailed>(e => Key(e.FailedAt, e.Context));
    }

    public static void Apply(V1.JobSubmitted e, UsageBucket usage)
    {
        usage.Describe(e.SubmittedAt, e.Model, e.Region, e.Tenant, "-");
        usage.Submitted++;
    }

    public static void Apply(V1.JobStarted e, UsageBucket usage)
    {
        Describe(usage, e.StartedAt, e.Context);
        CountStart(usage, new JobStart(e.StartedAt, e.QueueWaitMs, e.RanInRegion, e.Overflowed));
    }

    /// <summary>An attempt's start, from its own event or from the ending that carries it.</summary>
    private static void CountStart(UsageBucket usage, JobStart? start)
    {
        if (start is null)
        {
            return;
        }

        Histogram.Add(usage.QueueWaitMs, start.QueueWaitMs);
        if (start.Overflowed)
        {
            usage.Overflowed++;
        }
    }

    public static void Apply(V1.JobAttemptFailed e, UsageBucket usage)
    {
        Describe(usage, e.FailedAt, e.Context);
        CountStart(usage, e.Start);
        CountFailedRun(usage, e.RunMs, e.BatchSize);
    }

    /// <summary>A failure that came out of a model run took device time: busy, and listed apart.</summary>
    private static void CountFailedRun(UsageBucket usage, double? runMs, int? batchSize)
    {
        if (runMs is { } ms)
        {
            var seconds = DeviceTime.Seconds(ms, batchSize ?? 1);
            usage.BusySeconds += seconds;
            usage.FailedBusySeconds += seconds;
        }
    }

    public static void Apply(V1.JobSucceeded e, UsageBucket usage)
    {
        Describe(usage, e.CompletedAt, e.Context);
        CountStart(usage, e.Start);
        usage.Succeeded++;
        usage.BusySeconds += DeviceTime.Seconds(e.RunMs, e.BatchSize);
        usage.BatchSizeSum += e.BatchSize;
        Histogram.Add(usage.RunMs, e.RunMs);
    }

    public static void Apply(V1.JobFailed e, UsageBucket usage)
    {
        Describe(usage, e.FailedAt, e.Context);
        CountStart(usage, e.Start);
        CountFailedRun(usage, e.RunMs, e.BatchSize);
        usage.Failed++;
    }

    private static string Key(DateTimeOffset time, JobContext? context) =>
        UsageBucket.Key(time, context?.Model ?? Unknown, context?.Region ?? Unknown, context?.Tenant ?? Unknown, context?.DeviceClass ?? Unknown);

    private static void Describe(UsageBucket usage, DateTimeOffset time, JobContext? context) =>
        usage.Describe(time, context?.Model ?? Unknown, context?.Region ?? Unknown, context?.Tenant ?? Unknown, context?.DeviceClass ?? Unknown);
}
