using System.Globalization;
using NATS.Client.Core;

namespace CqrsInference.Messaging;

/// <summary>
/// Learns which partitions the server maps the log into: publishes probes to
/// <c>cqrsi.partitions.&lt;random&gt;</c>, which the server maps like the log, and reads the partition
/// token of each as it comes back to its own subscription (core NATS, nothing stored).
/// </summary>
public static class PartitionProbe
{
    private const int Probes = 64;

    public static async Task VerifyAsync(INatsConnection nats, int partitions, CancellationToken ct)
    {
        var seen = await SeenAsync(nats, ct);
        if (seen.Count == 0)
        {
            throw new InvalidOperationException(
                "The nats-server maps no partitions: its configuration lacks the log's subject mappings (LogSubjects.ServerMappings; "
                + "scripts/lib.sh writes them). Without them no job can be published.");
        }

        if (seen.Max() >= partitions)
        {
            throw new InvalidOperationException(
                $"The nats-server maps the log into partitions up to {seen.Max()}, but Topology:Partitions is {partitions}: "
                + "the events of the partitions above would never be recorded. Set both to the same number.");
        }
    }

    private static async Task<SortedSet<int>> SeenAsync(INatsConnection nats, CancellationToken ct)
    {
        var seen = new SortedSet<int>();
        await using var replies = await nats.SubscribeCoreAsync<byte[]>($"{LogSubjects.ProbePrefix}.*.*", cancellationToken: ct);
        for (var i = 0; i < Probes; i++)
        {
            await nats.PublishAsync($"{LogSubjects.ProbePrefix}.{Guid.NewGuid():N}", cancellationToken: ct);
        }

        using var window = CancellationTokenSource.CreateLinkedTokenSource(ct);
        window.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            var received = 0;
            await foreach (var msg in replies.Msgs.ReadAllAsync(window.Token))
            {
                if (int.TryParse(msg.Subject.Split('.')[2], NumberStyles.None, CultureInfo.InvariantCulture, out var partition))
                {
                    seen.Add(partition);
                }

                if (++received == Probes)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // What came back in the window is the answer.
        }

        return seen;
    }
}
