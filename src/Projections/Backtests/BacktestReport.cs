using CqrsInference.Commands.Backtests;
using CqrsInference.Commands.Jobs;
using Marten.Events.Aggregation;

namespace CqrsInference.Projections.Backtests;

/// <summary>The states of a backtest: queued (asked for), running, then completed or failed.</summary>
public static class BacktestStatuses
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";

    public static bool IsEnded(string status) => status is Completed or Failed;
}

/// <summary>
/// A backtest as its events leave it: the read model behind <c>GET /v1/admin/backtests/{id}</c>, and
/// where a runner resumes (<see cref="Through"/>). The counts are sums of the progress events; the
/// run times of every compared job are kept (at most <see cref="BacktestRules.MaxLimit"/>) for p50/p95,
/// and device-seconds per device class, so the API prices them at the price in force when it is read.
/// </summary>
public sealed record BacktestReport(
    Guid Id,
    string Status,
    string Model,
    string CandidateVersion,
    DateTimeOffset From,
    DateTimeOffset To,
    IReadOnlyList<string>? Tenants,
    int Limit,
    DateTimeOffset RequestedAt,
    string RequestedBy,
    DateTimeOffset? StartedAt = null,
    string? Worker = null,
    string? CandidateDevice = null,
    DateTimeOffset? EndedAt = null,
    string? FailReason = null,
    BacktestPosition? Through = null,
    int Compared = 0,
    int Identical = 0,
    int Different = 0,
    IReadOnlyDictionary<string, int>? Skipped = null,
    IReadOnlyList<BacktestDifference>? Examples = null,
    IReadOnlyList<double>? RecordedRunMs = null,
    IReadOnlyList<double>? CandidateRunMs = null,
    IReadOnlyDictionary<string, double>? RecordedDeviceSeconds = null,
    IReadOnlyDictionary<string, double>? CandidateDeviceSeconds = null)
{
    /// <summary>Jobs of the window looked at so far: compared or skipped (what <see cref="Limit"/> counts).</summary>
    public int Seen => Compared + (Skipped?.Values.Sum() ?? 0);
}

/// <summary>
/// Keeps <see cref="BacktestReport"/> in the transaction of the backtest's events (inline). It ends once:
/// after completed or failed, a later event leaves it as it is.
/// </summary>
public sealed class BacktestReportProjection : SingleStreamProjection<BacktestReport, Guid>
{
    public static BacktestReport Create(V1.BacktestRequested e) =>
        new(e.BacktestId, BacktestStatuses.Queued, e.Model, e.CandidateVersion, e.From, e.To, e.Tenants, e.Limit, e.RequestedAt, e.RequestedBy);

    public static BacktestReport Apply(V1.BacktestStarted e, BacktestReport current) =>
        BacktestStatuses.IsEnded(current.Status) ? current
            : current with { Status = BacktestStatuses.Running, StartedAt = current.StartedAt ?? e.StartedAt, Worker = e.Worker, CandidateDevice = e.Device };

    public static BacktestReport Apply(V1.BacktestProgressed e, BacktestReport current) =>
        BacktestStatuses.IsEnded(current.Status) ? current : current with
        {
            Through = e.Through,
            Compared = current.Compared + e.Compared,
            Identical = current.Identical + e.Identical,
            Different = current.Different + e.Different,
            Skipped = Sum(current.Skipped, e.Skipped.Select(s => (s.Key, (double)s.Value))).ToDictionary(p => p.Key, p => (int)p.Value),
            Examples = [.. (current.Examples ?? []).Concat(e.Differences).Take(BacktestRules.MaxExamples)],
            RecordedRunMs = [.. current.RecordedRunMs ?? [], .. e.Runs.Select(r => r.RecordedMs)],
            CandidateRunMs = [.. current.CandidateRunMs ?? [], .. e.Runs.Select(r => r.CandidateMs)],
            RecordedDeviceSeconds = Sum(current.RecordedDeviceSeconds, e.Runs.Select(r => (r.RecordedDevice, r.RecordedDeviceSeconds))),
            CandidateDeviceSeconds = Sum(current.CandidateDeviceSeconds, e.Runs.Select(r => (r.CandidateDevice, r.CandidateMs / 1000))),
        };

    public static BacktestReport Apply(V1.BacktestCompleted e, BacktestReport current) =>
        BacktestStatuses.IsEnded(current.Status) ? current : current with { Status = BacktestStatuses.Completed, EndedAt = e.CompletedAt };

    public static BacktestReport Apply(V1.BacktestFailed e, BacktestReport current) =>
        BacktestStatuses.IsEnded(current.Status) ? current : current with { Status = BacktestStatuses.Failed, EndedAt = e.FailedAt, FailReason = e.Reason };

    private static Dictionary<string, double> Sum(IEnumerable<KeyValuePair<string, int>>? current, IEnumerable<(string Key, double Value)> added) =>
        Sum(current?.Select(p => new KeyValuePair<string, double>(p.Key, p.Value)), added);

    private static Dictionary<string, double> Sum(IEnumerable<KeyValuePair<string, double>>? current, IEnumerable<(string Key, double Value)> added)
    {
        var sums = new Dictionary<string, double>(current ?? []);
        foreach (var (key, value) in added)
        {
            sums[key] = sums.GetValueOrDefault(key) + value;
        }

        return sums;
    }
}
