namespace CqrsInference.Commands.Jobs;

/// <summary>
/// The one rule of device time, used by everything that counts it (the job's runs and cost, the
/// usage roll-up, the invoice, reconciliation): a batch's run time is shared equally by the jobs
/// run in it, so a job's device-seconds for a run are <c>runMs / batchSize / 1000</c>, and the
/// shares of one batch add up to its run time, which is what the processor counts as busy.
/// </summary>
public static class DeviceTime
{
    /// <summary>A job's share, in device-seconds, of a batch that ran <paramref name="runMs"/> with <paramref name="batchSize"/> jobs.</summary>
    public static double Seconds(double runMs, int batchSize) => runMs / Math.Max(1, batchSize) / 1000;

    /// <summary>The cost of <paramref name="deviceSeconds"/> at <paramref name="pricePerHour"/> (per device-hour).</summary>
    public static decimal Cost(double deviceSeconds, decimal pricePerHour) => (decimal)deviceSeconds * pricePerHour / 3600m;
}
