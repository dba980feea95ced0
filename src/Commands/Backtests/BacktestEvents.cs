using CqrsInference.Commands.Backtests;

namespace CqrsInference.Commands.Jobs;

/// <summary>
/// Version 1 of a backtest's events (<c>POST /v1/admin/backtests</c>): one Marten stream per backtest,
/// appended directly, as a batch's are (docs/ARCHITECTURE.md, "Decision: backtests"). The stream is the
/// backtest's progress: a runner that crashes resumes after the last <see cref="BacktestProgressed"/>.
/// </summary>
public static partial class V1
{
    /// <summary>
    /// An operator asked to run the succeeded jobs of <paramref name="Model"/> submitted in
    /// [<paramref name="From"/>, <paramref name="To"/>) (of <paramref name="Tenants"/> only, when given;
    /// at most <paramref name="Limit"/>, oldest first) again on <paramref name="CandidateVersion"/>.
    /// </summary>
    public sealed record BacktestRequested(
        Guid BacktestId,
        string Model,
        string CandidateVersion,
        DateTimeOffset From,
        DateTimeOffset To,
        IReadOnlyList<string>? Tenants,
        int Limit,
        DateTimeOffset RequestedAt,
        string RequestedBy);

    /// <summary>
    /// A runner began (or resumed) the backtest, with the candidate loaded on <paramref name="Device"/>
    /// (<paramref name="Worker"/>: the process).
    /// </summary>
    public sealed record BacktestStarted(Guid BacktestId, DateTimeOffset StartedAt, string Worker, string Device);

    /// <summary>
    /// A chunk of jobs was compared: up to and including <paramref name="Through"/> (the position the
    /// next chunk starts after). Counts are this chunk's; the read model sums them.
    /// </summary>
    public sealed record BacktestProgressed(
        Guid BacktestId,
        DateTimeOffset At,
        BacktestPosition Through,
        int Compared,
        int Identical,
        int Different,
        IReadOnlyDictionary<string, int> Skipped,
        IReadOnlyList<BacktestDifference> Differences,
        IReadOnlyList<BacktestRun> Runs);

    /// <summary>Terminal: every job of the window (up to the limit) was compared or skipped.</summary>
    public sealed record BacktestCompleted(Guid BacktestId, DateTimeOffset CompletedAt);

    /// <summary>Terminal: the backtest cannot go on (its candidate could not be loaded: <paramref name="Reason"/>).</summary>
    public sealed record BacktestFailed(Guid BacktestId, DateTimeOffset FailedAt, string Reason);
}
