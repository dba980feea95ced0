using System.Text;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Cancelling;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// Cancelling a job a processor holds, on NATS: the claim in <see cref="JobClaims"/>, the ending on
/// the event log under the job's terminal message id (<see cref="JobLifecycle.MessageId"/>), and the
/// abort signal on core NATS, <c>cqrsi.abort.&lt;region&gt;.&lt;model&gt;.&lt;job&gt;</c> with the attempt series
/// in <see cref="SeriesHeader"/> (a retry's run is not the cancelled one's), which every
/// processor hears (<see cref="AllSubjects"/>; a job may run outside its region). The signal is not
/// stored: a processor that misses it runs the job to its end and its ending is dropped as a
/// duplicate, and a delivery that comes again finds the claim.
/// </summary>
public sealed class NatsRunCancels(INatsJSContext js, JobClaims claims) : IRunCancels
{
    public const string Prefix = "cqrsi.abort";

    /// <summary>The header an abort names the cancelled attempt series with (absent: the first).</summary>
    public const string SeriesHeader = "Cqrsi-Series";

    /// <summary>What a processor subscribes to: every abort.</summary>
    public const string AllSubjects = Prefix + ".>";

    private INatsJSStream? _log;

    public static string Subject(JobRoute job, Guid jobId) => $"{Prefix}.{job.Region}.{job.Model}.{jobId:N}";

    /// <summary>The job an abort subject names, or false.</summary>
    public static bool TryParse(string subject, out Guid jobId)
    {
        jobId = Guid.Empty;
        return subject.StartsWith(Prefix + ".", StringComparison.Ordinal) && Guid.TryParseExact(subject[(subject.LastIndexOf('.') + 1)..], "N", out jobId);
    }

    /// <summary>The attempt series an abort names (its <see cref="SeriesHeader"/>), or null: an abort of an older API, which names none.</summary>
    public static int? SeriesOf(NATS.Client.Core.NatsHeaders? headers) =>
        headers is not null && headers.TryGetValue(SeriesHeader, out var value)
            && int.TryParse(value.ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var series) && series > 0
            ? series
            : null;

    public Task MarkCancelledAsync(Guid jobId, int series, CancellationToken ct) => claims.MarkCancelledAsync(jobId, series, ct);

    public async Task<object> EndAsync(JobRoute job, object terminal, CancellationToken ct)
    {
        var type = EventNames.Of(terminal);
        var ack = await js.PublishAsync(
            LogSubjects.JobEvent(job.Region, job.Model, EventNames.JobIdOf(terminal)),
            JsonSerializer.SerializeToUtf8Bytes(terminal, EventNames.Types[type], WireJson.Default),
            headers: EventWire.Headers(type, trace: null),
            opts: new NatsJSPubOpts { MsgId = JobLifecycle.MessageId(terminal), RetryAttempts = 20, RetryWaitBetweenAttempts = TimeSpan.FromMilliseconds(500) },
            cancellationToken: ct);
        ack.EnsureStored();

        // A duplicate's acknowledgement names the sequence of the message stored under the id first:
        // that one is the job's ending (possibly this very event, published before by a retry).
        return ack.Duplicate ? await StoredAsync(ack.Seq, ct) ?? terminal : terminal;
    }

    public async Task AbortRunAsync(JobRoute job, Guid jobId, CancellationToken ct) =>
        await js.Connection.PublishAsync(
            Subject(job, jobId),
            headers: new NATS.Client.Core.NatsHeaders { [SeriesHeader] = job.Series.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            cancellationToken: ct);

    private async Task<object?> StoredAsync(ulong sequence, CancellationToken ct)
    {
        var log = _log ??= await js.GetStreamAsync(NatsTopology.EventsStream, cancellationToken: ct);
        var stored = (await log.GetAsync(new StreamMsgGetRequest { Seq = sequence }, ct)).Message;
        var type = TypeOf(stored.Hdrs);
        return type is not null && EventNames.Types.TryGetValue(type, out var clr)
            ? JsonSerializer.Deserialize(stored.Data.Span, clr, WireJson.Default)
            : null;
    }

    /// <summary>The event's wire name in a stored message's raw headers (<c>NATS/1.0\r\nName: value\r\n…</c>).</summary>
    private static string? TypeOf(string? rawHeaders)
    {
        if (rawHeaders is null)
        {
            return null;
        }

        var text = Encoding.UTF8.GetString(Convert.FromBase64String(rawHeaders));
        return text.Split("\r\n")
            .Where(line => line.StartsWith(NatsTopology.EventTypeHeader + ":", StringComparison.OrdinalIgnoreCase))
            .Select(line => line[(NatsTopology.EventTypeHeader.Length + 1)..].Trim())
            .FirstOrDefault();
    }
}
