using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;

namespace CqrsInference.Commands.Backtests;

/// <summary>Where a backtest is in its window: jobs are taken in (submitted at, id) order.</summary>
public sealed record BacktestPosition(DateTimeOffset SubmittedAt, Guid JobId);

/// <summary>A job whose answers differed: the first output that did and how.</summary>
public sealed record BacktestDifference(Guid JobId, string Output, string Difference);

/// <summary>
/// One compared job's runs: the recorded one (<paramref name="RecordedMs"/>, on
/// <paramref name="RecordedDevice"/>, its share of its batch in <paramref name="RecordedDeviceSeconds"/>)
/// and the candidate's (run alone, so its device-seconds are its run time).
/// </summary>
public sealed record BacktestRun(double RecordedMs, string RecordedDevice, double RecordedDeviceSeconds, double CandidateMs, string CandidateDevice);

/// <summary>Why a job of the window was not compared.</summary>
public static class BacktestSkips
{
    /// <summary>Its inputs were in the object store and have expired (<c>ClaimCheck:MaxAge</c>).</summary>
    public const string InputExpired = "input expired";

    /// <summary>Its outputs were in the object store and have expired.</summary>
    public const string OutputExpired = "output expired";

    /// <summary>Its inputs were not kept: recorded before <c>Recorder:KeepInputs</c>, or with it off.</summary>
    public const string InputNotKept = "input not kept";

    /// <summary>Its kept inputs do not match their digest, or its stored blob its hash.</summary>
    public const string InputChanged = "input changed";

    /// <summary>Retention archived it (<c>Retention:FinishedJobsAfter</c>): its events are no longer read.</summary>
    public const string Archived = "archived by retention";

    /// <summary>The candidate refused or failed the input the recorded version answered.</summary>
    public const string CandidateFailed = "candidate failed";
}

/// <summary>The names of the backtest events and the rules of a backtest request.</summary>
public static class BacktestRules
{
    public const string Requested = "v1.backtest_requested";
    public const string Started = "v1.backtest_started";
    public const string Progressed = "v1.backtest_progressed";
    public const string Completed = "v1.backtest_completed";
    public const string Failed = "v1.backtest_failed";

    /// <summary>The most jobs one backtest compares (its report keeps every compared job's run times).</summary>
    public const int MaxLimit = 10_000;

    /// <summary>The jobs a backtest compares when its request names no limit.</summary>
    public const int DefaultLimit = 1_000;

    /// <summary>The most tenants one request may name.</summary>
    public const int MaxTenants = 100;

    /// <summary>The differing jobs a report lists (the first ones, in window order).</summary>
    public const int MaxExamples = 20;

    /// <summary>Every backtest event type with its wire name (registered with Marten).</summary>
    public static readonly IReadOnlyDictionary<string, Type> Types = new Dictionary<string, Type>
    {
        [Requested] = typeof(V1.BacktestRequested),
        [Started] = typeof(V1.BacktestStarted),
        [Progressed] = typeof(V1.BacktestProgressed),
        [Completed] = typeof(V1.BacktestCompleted),
        [Failed] = typeof(V1.BacktestFailed),
    };

    /// <summary>
    /// What is wrong with a request, field by field (empty when nothing). A tenant is any valid name:
    /// one with no jobs in the window adds none (tenants are not registered anywhere to check against).
    /// The candidate may be any version of the model in the manifest, retired ones too: a candidate is
    /// often a version no job is routed to yet.
    /// </summary>
    public static Dictionary<string, string[]> Errors(
        ModelCatalog catalog, string? model, string? candidateVersion, DateTimeOffset? from, DateTimeOffset? to, IReadOnlyList<string>? tenants, int? limit)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrEmpty(model))
        {
            errors["model"] = ["model is required."];
        }
        else if (catalog.VersionsOf(model).Count == 0)
        {
            errors["model"] = [$"Model '{model}' is not in the manifest; the models are: {string.Join(", ", catalog.All.Select(m => m.Name))}."];
        }
        else if (string.IsNullOrEmpty(candidateVersion) || !catalog.TryGet(model, candidateVersion, out _))
        {
            errors["candidateVersion"] = [$"{(string.IsNullOrEmpty(candidateVersion) ? "candidateVersion is required" : $"Model '{model}' has no version '{candidateVersion}'")}; "
                + $"its versions are: {string.Join(", ", catalog.VersionsOf(model).Select(v => v.Version))}."];
        }

        foreach (var (field, message) in WindowErrors(from, to, tenants, limit))
        {
            errors[field] = [message];
        }

        return errors;
    }

    private static IEnumerable<(string Field, string Message)> WindowErrors(DateTimeOffset? from, DateTimeOffset? to, IReadOnlyList<string>? tenants, int? limit)
    {
        if (from is null)
        {
            yield return ("from", "from is required (RFC 3339: the start of the window of submissions, inclusive).");
        }

        if (to is null)
        {
            yield return ("to", "to is required (RFC 3339: the end of the window of submissions, exclusive).");
        }
        else if (from is not null && from >= to)
        {
            yield return ("to", $"to ({to:O}) must be after from ({from:O}).");
        }

        if (limit is < 1 or > MaxLimit)
        {
            yield return ("limit", $"limit must be 1 to {MaxLimit} (jobs compared); absent means {DefaultLimit}.");
        }

        if (tenants is { Count: 0 } or { Count: > MaxTenants })
        {
            yield return ("tenants", $"tenants, when given, lists 1 to {MaxTenants} tenants (absent: every tenant).");
        }
        else if (tenants?.Any(t => t is null) == true)
        {
            yield return ("tenants", "tenants lists names: null is none.");
        }
        else if (tenants?.FirstOrDefault(t => !Naming.IsToken(t!)) is { } bad)
        {
            yield return ("tenants", $"Tenant '{bad}' is not a valid name: a tenant is {Naming.TokenRule}.");
        }
    }

    /// <summary>
    /// Compares the recorded answer with the candidate's by the model's rules: null when identical,
    /// else the first differing output and how it differs.
    /// </summary>
    public static BacktestDifference? Compare(Guid jobId, ModelDefinition model, IReadOnlyList<Tensor> recorded, IReadOnlyList<Tensor> candidate)
    {
        var first = OutputComparison.Compare(recorded, candidate, model.Comparison).FirstOrDefault(a => !a.Same);
        return first is null ? null : new BacktestDifference(jobId, first.Output, first.Difference ?? "differs");
    }
}
