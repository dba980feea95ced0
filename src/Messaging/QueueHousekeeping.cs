using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

/// <summary>
/// Keeps the queues' consumers in step with the work queue. A queue's consumer is made on its first
/// job and kept while it is used; one that has held nothing for <see cref="TopologyOptions.QueueIdleAfter"/>
/// is deleted, so queues do not pile up. A queue that holds jobs without a consumer (its consumer
/// was retired just as a job arrived, or deleted by hand) is found by comparing the stream's count
/// with the consumers' counts, and its consumer is made again: no job is left where no processor
/// looks. Run by the API role every few seconds (idempotent; several instances may run it).
/// </summary>
public sealed class QueueHousekeeping(INatsJSContext js, JobQueues queues, TopologyOptions options, TimeProvider clock)
{
    private readonly Dictionary<string, DateTimeOffset> _emptySince = [];
    private int _unaccountedRounds;

    /// <summary>One round: the queues made again, and those retired.</summary>
    public async Task<(int Restored, int Retired)> RunAsync(CancellationToken ct)
    {
        // The stream's count first: jobs arriving meanwhile only raise the consumers' counts.
        var stored = (long)(await js.GetStreamAsync(NatsTopology.JobsStream, cancellationToken: ct)).Info.State.Messages;
        var states = await queues.ListAsync(model: null, ct);
        _unaccountedRounds = stored > states.Sum(q => q.Waiting + q.InFlight) ? _unaccountedRounds + 1 : 0;

        // Twice in a row, so that jobs acknowledged between the two reads do not start a search.
        var restored = _unaccountedRounds >= 2 ? await RestoreOrphansAsync(states, ct) : 0;
        var retired = await RetireIdleAsync(states, ct);
        return (restored, retired);
    }

    private async Task<int> RestoreOrphansAsync(IReadOnlyList<QueueState> states, CancellationToken ct)
    {
        _unaccountedRounds = 0;

        // Some jobs are in no queue's count: list the stored subjects (one per job) to find their queues.
        var detailed = await js.GetStreamAsync(NatsTopology.JobsStream, new StreamInfoRequest { SubjectsFilter = LogSubjects.AllJobs }, ct);
        var known = states.Select(q => q.Queue).ToHashSet();
        var orphaned = (detailed.Info.State.Subjects ?? new Dictionary<string, long>()).Keys
            .Select(subject => JobQueue.TryParse(subject, out var queue) ? queue : null)
            .OfType<JobQueue>()
            .Where(queue => !known.Contains(queue))
            .Distinct()
            .ToList();
        foreach (var queue in orphaned)
        {
            await queues.EnsureAsync(queue, ct, recreate: true);
        }

        return orphaned.Count;
    }

    private async Task<int> RetireIdleAsync(IReadOnlyList<QueueState> states, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var retired = 0;
        foreach (var state in states)
        {
            var name = state.Queue.ConsumerName;
            if (state.Waiting + state.InFlight > 0)
            {
                _emptySince.Remove(name);
                continue;
            }

            if (!_emptySince.TryGetValue(name, out var since))
            {
                _emptySince[name] = now;
            }
            else if (now - since >= options.QueueIdleAfter)
            {
                await queues.RetireAsync(state.Queue, ct);
                _emptySince.Remove(name);
                retired++;
            }
        }

        foreach (var gone in _emptySince.Keys.Except(states.Select(s => s.Queue.ConsumerName)).ToList())
        {
            _emptySince.Remove(gone);
        }

        return retired;
    }
}
