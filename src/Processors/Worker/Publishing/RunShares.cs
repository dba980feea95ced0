using CqrsInference.Processors.Runtime;

namespace CqrsInference.Processors.Worker.Publishing;

/// <summary>The run time a job's ending carries and the jobs it shared it with (<see cref="Commands.Jobs.DeviceTime"/>).</summary>
internal readonly record struct RunShare(double Ms, int BatchSize);

/// <summary>
/// Who carries a batch's run time. When the batch's one run served every job, each carries it with
/// the number of jobs that ran in it (a job whose input was refused before the run carries
/// nothing). When the run broke and each job ran again alone (<see cref="RunOutcome.RanAlone"/>),
/// each carries its own run with a batch of 1, and the broken attempt's time goes to the jobs that
/// broke it: after a timeout, those whose own timeout was the batch's (they asked for the bound the
/// run passed, whether or not they pass it alone); after a poison input, those that failed again
/// alone; when neither names anyone, every job that ran again. An attempt that a cancel aborted is
/// carried by no job, as the run of a job whose cancel won is not: a tenant never pays for
/// another's cancel or tight timeout. What the jobs
/// carry adds up to the time the executor counted as busy, except what a cancel left.
/// </summary>
internal static class RunShares
{
    public static IReadOnlyList<RunShare?> Of(IReadOnlyList<RunOutcome> outcomes, TimeSpan elapsed)
    {
        var shares = new RunShare?[outcomes.Count];
        if (elapsed <= TimeSpan.Zero)
        {
            return shares;
        }

        // A job whose input was refused before it could run took no part in any run, alone or not.
        var alone = Enumerable.Range(0, outcomes.Count).Where(i => outcomes[i].RanAlone is not null && !outcomes[i].NotRun).ToList();
        if (alone.Count == 0)
        {
            var ran = Enumerable.Range(0, outcomes.Count).Where(i => outcomes[i] is not RunOutcome.Cancelled && !outcomes[i].NotRun).ToList();
            ran.ForEach(i => shares[i] = new RunShare(elapsed.TotalMilliseconds, ran.Count));
            return shares;
        }

        var broken = Math.Max(0, elapsed.TotalMilliseconds - alone.Sum(i => outcomes[i].RanAlone!.Value.TotalMilliseconds));
        var bound = alone.Where(i => outcomes[i].SetTheBound).ToList();
        var breakers = alone.Where(i => outcomes[i] is RunOutcome.Rejected or RunOutcome.Faulted).ToList();
        var payers = outcomes.Any(o => o is RunOutcome.Cancelled) ? [] : bound.Count > 0 ? bound : breakers.Count > 0 ? breakers : alone;
        foreach (var i in alone.Where(i => outcomes[i] is not RunOutcome.Cancelled))
        {
            var part = payers.Contains(i) ? broken / payers.Count : 0;
            shares[i] = new RunShare(outcomes[i].RanAlone!.Value.TotalMilliseconds + part, 1);
        }

        return shares;
    }
}
