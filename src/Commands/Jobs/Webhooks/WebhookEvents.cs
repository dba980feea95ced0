namespace CqrsInference.Commands.Jobs.Webhooks;

/// <summary>
/// Which moments of a job call its webhook (the job's <c>webhookEvents</c>, as Replicate's
/// <c>webhook_events_filter</c>): <see cref="Started"/> (the first time it starts running) and
/// <see cref="Completed"/> (it ended: succeeded, failed, cancelled or expired). A job that names
/// none gets <see cref="Default"/>, the one call every job with a webhook had before the filter.
/// One home for the filter's rules: the submit checks it here, the recorder asks here what it owes,
/// and the dispatcher names each call's type here.
/// </summary>
public static class WebhookEvents
{
    public const string Started = "started";
    public const string Completed = "completed";

    public static readonly IReadOnlyList<string> All = [Started, Completed];

    public static readonly IReadOnlyList<string> Default = [Completed];

    /// <summary>Why a filter is refused (null: it is fine): one or more of <see cref="All"/>, each once.</summary>
    public static string? Refusal(IReadOnlyList<string> filter) =>
        filter.Count == 0 ? $"webhookEvents must name at least one of: {string.Join(", ", All)}."
        : filter.FirstOrDefault(e => !All.Contains(e)) is { } unknown ? $"webhookEvents: unknown event '{unknown}'; the events are: {string.Join(", ", All)}."
        : filter.Distinct(StringComparer.Ordinal).Count() != filter.Count ? "webhookEvents names an event twice."
        : null;

    /// <summary>Whether a job with this filter (null: <see cref="Default"/>) has its webhook called for <paramref name="kind"/>.</summary>
    public static bool Wants(IReadOnlyList<string>? filter, string kind) => (filter ?? Default).Contains(kind);

    /// <summary>
    /// The kind of call a delivery owed under <paramref name="eventType"/> makes: a start
    /// (<see cref="EventNames.JobStarted"/>), else the ending it was owed for (every delivery owed
    /// before the filter existed named its ending).
    /// </summary>
    public static string KindOf(string eventType) => eventType == EventNames.JobStarted ? Started : Completed;

    /// <summary>The <c>type</c> of the call's body: <c>job.started</c> or <c>job.completed</c>.</summary>
    public static string TypeOf(string kind) => $"job.{kind}";
}
