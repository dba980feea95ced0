using System.Globalization;
using CqrsInference.Commands.Jobs;
using Marten.Events.Aggregation;
using Marten.Events.Projections;

namespace CqrsInference.Projections.Analytics;

/// <summary>One processor's capacity and use in one hour, from its heartbeats.</summary>
public sealed class ProcessorUsage
{
    public string Id { get; set; } = "";

    public DateTimeOffset Hour { get; set; }

    public string Worker { get; set; } = "";

    public string Region { get; set; } = "";

    public string Device { get; set; } = "";

    public double OnlineSeconds { get; set; }

    /// <summary>Online seconds × slots: the most inference time the processor could have done.</summary>
    public double SlotSeconds { get; set; }

    public double BusySeconds { get; set; }

    public static string Key(DateTimeOffset at, string worker) =>
        $"{UsageBucket.HourOf(at).ToString("yyyyMMddHH", CultureInfo.InvariantCulture)}|{worker}";
}

/// <summary>Async roll-up of processor heartbeats into <see cref="ProcessorUsage"/> (utilization's numerator and denominator).</summary>
public sealed class ProcessorUsageProjection : MultiStreamProjection<ProcessorUsage, string>
{
    public ProcessorUsageProjection()
    {
        Identity<V1.ProcessorHeartbeat>(e => ProcessorUsage.Key(e.At, e.WorkerId));
    }

    public static void Apply(V1.ProcessorHeartbeat e, ProcessorUsage usage)
    {
        (usage.Hour, usage.Worker, usage.Region, usage.Device) = (UsageBucket.HourOf(e.At), e.WorkerId, e.Region, e.DeviceClass);
        usage.OnlineSeconds += e.OnlineSeconds;
        usage.SlotSeconds += e.OnlineSeconds * e.Slots;
        usage.BusySeconds += e.BusySeconds;
    }
}

/// <summary>Whether each processor is online now and which models it serves (inline, per processor stream; <see cref="Models"/> is null for a processor not seen coming online since this field was added).</summary>
public sealed record ProcessorStatus(
    Guid Id,
    string Worker,
    string Region,
    string Device,
    int Slots,
    bool Online,
    DateTimeOffset FirstSeen,
    DateTimeOffset LastSeen,
    string? OfflineReason = null,
    IReadOnlyList<string>? Models = null);

public sealed class ProcessorStatusProjection : SingleStreamProjection<ProcessorStatus, Guid>
{
    public static ProcessorStatus Create(V1.ProcessorOnline e) =>
        new(EventNames.ProcessorStreamId(e.WorkerId), e.WorkerId, e.Region, e.DeviceClass, e.Slots, true, e.At, e.At, Models: e.Models);

    public static ProcessorStatus Create(V1.ProcessorHeartbeat e) =>
        new(EventNames.ProcessorStreamId(e.WorkerId), e.WorkerId, e.Region, e.DeviceClass, e.Slots, true, e.At, e.At);

    public static ProcessorStatus Create(V1.ProcessorOffline e) =>
        new(EventNames.ProcessorStreamId(e.WorkerId), e.WorkerId, "?", "?", 0, false, e.At, e.At, e.Reason);

    public static ProcessorStatus Apply(V1.ProcessorOnline e, ProcessorStatus current) =>
        current with { Region = e.Region, Device = e.DeviceClass, Slots = e.Slots, Online = true, LastSeen = e.At, OfflineReason = null, Models = e.Models };

    public static ProcessorStatus Apply(V1.ProcessorHeartbeat e, ProcessorStatus current) =>
        current with { Online = true, LastSeen = e.At > current.LastSeen ? e.At : current.LastSeen, OfflineReason = null };

    public static ProcessorStatus Apply(V1.ProcessorOffline e, ProcessorStatus current) =>
        current with { Online = false, OfflineReason = e.Reason };
}
