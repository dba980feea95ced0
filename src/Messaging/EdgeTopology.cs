using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// The JetStream layout of edge sites. Each site runs its own nats-server, a leaf node of the core
/// with its own JetStream domain (the site's name), and keeps its events in stream
/// <c>EDGE_&lt;site&gt;</c> (subjects <c>edge.&lt;site&gt;.&gt;</c>, which the core's CQRSI_EVENTS
/// does not capture, so leaf interest cannot deliver them a second way). The core's
/// <c>CQRSI_EDGE</c> stream sources every configured site's stream through the site's domain API
/// (<c>$JS.&lt;site&gt;.API</c>), filtered to the site's own subjects so that a site cannot pass
/// off messages as another's: JetStream forwards what the site stored while the link was down
/// once it is up again, from where it left off. Kept apart from <see cref="NatsTopology"/> so that
/// rewriting the core streams never drops the sources.
/// </summary>
public sealed class EdgeTopology(INatsJSContext js, EdgeOptions options, TopologyOptions topology)
{
    /// <summary>The core stream that sources every edge site's stream.</summary>
    public const string CoreStream = "CQRSI_EDGE";

    /// <summary>The durable consumer the edge recorder reads <see cref="CoreStream"/> with.</summary>
    public const string RecorderConsumer = "edge_recorder";

    public static string SiteStream(string site) => $"EDGE_{site}";

    public static string SiteSubjects(string site) => $"edge.{site}.>";

    public static string Subject(string site, string kind) => $"edge.{site}.{kind}";

    /// <summary>The site a subject <c>edge.&lt;site&gt;.&lt;kind&gt;</c> belongs to, or null when it is not one.</summary>
    public static string? SiteOfSubject(string subject)
    {
        var tokens = subject.Split('.');
        return tokens.Length == 3 && tokens[0] == "edge" && EdgeEventNames.IsValidSite(tokens[1]) && tokens[2].Length > 0 ? tokens[1] : null;
    }

    /// <summary>The core stream's window for message ids: short (the recorder drops copies itself), so that a copy holds up a site's sourcing for a second at most.</summary>
    public static readonly TimeSpan DuplicateWindow = TimeSpan.FromSeconds(1);

    /// <summary>The JetStream API of a site's domain, as the core reaches it over the leaf connection.</summary>
    public static string DomainApi(string site) => $"$JS.{site}.API";

    public EdgeOptions Options => options;

    /// <summary>
    /// Creates or updates <see cref="CoreStream"/> with one source per configured site, taking from
    /// the site's domain only <see cref="SiteSubjects"/>: what a site's stream holds under another
    /// site's subjects never reaches the core. Safe on every start.
    /// </summary>
    public async Task EnsureCoreAsync(CancellationToken ct)
    {
        if (options.Sites.Count == 0)
        {
            return;
        }

        var invalid = options.Sites.Where(s => !EdgeEventNames.IsValidSite(s.Name)).Select(s => s.Name).ToList();
        if (invalid.Count > 0)
        {
            throw new InvalidOperationException($"Edge:Sites names must be 1-32 letters, digits, '-' or '_'; got '{string.Join("', '", invalid)}'.");
        }

        await js.CreateOrUpdateStreamAsync(
            new StreamConfig
            {
                Name = CoreStream,
                Retention = StreamConfigRetention.Limits,
                Storage = StreamConfigStorage.File,
                MaxAge = topology.EventsMaxAge,

                // Like the event log: a site's event no recorder has recorded is never dropped for room.
                MaxBytes = StreamLimits.Bytes(topology.EventsMaxBytes),
                Discard = StreamConfigDiscard.New,

                // A second copy of a message id in a site's stream (an item redone after the site's
                // own window, 24 h) held up the sourcing of that whole site for this stream's window
                // (2 min by default) per copy: "msgid is duplicate", retried. The recorder drops copies
                // by their Marten ids, so this stream's own window only needs to be short.
                DuplicateWindow = DuplicateWindow,
                Sources = options.Sites.Select(s => new StreamSource
                {
                    Name = SiteStream(s.Name),
                    FilterSubject = SiteSubjects(s.Name),
                    External = new ExternalStreamSource { Api = DomainApi(s.Name) },
                }).ToList(),
                Description = "Events of every edge site, sourced from the sites' own domains: the edge recorder's source.",
            },
            ct);
    }

