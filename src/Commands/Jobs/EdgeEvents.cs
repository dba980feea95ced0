namespace CqrsInference.Commands.Jobs;

/// <summary>
/// Version 1 of the events an edge site emits. They are made at the site, stored in the site's own
/// JetStream domain, forwarded to the core when the leaf link is up, and recorded into one Marten
/// event stream per site. Raw data (audio, frames) never leaves the site: only these do.
/// </summary>
public static partial class V1
{
    /// <summary>Speech found in one raw audio item: segment <paramref name="Segment"/> (0-based) of the item.</summary>
    public sealed record EdgeSpeechDetected(
        string Site,
        string ItemId,
        int Segment,
        double StartSeconds,
        double EndSeconds,
        double MeanProbability,
        DateTimeOffset DetectedAt);

    /// <summary>Text read in one raw frame (a single line of text), with its mean character confidence.</summary>
    public sealed record EdgeTextRead(string Site, string ItemId, string Text, double Confidence, DateTimeOffset ReadAt);

    /// <summary>
    /// The site finished one raw item: <paramref name="RawBytes"/> read (and kept at the site),
    /// <paramref name="Events"/> detection events sent for it, totalling <paramref name="EventBytes"/>
    /// on the wire, after <paramref name="BusySeconds"/> of inference. Published after the item's
    /// detection events, so its arrival says the item is complete.
    /// </summary>
    public sealed record EdgeItemProcessed(
        string Site,
        string ItemId,
        string Kind,
        long RawBytes,
        int Events,
        long EventBytes,
        double BusySeconds,
        DateTimeOffset ProcessedAt);

    /// <summary>
    /// The site could not read one raw item: <paramref name="ErrorCode"/> (one of
    /// <see cref="EdgeErrorCodes"/>, or the text model's refusal such as <c>undecodable_image</c>)
    /// and <paramref name="Reason"/> say why. It ends the item, with no detections, as
    /// <see cref="EdgeItemProcessed"/> would (same message id): the item is not tried again.
    /// </summary>
    public sealed record EdgeItemFailed(
        string Site,
        string ItemId,
        string Kind,
        long RawBytes,
        string ErrorCode,
        string Reason,
        DateTimeOffset FailedAt);

    /// <summary>
    /// The edge processor is alive: <paramref name="OnlineSeconds"/> since its previous heartbeat
    /// and <paramref name="BusySeconds"/> of inference in them; <paramref name="Backlog"/> raw items
    /// waiting.
    /// </summary>
    public sealed record EdgeSiteHeartbeat(string Site, string Worker, DateTimeOffset At, double OnlineSeconds, double BusySeconds, int Backlog);
}

/// <summary>Wire names, message ids and event stream ids of the edge events.</summary>
public static class EdgeEventNames
{
    public const string SpeechDetected = "v1.edge_speech_detected";
    public const string TextRead = "v1.edge_text_read";
    public const string ItemProcessed = "v1.edge_item_processed";
    public const string ItemFailed = "v1.edge_item_failed";
    public const string SiteHeartbeat = "v1.edge_site_heartbeat";

    private static readonly Guid SiteNamespace = new("9b7e2d51-0c3a-4f6e-8a1d-2e4c6b8f0a37");

    public static readonly IReadOnlyDictionary<string, Type> Types = new Dictionary<string, Type>
    {
        [SpeechDetected] = typeof(V1.EdgeSpeechDetected),
        [TextRead] = typeof(V1.EdgeTextRead),
        [ItemProcessed] = typeof(V1.EdgeItemProcessed),
        [ItemFailed] = typeof(V1.EdgeItemFailed),
        [SiteHeartbeat] = typeof(V1.EdgeSiteHeartbeat),
    };

    public static string Of(object @event) => @event switch
    {
        V1.EdgeSpeechDetected => SpeechDetected,
        V1.EdgeTextRead => TextRead,
        V1.EdgeItemProcessed => ItemProcessed,
        V1.EdgeItemFailed => ItemFailed,
        V1.EdgeSiteHeartbeat => SiteHeartbeat,
        _ => throw new ArgumentException($"Not an edge event: {@event.GetType().Name}", nameof(@event)),
    };

    public static string SiteOf(object @event) => @event switch
    {
        V1.EdgeSpeechDetected e => e.Site,
        V1.EdgeTextRead e => e.Site,
        V1.EdgeItemProcessed e => e.Site,
        V1.EdgeItemFailed e => e.Site,
        V1.EdgeSiteHeartbeat e => e.Site,
        _ => throw new ArgumentException($"Not an edge event: {@event.GetType().Name}", nameof(@event)),
    };

    /// <summary>
    /// The Nats-Msg-Id of an event, from what it is about (never from when it was made): the same
    /// detection made again after a restart has the same id, so JetStream drops the copy, and the
    /// recorder derives the same Marten event id from it. An item ends once, processed or failed:
    /// both endings share its <c>done</c> id.
    /// </summary>
    public static string MessageId(object @event) => @event switch
    {
        V1.EdgeSpeechDetected e => $"{e.Site}/{e.ItemId}/speech/{e.Segment.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
        V1.EdgeTextRead e => $"{e.Site}/{e.ItemId}/text",
        V1.EdgeItemProcessed e => $"{e.Site}/{e.ItemId}/done",
        V1.EdgeItemFailed e => $"{e.Site}/{e.ItemId}/done",
        V1.EdgeSiteHeartbeat e => $"{e.Site}/heartbeat/{e.Worker}/{e.At.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
        _ => throw new ArgumentException($"Not an edge event: {@event.GetType().Name}", nameof(@event)),
    };

    /// <summary>The Marten event stream of an edge site.</summary>
    public static Guid SiteStreamId(string site) => DeterministicGuid.Create(SiteNamespace, site);

    /// <summary>The Marten event id of an edge event: one per message id, so a copy is recorded once.</summary>
    public static Guid EventId(object @event) => DeterministicGuid.Create(SiteStreamId(SiteOf(@event)), MessageId(@event));

    /// <summary>Site names become a JetStream domain, a stream name and a subject token: keep them plain.</summary>
    public static bool IsValidSite(string? site) =>
        !string.IsNullOrEmpty(site) && site.Length <= 32 && site.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}
