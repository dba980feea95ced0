using System.Text.Json;

namespace CqrsInference.Projections.Audit;

public sealed record ReplayDifference(Guid Id, string Problem);

/// <summary>
/// The differences a replay finds, bounded: every one is counted, the first <c>listed</c> are kept,
/// and a differing document is described by the properties that differ (values cut short), never
/// by both whole documents, whose outputs can be megabytes.
/// </summary>
internal sealed class ReplayDifferences(int listed)
{
    public const int ValueChars = 200;

    private readonly List<ReplayDifference> _listed = [];

    public long Count { get; private set; }

    public IReadOnlyList<ReplayDifference> Listed => _listed;

    public long Unlisted => Count - _listed.Count;

    public void Add(Guid id, string problem)
    {
        if (++Count <= listed)
        {
            _listed.Add(new ReplayDifference(id, problem));
        }
    }

    /// <summary>Compares the live document with the rebuilt one; records a difference naming the properties that differ.</summary>
    public void Compare(Guid id, JobStatus.JobStatus live, JobStatus.JobStatus rebuilt)
    {
        var differing = Differing(JsonSerializer.SerializeToElement(live), JsonSerializer.SerializeToElement(rebuilt));
        if (differing.Count > 0)
        {
            Add(id, $"differs in {string.Join("; ", differing)}");
        }
    }

    /// <summary>"Name: live X, rebuilt Y" for each top-level property whose JSON differs.</summary>
    private static List<string> Differing(JsonElement live, JsonElement rebuilt)
    {
        var names = live.EnumerateObject().Select(p => p.Name).Union(rebuilt.EnumerateObject().Select(p => p.Name));
        var differing = new List<string>();
        foreach (var name in names)
        {
            var before = live.TryGetProperty(name, out var l) ? l.GetRawText() : "(absent)";
            var after = rebuilt.TryGetProperty(name, out var r) ? r.GetRawText() : "(absent)";
            if (before != after)
            {
                differing.Add($"{name}: live {Cut(before)}, rebuilt {Cut(after)}");
            }
        }

        return differing;
    }

    private static string Cut(string json) => json.Length <= ValueChars ? json : $"{json[..ValueChars]}… ({json.Length} chars)";
}
