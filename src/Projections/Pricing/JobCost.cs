using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Pricing;
using CqrsInference.Projections.JobStatus;

namespace CqrsInference.Projections.Pricing;

/// <summary>One run of a job, priced: its share of the batch in device-seconds, and its cost at the price in force when it ended.</summary>
public sealed record PricedRun(
    int Series, int Attempt, DateTimeOffset EndedAt, string Outcome, string Worker, string DeviceClass,
    double RunMs, int BatchSize, double DeviceSeconds, decimal PricePerHour, decimal Cost);

/// <summary>
/// What a job cost (<c>GET /v1/jobs/{id}</c>, <c>cost</c>): every run of every attempt and series;
/// <see cref="DeviceSeconds"/> and <see cref="Amount"/> are the totals of all of them, of which
/// <see cref="FailedDeviceSeconds"/> and <see cref="FailedAmount"/> were spent on runs that failed
/// (listed apart, in <see cref="FailedRuns"/>). Amounts are in the unit of <c>Analytics:PricePerHour</c>.
/// </summary>
public sealed record JobCost(
    double DeviceSeconds, decimal Amount, double FailedDeviceSeconds, decimal FailedAmount,
    IReadOnlyList<PricedRun> Runs, IReadOnlyList<PricedRun> FailedRuns)
{
    /// <summary>A job with no run that took device time (queued, expired, cancelled before it ran; or a job recorded before runs were kept).</summary>
    public static readonly JobCost None = new(0, 0, 0, 0, [], []);

    public static JobCost Of(IReadOnlyList<JobRun>? runs, IReadOnlyList<V1.PriceListSet> prices)
    {
        if (runs is null or { Count: 0 })
        {
            return None;
        }

        var priced = runs.Select(r => Price(r, prices)).ToList();
        var failed = priced.Where(r => r.Outcome != EventNames.JobSucceeded).ToList();
        return new JobCost(
            priced.Sum(r => r.DeviceSeconds), priced.Sum(r => r.Cost), failed.Sum(r => r.DeviceSeconds), failed.Sum(r => r.Cost),
            priced.Where(r => r.Outcome == EventNames.JobSucceeded).ToList(), failed);
    }

    public static PricedRun Price(JobRun run, IReadOnlyList<V1.PriceListSet> prices)
    {
        var seconds = run.DeviceSeconds();
        var price = PriceLists.PriceAt(prices, run.DeviceClass, run.EndedAt);
        return new PricedRun(run.Series, run.Attempt, run.EndedAt, run.Outcome, run.Worker, run.DeviceClass, run.RunMs, run.BatchSize,
            seconds, price, DeviceTime.Cost(seconds, price));
    }
}
