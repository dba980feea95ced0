namespace CqrsInference.Commands.Jobs;

/// <summary>
/// Version 1 of the processors' capacity facts: one event stream per processor, recorded like the
/// job events, folded by the utilization roll-ups.
/// </summary>
public static partial class V1
{
    /// <summary>A processor came online and can take work.</summary>
    public sealed record ProcessorOnline(string WorkerId, string Region, string DeviceClass, int Slots, IReadOnlyList<string> Models, DateTimeOffset At);

    /// <summary>
    /// A processor is alive. <paramref name="OnlineSeconds"/> and <paramref name="BusySeconds"/> are
    /// the time since its previous heartbeat and the inference time (summed over slots) in it: the
    /// denominator and numerator of utilization.
    /// </summary>
    public sealed record ProcessorHeartbeat(string WorkerId, string Region, string DeviceClass, int Slots, DateTimeOffset At, double OnlineSeconds, double BusySeconds);

    /// <summary>A processor went away: it said so (<c>shutdown</c>) or stopped heartbeating (<c>timeout</c>).</summary>
    public sealed record ProcessorOffline(string WorkerId, DateTimeOffset At, string Reason);
}