    /// <summary>Creates or updates a site's own stream, on the site's nats-server (its JetStream domain).</summary>
    public static async Task<INatsJSStream> EnsureSiteAsync(INatsJSContext siteJs, string site, TimeSpan duplicateWindow, TimeSpan maxAge, CancellationToken ct)
    {
        return await siteJs.CreateOrUpdateStreamAsync(
            new StreamConfig(SiteStream(site), [SiteSubjects(site)])
            {
                Retention = StreamConfigRetention.Limits,
                Storage = StreamConfigStorage.File,
                DuplicateWindow = duplicateWindow,
                MaxAge = maxAge,
                Description = $"Events of edge site {site}: stored here while the link to the core is down, sourced by the core's {CoreStream}.",
            },
            ct);
    }

    /// <summary>The site's raw input that arrives over MQTT: topic <c>cqrsi/&lt;site&gt;/raw/&lt;wav|png|jpg&gt;/&lt;item&gt;</c>.</summary>
    public static string RawStream(string site) => $"RAW_{site}";

    public static string RawSubjects(string site) => $"cqrsi.{site}.raw.>";

    /// <summary>The durable consumer an earlier version read <see cref="RawStream"/> with (deleted where found).</summary>
    public const string LegacyRawConsumer = "edge_raw";

    /// <summary>
    /// Creates the site's raw-input work queue on the site's nats-server, which converts MQTT
    /// publishes on <c>cqrsi/&lt;site&gt;/raw/…</c> into these subjects. It lives in the site's
    /// domain only (the core sources nothing from it) and a raw item leaves it when the processor
    /// deletes it, after the item's events are stored: raw data never leaves the site and does not
    /// pile up there. The processor reads it by sequence (the stream's message get), not through a
    /// consumer: a delivery carries the subject in its protocol line, where an MQTT topic's control
    /// characters (kept in the subject by nats-server) broke the client's connection at every
    /// delivery; a message get carries it inside its JSON answer.
    /// </summary>
    public static async Task<INatsJSStream> EnsureRawAsync(INatsJSContext siteJs, string site, TimeSpan maxAge, CancellationToken ct)
    {
        var stream = await siteJs.CreateOrUpdateStreamAsync(
            new StreamConfig(RawStream(site), [RawSubjects(site)])
            {
                Retention = StreamConfigRetention.Workqueue,
                Storage = StreamConfigStorage.File,
                MaxAge = maxAge,
                Description = $"Raw sensor input of edge site {site} (over MQTT), until the site's processor has processed it.",
            },
            ct);
        try
        {
            await siteJs.DeleteConsumerAsync(RawStream(site), LegacyRawConsumer, ct);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            // None: a site made by this version.
        }

        return stream;
    }

    /// <summary>
    /// Publishes an edge event to the site's stream and waits until it is stored (a duplicate counts
    /// as stored). Returns the bytes it put on the wire (subject, headers and body) and the sequence
    /// the site's stream stored it at.
    /// </summary>
    public static Task<(long Bytes, ulong Sequence)> PublishAsync(INatsJSContext siteJs, object @event, string kind, CancellationToken ct)
    {
        var type = EdgeEventNames.Of(@event);
        var payload = JsonSerializer.SerializeToUtf8Bytes(@event, EdgeEventNames.Types[type], EdgeJson.Default);
        return EventWire.PublishAsync(siteJs, Subject(EdgeEventNames.SiteOf(@event), kind), EventWire.Headers(type, trace: null), payload, EdgeEventNames.MessageId(@event), retryAttempts: 4, ct);
    }

    /// <summary>The edge event a message carries, or null when it carries none this version knows.</summary>
    public static object? Decode(NatsHeaders? headers, byte[]? data) =>
        EventWire.TypeOf(headers) is { } type && EdgeEventNames.Types.TryGetValue(type, out var clr) && data is not null
            ? JsonSerializer.Deserialize(data, clr, EdgeJson.Default)
            : null;
}

/// <summary>The core's list of edge sites (<c>Edge:Sites</c>).</summary>
public sealed class EdgeOptions
{
    public List<EdgeSiteEntry> Sites { get; set; } = [];
}

/// <summary>An edge site as the core knows it: its name (= its JetStream domain) and the tenant whose auditors see it.</summary>
public sealed class EdgeSiteEntry
{
    public string Name { get; set; } = "";

    public string Tenant { get; set; } = "default";
}
