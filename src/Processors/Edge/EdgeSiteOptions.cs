using System.ComponentModel.DataAnnotations;

namespace CqrsInference.Processors.Edge;

/// <summary>The edge processor's settings (<c>EdgeSite</c>); <c>Nats:Url</c> points at the site's own nats-server.</summary>
internal sealed class EdgeSiteOptions
{
    /// <summary>The site's name: its JetStream domain, its stream <c>EDGE_&lt;name&gt;</c> and its subjects.</summary>
    public string Name { get; set; } = "";

    /// <summary>
    /// Where the raw feed lands, processed in name order: 16-bit PCM WAV audio (8 to 384 kHz, 1 to
    /// 32 channels; speech detection) and PNG/JPEG frames of one line of text (text reading). A file
    /// is taken once it has settled (<see cref="SettleTime"/>); writing it elsewhere and renaming it
    /// in is safest.
    /// </summary>
    public string InputDirectory { get; set; } = "";

    /// <summary>
    /// A file in the input folder is taken once it has not changed for this long (its write time, or
    /// its length and write time as this process saw them), so a file still being written in place
    /// is not read half-written; 0 takes every file at once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan SettleTime { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Where the durable checkpoint (the items done) lives; survives restarts of the processor.</summary>
    public string StateDirectory { get; set; } = "";

    /// <summary>
    /// Also take raw items published over MQTT to <c>cqrsi/&lt;site&gt;/raw/&lt;wav|png|jpg&gt;/&lt;item&gt;</c>
    /// (QoS 1); the site's nats-server needs an <c>mqtt</c> listener. They wait in the site's
    /// <c>RAW_&lt;site&gt;</c> work queue until processed.
    /// </summary>
    public bool Mqtt { get; set; }

    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A site whose loop has not moved for this long (no item taken up or finished, no look for new
    /// ones) reads unhealthy on <c>/health</c>; longer than the longest item's run and than
    /// <see cref="PollInterval"/>.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan StallAfter { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>What is wrong with these settings together, or null.</summary>
    public static string? Problem(EdgeSiteOptions options) =>
        options.StallAfter <= options.PollInterval ? $"EdgeSite:StallAfter ({options.StallAfter}) must be longer than EdgeSite:PollInterval ({options.PollInterval})." : null;

    /// <summary>Window in which the site's stream drops a republished message id (a redone item).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan DuplicateWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long the site keeps its events: the longest outage it can ride out.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan StreamMaxAge { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Speech probability at which a segment starts.</summary>
    [Range(0.0, 1.0)]
    public float Threshold { get; set; } = 0.5f;

    /// <summary>Silence that ends a segment.</summary>
    public TimeSpan MinSilence { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Shorter segments are dropped as noise.</summary>
    public TimeSpan MinSpeech { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The manifest model that finds speech in audio.</summary>
    public string Model { get; set; } = "silero-vad";

    /// <summary>The manifest model that reads text in frames (loaded at the first frame).</summary>
    public string TextModel { get; set; } = "ppocr-rec";

    /// <summary>Text read with a lower mean character confidence is not reported.</summary>
    [Range(0.0, 1.0)]
    public double MinTextConfidence { get; set; } = 0.5;

    /// <summary>A larger raw item is not read: it is recorded as failed (<c>item_too_large</c>).</summary>
    [Range(1L, long.MaxValue)]
    public long MaxItemBytes { get; set; } = 128L * 1024 * 1024;
}
