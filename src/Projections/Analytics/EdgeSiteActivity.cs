using System.Globalization;
using CqrsInference.Commands.Jobs;
using Marten.Events.Aggregation;
using Marten.Events.Projections;

namespace CqrsInference.Projections.Analytics;

/// <summary>
/// One edge site's activity in one hour: raw items processed (and those that could not be read), what was found in them (speech
/// segments in audio, lines of text in frames), raw bytes kept at the site against event bytes
/// sent to the core (the bandwidth saved), and utilization (busy inference seconds over online
/// seconds).
/// </summary>
public sealed class EdgeSiteActivity
{
    public string Id { get; set; } = "";

    public DateTimeOffset Hour { get; set; }

    public string Site { get; set; } = "";

    public long Items { get; set; }

    /// <summary>Raw items the site could not read (<see cref="V1.EdgeItemFailed"/>); not in <see cref="Items"/>.</summary>
    public long FailedItems { get; set; }

    public long SpeechSegments { get; set; }

    public double SpeechSeconds { get; set; }

    public long TextReads { get; set; }

    public long RawBytes { get; set; }

    public long EventBytes { get; set; }

    /// <summary>Inference seconds, from the items (each counted once).</summary>
    public double BusySeconds { get; set; }

    /// <summary>Seconds the site's processor was up, from its heartbeats.</summary>
    public double OnlineSeconds { get; set; }

    public static string Key(DateTimeOffset at, string site) =>
        $"{UsageBucket.HourOf(at).ToString("yyyyMMddHH", CultureInfo.InvariantCulture)}|{site}";
}

/// <summary>Async roll-up of the edge events into <see cref="EdgeSiteActivity"/>.</summary>
public sealed class EdgeSiteActivityProjection : MultiStreamProjection<EdgeSiteActivity, string>
{
    public EdgeSiteActivityProjection()
    {
        Identity<V1.EdgeItemProcessed>(e => EdgeSiteActivity.Key(e.ProcessedAt, e.Site));
        Identity<V1.EdgeItemFailed>(e => EdgeSiteActivity.Key(e.FailedAt, e.Site));
        Identity<V1.EdgeSpeechDetected>(e => EdgeSiteActivity.Key(e.DetectedAt, e.Site));
        Identity<V1.EdgeTextRead>(e => EdgeSiteActivity.Key(e.ReadAt, e.Site));
        Identity<V1.EdgeSiteHeartbeat>(e => EdgeSiteActivity.Key(e.At, e.Site));
    }

    public static void Apply(V1.EdgeItemProcessed e, EdgeSiteActivity activity)
    {
        (activity.Hour, activity.Site) = (UsageBucket.HourOf(e.ProcessedAt), e.Site);
        activity.Items++;
        activity.RawBytes += e.RawBytes;
        activity.EventBytes += e.EventBytes;
        activity.BusySeconds += e.BusySeconds;
    }

    public static void Apply(V1.EdgeItemFailed e, EdgeSiteActivity activity)
    {
        (activity.Hour, activity.Site) = (UsageBucket.HourOf(e.FailedAt), e.Site);
        activity.FailedItems++;
    }

    public static void Apply(V1.EdgeSpeechDetected e, EdgeSiteActivity activity)
    {
        (activity.Hour, activity.Site) = (UsageBucket.HourOf(e.DetectedAt), e.Site);
        activity.SpeechSegments++;
        activity.SpeechSeconds += e.EndSeconds - e.StartSeconds;
    }

    public static void Apply(V1.EdgeTextRead e, EdgeSiteActivity activity)
    {
        (activity.Hour, activity.Site) = (UsageBucket.HourOf(e.ReadAt), e.Site);
        activity.TextReads++;
    }

    public static void Apply(V1.EdgeSiteHeartbeat e, EdgeSiteActivity activity)
    {
        (activity.Hour, activity.Site) = (UsageBucket.HourOf(e.At), e.Site);
        activity.OnlineSeconds += e.OnlineSeconds;
    }
}

/// <summary>Each edge site as the core last heard of it (inline, per site stream).</summary>
public sealed record EdgeSiteStatus(
    Guid Id,
    string Site,
    DateTimeOffset FirstSeen,
    DateTimeOffset LastSeen,
    long Items,
    long SpeechSegments,
    long TextReads,
    long RawBytes,
    long EventBytes,
    int Backlog,
    long FailedItems = 0);

public sealed class EdgeSiteStatusProjection : SingleStreamProjection<EdgeSiteStatus, Guid>
{
    public static EdgeSiteStatus Create(V1.EdgeItemProcessed e) =>
        new(EdgeEventNames.SiteStreamId(e.Site), e.Site, e.ProcessedAt, e.ProcessedAt, 1, 0, 0, e.RawBytes, e.EventBytes, 0);

    public static EdgeSiteStatus Create(V1.EdgeItemFailed e) =>
        new(EdgeEventNames.SiteStreamId(e.Site), e.Site, e.FailedAt, e.FailedAt, 0, 0, 0, 0, 0, 0, FailedItems: 1);

    public static EdgeSiteStatus Create(V1.EdgeSpeechDetected e) =>
        new(EdgeEventNames.SiteStreamId(e.Site), e.Site, e.DetectedAt, e.DetectedAt, 0, 1, 0, 0, 0, 0);

    public static EdgeSiteStatus Create(V1.EdgeTextRead e) =>
        new(EdgeEventNames.SiteStreamId(e.Site), e.Site, e.ReadAt, e.ReadAt, 0, 0, 1, 0, 0, 0);

    public static EdgeSiteStatus Create(V1.EdgeSiteHeartbeat e) =>
        new(EdgeEventNames.SiteStreamId(e.Site), e.Site, e.At, e.At, 0, 0, 0, 0, 0, e.Backlog);

    public static EdgeSiteStatus Apply(V1.EdgeItemProcessed e, EdgeSiteStatus current) =>
        current with { LastSeen = Later(current.LastSeen, e.ProcessedAt), Items = current.Items + 1, RawBytes = current.RawBytes + e.RawBytes, EventBytes = current.EventBytes + e.EventBytes };

    public static EdgeSiteStatus Apply(V1.EdgeItemFailed e, EdgeSiteStatus current) =>
        current with { LastSeen = Later(current.LastSeen, e.FailedAt), FailedItems = current.FailedItems + 1 };

    public static EdgeSiteStatus Apply(V1.EdgeSpeechDetected e, EdgeSiteStatus current) =>
        current with { LastSeen = Later(current.LastSeen, e.DetectedAt), SpeechSegments = current.SpeechSegments + 1 };

    public static EdgeSiteStatus Apply(V1.EdgeTextRead e, EdgeSiteStatus current) =>
        current with { LastSeen = Later(current.LastSeen, e.ReadAt), TextReads = current.TextReads + 1 };

    public static EdgeSiteStatus Apply(V1.EdgeSiteHeartbeat e, EdgeSiteStatus current) =>
        current with { LastSeen = Later(current.LastSeen, e.At), Backlog = e.Backlog };

    private static DateTimeOffset Later(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;
}
