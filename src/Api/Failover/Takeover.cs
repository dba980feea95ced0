using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Failover;

/// <summary>
/// A takeover by this API's region (<c>Submit:Region</c>, the survivor) of a lost region's streams,
/// as the operator's <c>POST /v1/admin/failover</c> and the automatic takeover
/// (<c>Failover:TakeOverAfter</c>) both run it: the state checks, then
/// <see cref="RegionFailover.TakeOverAsync(string, Func{CancellationToken, Task}, IRecorderCheckpoints?, CancellationToken)"/>
/// with the recorders' checkpoints moved. One runs at a time in the whole super-cluster: the
/// runner claims it first (<see cref="RegionFailover.LockAsync"/>; a takeover that fails gives the
/// claim back, one cut short holds it for <see cref="RegionFailover.LockFor"/>).
/// </summary>
internal sealed class Takeover(INatsJSContext js, NatsTopology topology, IRecorderCheckpoints checkpoints, SubmitOptions submit)
{
    /// <summary>What a takeover came to: the report, or why it was refused (<see cref="Refusal.Status"/> 409 or 503).</summary>
    public sealed record Outcome(RegionFailover.TakeoverReport? Report, Refusal? Refused);

    public sealed record Refusal(int Status, string Title, string Detail);

    public string Survivor => submit.Region;

    public async Task<Outcome> RunAsync(string lost, CancellationToken ct)
    {
        if (await StateRefusalAsync(lost, ct) is { } state)
        {
            return new(null, state);
        }

        var failover = new RegionFailover(js);
        try
        {
            if (await failover.LockAsync(lost, $"{Survivor}:{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}", ct) is { } holder)
            {
                return new(null, new(409, "Already running", $"A takeover of region {lost} is running or ran in the last {RegionFailover.LockFor.TotalMinutes:0} minutes ({holder})."));
            }

            var done = false;
            try
            {
                var report = await failover.TakeOverAsync(Survivor, topology.EnsureAsync, checkpoints, ct);
                done = true;
                return new(report, null);
            }
            finally
            {
                if (!done)
                {
                    await failover.UnlockAsync(lost, CancellationToken.None);
                }
            }
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == 10008)
        {
            return new(null, new(503, "JetStream has no majority", $"The JetStream metadata answers '{e.Error.Description}': a takeover needs a majority of the super-cluster's servers (a third region, a witness)."));
        }
    }

    /// <summary>Whether the super-cluster's state allows the takeover (409 when not): the log must not answer from the lost region, and a mirror must be here.</summary>
    private async Task<Refusal?> StateRefusalAsync(string lost, CancellationToken ct)
    {
        var (home, logCreated) = await HomeAsync(js, TimeSpan.FromSeconds(5), ct);
        var failover = new RegionFailover(js);
        if (home == "")
        {
            return new(409, "Not a super-cluster", "The log's servers answer and form no cluster: there is no other region to take over in.");
        }

        if (home == Survivor)
        {
            return await failover.IsTakeoverSourceAsync(Survivor, logCreated, ct)
                ? new(409, "Takeover running", $"A takeover into region {Survivor} is still copying its mirrors into the new log and buckets.")
                : new(409, "Takeover already done", $"The log lives in region {Survivor} already.");
        }

        if (home == lost)
        {
            return new(409, "Region not lost", $"Region {lost}'s servers still answer for the log: a takeover is refused while the home answers (it would split the books).");
        }

        if (home is not null)
        {
            return new(409, "Region is not the home", $"The log lives in region {home}, not {lost}.");
        }

        return await failover.HasLogMirrorAsync(Survivor, ct)
            ? null
            : new(409, "No standby copy here", $"Region {Survivor} keeps no mirror of the log ({RegionFailover.MirrorOf(NatsTopology.EventsStream, Survivor)}): nothing to take over from.");
    }

    /// <summary>
    /// The region whose servers answer for the log, and when the log was made; "" for a server that
    /// is no cluster; null when none answers within <paramref name="patience"/> (its servers are
    /// lost, or it was forgotten by a takeover cut short).
    /// </summary>
    public static async Task<(string? Region, DateTimeOffset Created)> HomeAsync(INatsJSContext js, TimeSpan patience, CancellationToken ct)
    {
        using var within = CancellationTokenSource.CreateLinkedTokenSource(ct);
        within.CancelAfter(patience);
        try
        {
            var info = (await js.GetStreamAsync(NatsTopology.EventsStream, cancellationToken: within.Token)).Info;
            return (info.Cluster is null ? "" : info.Cluster.Leader is { Length: > 0 } ? info.Cluster.Name : null, info.Created);
        }
        catch (Exception e) when (e is NatsException or TimeoutException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return (null, default);
        }
    }
}
