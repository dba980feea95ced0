using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Tests.Infrastructure;

public static class JobMessages
{
    /// <summary>
    /// Messages of jobs and their lifecycle in a stream, leaving out the processors' capacity
    /// facts (<c>events.processors</c>), which arrive on their own schedule.
    /// </summary>
    public static async Task<long> CountAsync(INatsJSContext js, string stream)
    {
        var info = await js.GetStreamAsync(stream, new StreamInfoRequest { SubjectsFilter = ">" });
        return (info.Info.State.Subjects ?? new Dictionary<string, long>())
            .Where(s => s.Key != Commands.Messaging.NatsTopology.ProcessorSubject)
            .Sum(s => s.Value);
    }
}
