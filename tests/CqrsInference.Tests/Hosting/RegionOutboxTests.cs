using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Tests.Infrastructure;
using NATS.Net;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// The region's hold of jobs while the log's region is lost (<see cref="RegionOutbox"/>), against a
/// real one-server region named west (and a witness): held once (a retry is a duplicate), found, a key's second
/// body a conflict (held here, or claimed in the home and mirrored here), forwarded and taken off,
/// and kept when forwarding fails.
/// </summary>
public sealed class RegionOutboxTests
{
    [Fact]
    public async Task Jobs_are_held_once_found_forwarded_and_a_key_with_another_body_is_a_conflict()
    {
        var (server, witness) = await StartAsync();
        await using var westServer = server;
        await using var witnessServer = witness;
        await using var nats = new NatsClient(server.Url);
        var js = nats.CreateJetStreamContext();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var outbox = new RegionOutbox(js, "west");
        await outbox.EnsureAsync(replicas: 1, maxJobs: 100, stop.Token);

        var plain = Job();
        var first = await outbox.HoldAsync(plain, digest: null, stop.Token);
        (first.Duplicate, first.Conflict, first.Bytes > 0).ShouldBe((false, false, true));
        (await outbox.HoldAsync(plain, null, stop.Token)).ShouldBe(first with { Duplicate = true }, "a retried hold is a duplicate");
        (await outbox.FindAsync(plain.JobId, stop.Token))!.Value.Job.JobId.ShouldBe(plain.JobId);

        var keyed = Job();
        var held = await outbox.HoldAsync(keyed, "mine", stop.Token);
        held.Duplicate.ShouldBeFalse();
        (await outbox.HoldAsync(keyed, "mine", stop.Token)).ShouldBe(held with { Duplicate = true }, "the same body again is a retry");
        (await outbox.HoldAsync(keyed, "theirs", stop.Token)).Conflict.ShouldBeTrue("another body under a held key");

        // A key the home claimed before it was lost, as this region's mirror of the claims has it.
        await IdempotencyClaims.EnsureBucketAsync(js, stop.Token);
        await new RegionFailover(js).EnsureStandbyAsync(["west"], 1, stop.Token);
        var claimed = Job();
        await new IdempotencyClaims(js).ClaimAsync(claimed.JobId, "first", stop.Token);
        var mirror = RegionFailover.MirrorOf($"KV_{IdempotencyClaims.Bucket}", "west");
        await Retry.Until("the claim mirrored", async () => (await js.GetStreamAsync(mirror)).Info.State.Messages, n => n >= 1);
        (await outbox.HoldAsync(claimed, "second", stop.Token)).Conflict.ShouldBeTrue("another body under a key claimed in the home");
        (await outbox.HoldAsync(claimed, "first", stop.Token)).ShouldBe(new HeldJob(true, false, 0), "the same body is the job the home has");
        (await outbox.CountAsync(stop.Token)).ShouldBe(2);

        await Should.ThrowAsync<InvalidOperationException>(() => outbox.ForwardAsync((_, _, _) => throw new InvalidOperationException("the log is away"), 10, stop.Token));
        (await outbox.CountAsync(stop.Token)).ShouldBe(2, "a job whose forwarding failed stays held");

        var forwarded = new List<(Guid Job, string? Digest)>();
        await Retry.Until("both held jobs forwarded (the failed one after its redelivery delay)", async () =>
        {
            await outbox.ForwardAsync((job, digest, _) => { forwarded.Add((job.JobId, digest)); return Task.CompletedTask; }, 10, stop.Token);
            return forwarded.Select(f => f.Job).Distinct().Count();
        }, n => n == 2);
        forwarded.ShouldBe([(plain.JobId, null), (keyed.JobId, "mine")], ignoreOrder: true);
        (await outbox.CountAsync(stop.Token)).ShouldBe(0);
        (await outbox.FindAsync(plain.JobId, stop.Token)).ShouldBeNull();
    }

    [Fact]
    public async Task One_takeover_of_a_region_at_a_time_across_processes()
    {
        var (server, witness) = await StartAsync();
        await using var westServer = server;
        await using var witnessServer = witness;
        await using var one = new NatsClient(server.Url);
        await using var other = new NatsClient(witness.Url);
        var (first, second) = (new RegionFailover(one.CreateJetStreamContext()), new RegionFailover(other.CreateJetStreamContext()));

        (await first.LockAsync("east", "api-1", CancellationToken.None)).ShouldBeNull();
        (await second.LockAsync("east", "api-2", CancellationToken.None)).ShouldBe("api-1", "the first runner holds the takeover of east");
        (await second.LockAsync("north", "api-2", CancellationToken.None)).ShouldBeNull("another lost region is another takeover");
        await first.UnlockAsync("east", CancellationToken.None);
        (await second.LockAsync("east", "api-2", CancellationToken.None)).ShouldBeNull("a failed takeover gives its claim back");
    }

    /// <summary>
    /// Two one-server regions, west and a witness (a lone server that is a cluster of one never
    /// elects a metadata leader), once JetStream answers.
    /// </summary>
    private static async Task<(NatsServerProcess West, NatsServerProcess Witness)> StartAsync()
    {
        var servers = await RegionFailoverTests.StartRegionsAsync("west", "witness");
        await using var nats = new NatsClient(servers["west"].Url);
        var js = nats.CreateJetStreamContext();
        await Retry.Until("JetStream", async () =>
        {
            try
            {
                await js.GetAccountInfoAsync();
                return true;
            }
            catch (NATS.Client.JetStream.NatsJSException)
            {
                return false;
            }
        }, ok => ok);
        return (servers["west"], servers["witness"]);
    }

    private static JobCommand Job() => new(Guid.CreateVersion7(), "acme", "mlp-test", "1", "west", "interactive", DateTimeOffset.UtcNow, "digest", [], null);
}
