using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Retrying;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// Finds a job's queue message again in the event log, for a retry: the log keeps every submission
/// (<c>log.&lt;p&gt;.jobs.….&lt;job&gt;</c>, or <c>log.&lt;p&gt;.served.…</c> for a job served
/// interactively) for <c>Topology:EventsMaxAge</c>, with its inline inputs or its claim-check reference.
/// The partition is the server's to choose, so the stream is asked which subjects hold the job, then
/// for the last message of each; the latest is the job's current series.
/// </summary>
public sealed class NatsQueuedJobs(INatsJSContext js) : IQueuedJobs
{
    public async Task<JobCommand?> FindAsync(Guid jobId, CancellationToken ct)
    {
        var filter = $"{LogSubjects.Root}.*.*.*.*.*.*.{jobId:N}";
        var stream = await js.GetStreamAsync(NatsTopology.EventsStream, new StreamInfoRequest { SubjectsFilter = filter }, ct);
        StoredMessage? latest = null;
        foreach (var subject in stream.Info.State.Subjects?.Keys ?? [])
        {
            if (!LogSubjects.IsJob(subject))
            {
                continue;
            }

            try
            {
                var found = await stream.GetAsync(new StreamMsgGetRequest { LastBySubj = subject }, ct);
                latest = latest is null || found.Message.Seq > latest.Seq ? found.Message : latest;
            }
            catch (NatsJSApiException e) when (e.Error.Code == 404)
            {
                // Removed by the log's retention since the subjects were listed.
            }
        }

        return latest?.Data is { } data ? JsonSerializer.Deserialize(Decode(data), WireJson.Default.JobCommand) : null;
    }

    /// <summary>A stored message's data as the stream answered it (base64 in JSON).</summary>
    internal static byte[] Decode(object data) => data switch
    {
        string base64 => Convert.FromBase64String(base64),
        ReadOnlyMemory<byte> bytes => bytes.ToArray(),
        byte[] bytes => bytes,
        _ => throw new InvalidDataException($"Unexpected stored message data {data.GetType().Name}."),
    };
}
