using System.Globalization;
using CqrsInference.Commands.Jobs;
using Marten.Events.Projections;

namespace CqrsInference.Projections.Analytics;

/// <summary>
/// How a model's shadow version compared with its primary in one hour: jobs compared, how many
/// agreed on every output and per output, shadow runs that failed, and the run-time histograms
/// of both (<see cref="Histogram"/>; the primary's is its batch run, the shadow's its run alone).
/// </summary>
public sealed class ShadowComparison
{
    public string Id { get; set; } = "";

    public DateTimeOffset Hour { get; set; }

    public string Model { get; set; } = "";

    public string ShadowVersion { get; set; } = "";

    public long Compared { get; set; }

    /// <summary>Jobs whose every output agreed.</summary>
    public long Identical { get; set; }

    /// <summary>Shadow runs that failed (their outputs count as differing).</summary>
    public long Failed { get; set; }

    /// <summary>Per output name: jobs on which that output agreed.</summary>
    public Dictionary<string, long> Agreed { get; set; } = [];

    public long[] PrimaryRunMs { get; set; } = new long[Histogram.Buckets];

    public long[] ShadowRunMs { get; set; } = new long[Histogram.Buckets];

    public static string Key(DateTimeOffset time, string model, string shadowVersion) =>
        $"{UsageBucket.HourOf(time).ToString("yyyyMMddHH", CultureInfo.InvariantCulture)}|{model}|{shadowVersion}";
}

/// <summary>Async roll-up of <see cref="V1.JobShadowResult"/>s into <see cref="ShadowComparison"/>s (Marten async daemon).</summary>
public sealed class ShadowComparisonProjection : MultiStreamProjection<ShadowComparison, string>
{
    public ShadowComparisonProjection() => Identity<V1.JobShadowResult>(e => ShadowComparison.Key(e.At, e.Model, e.ShadowVersion));

    public static void Apply(V1.JobShadowResult e, ShadowComparison comparison)
    {
        (comparison.Hour, comparison.Model, comparison.ShadowVersion) = (UsageBucket.HourOf(e.At), e.Model, e.ShadowVersion);
        comparison.Compared++;
        comparison.Identical += e.Agreement.All(a => a.Same) ? 1 : 0;
        comparison.Failed += e.Error is null ? 0 : 1;
        foreach (var output in e.Agreement)
        {
            comparison.Agreed[output.Output] = comparison.Agreed.GetValueOrDefault(output.Output) + (output.Same ? 1 : 0);
        }

        Histogram.Add(comparison.PrimaryRunMs, e.PrimaryRunMs);
        Histogram.Add(comparison.ShadowRunMs, e.ShadowRunMs);
    }
}
