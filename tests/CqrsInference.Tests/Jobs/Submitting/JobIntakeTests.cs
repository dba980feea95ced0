using System.Collections.Concurrent;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Models;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace CqrsInference.Tests.Jobs.Submitting;

/// <summary>The intake's rules with its ports faked: which jobs of a retried key are published again.</summary>
public sealed class JobIntakeTests
{
    private static readonly ModelCatalog Catalog = ModelCatalog.Load(TestEnvironment.Manifest, TestEnvironment.ModelsDirectory);
    private readonly FakeQueue _queue = new();
    private readonly FakeIdempotency _recorded = new();
    private readonly FakeClaims _claims = new();
    private readonly FakeInteractive _interactive = new();
    private readonly FakeHolding _holding = new();

    [Fact]
    public async Task A_retried_bulk_key_publishes_only_the_jobs_not_yet_recorded()
    {
        var jobs = Commands(3, key: "k", digest: "d");
        _recorded.Digests[jobs[0].JobId] = "d";

        var outcome = await Intake().SubmitAsync(jobs, bulk: true, CancellationToken.None);

        var all = outcome.ShouldBeOfType<SubmitOutcome.AcceptedAll>().Jobs;
        all.Select(a => a.Job.JobId).ShouldBe(jobs.Select(j => j.JobId));
        all.Select(a => a.Replayed).ShouldBe([true, false, false]);
        _queue.Published.ShouldBe([jobs[1].JobId, jobs[2].JobId], ignoreOrder: true);
    }

    [Fact]
    public async Task A_key_reused_for_another_request_is_a_conflict_and_publishes_nothing()
    {
        var jobs = Commands(3, key: "k", digest: "new");
        _recorded.Digests[jobs[2].JobId] = "old";

        var outcome = await Intake().SubmitAsync(jobs, bulk: true, CancellationToken.None);

        outcome.ShouldBeOfType<SubmitOutcome.IdempotencyConflict>().ExistingJobId.ShouldBe(jobs[2].JobId);
        _queue.Published.ShouldBeEmpty();
    }

    [Fact]
    public async Task Without_a_key_no_record_is_looked_up_and_every_job_is_published()
    {
        var jobs = Commands(2, key: null, digest: "d");

        await Intake().SubmitAsync(jobs, bulk: true, CancellationToken.None);

        _recorded.Lookups.ShouldBe(0);
        _queue.Published.Count.ShouldBe(2);
    }

    [Fact]
    public async Task An_admission_refusal_publishes_nothing()
    {
        var jobs = Commands(2, key: null, digest: "d");

        var outcome = await Intake(new SubmitOutcome.RateLimited(TimeSpan.FromSeconds(3))).SubmitAsync(jobs, bulk: true, CancellationToken.None);

        outcome.ShouldBeOfType<SubmitOutcome.RateLimited>();
        _queue.Published.ShouldBeEmpty();
    }

    private FixedAdmission _admission = new(null);

    private JobIntake Intake(SubmitOutcome? refusal = null, SubmitOptions? options = null) => new(
        Catalog, _queue, _interactive, _recorded, _claims, new NoMemory(), _admission = new FixedAdmission(refusal), new NoClaimCheck(), _holding, options ?? new SubmitOptions(), NullLogger<JobIntake>.Instance);

    [Fact]
    public async Task A_retry_of_an_admitted_request_is_not_charged_to_the_rate_and_quota_again()
    {
        var jobs = Commands(3, key: "k", digest: "d");
        (await Intake().SubmitAsync(jobs, bulk: true, CancellationToken.None)).ShouldBeOfType<SubmitOutcome.AcceptedAll>();
        _admission.Asked.ShouldBe(1);

        // The same request again, while the tenant is over its rate: answered, not refused, not counted.
        var again = await Intake(new SubmitOutcome.RateLimited(TimeSpan.FromSeconds(3))).SubmitAsync(jobs, bulk: true, CancellationToken.None);

        again.ShouldBeOfType<SubmitOutcome.AcceptedAll>().Jobs.Select(j => j.Job.JobId).ShouldBe(jobs.Select(j => j.JobId));
        _admission.Asked.ShouldBe(0);

        // Another body under the key is still refused by admission first (it claimed nothing).
        var other = Commands(3, key: "k", digest: "other");
        (await Intake(new SubmitOutcome.RateLimited(TimeSpan.FromSeconds(3))).SubmitAsync(other, bulk: true, CancellationToken.None)).ShouldBeOfType<SubmitOutcome.RateLimited>();
    }

    [Fact]
    public async Task A_submit_the_log_does_not_confirm_in_time_is_held_before_the_home_is_found_lost()
    {
        _queue.Block = true;
        var job = Commands(1, key: null, digest: "d")[0];

        var outcome = await Intake(options: new SubmitOptions { DurableWithin = TimeSpan.FromMilliseconds(200) }).SubmitAsync([job], bulk: false, CancellationToken.None);

        outcome.ShouldBeOfType<SubmitOutcome.AcceptedAll>();
        _holding.Held.Keys.ShouldBe([job.JobId]);
    }

    [Fact]
    public async Task A_hold_that_does_not_confirm_in_time_is_a_timeout_not_a_wait_without_end()
    {
        _holding.Lost();
        _holding.Block = true;

        await Should.ThrowAsync<TimeoutException>(() => Intake(options: new SubmitOptions { DurableWithin = TimeSpan.FromMilliseconds(200) })
            .SubmitAsync(Commands(1, key: null, digest: "d"), bulk: false, CancellationToken.None));
    }

    [Fact]
    public async Task While_the_home_is_lost_jobs_are_held_not_published()
    {
        _holding.Lost();
        var jobs = Commands(2, key: null, digest: "d");

        var outcome = await Intake().SubmitAsync(jobs, bulk: true, CancellationToken.None);

        outcome.ShouldBeOfType<SubmitOutcome.AcceptedAll>().Jobs.Select(j => j.Job.JobId).ShouldBe(jobs.Select(j => j.JobId));
        _holding.Held.Keys.ShouldBe(jobs.Select(j => j.JobId), ignoreOrder: true);
        _queue.Published.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_submit_waiting_on_the_home_when_it_is_found_lost_is_held()
    {
        _queue.Block = true;
        var job = Commands(1, key: null, digest: "d")[0];

        var submit = Intake().SubmitAsync([job], bulk: false, CancellationToken.None);
        await Task.Delay(100);
        submit.IsCompleted.ShouldBeFalse();
        _holding.Lost();

        (await submit).ShouldBeOfType<SubmitOutcome.AcceptedAll>().Jobs.ShouldHaveSingleItem().Job.JobId.ShouldBe(job.JobId);
        _holding.Held.Keys.ShouldBe([job.JobId]);
    }

    [Fact]
    public async Task A_held_key_with_another_body_is_a_conflict_and_a_rate_refusal_holds_nothing()
    {
        _holding.Lost();
        var jobs = Commands(1, key: "k", digest: "mine");
        _holding.Held[jobs[0].JobId] = "theirs";

        (await Intake().SubmitAsync(jobs, bulk: false, CancellationToken.None)).ShouldBeOfType<SubmitOutcome.IdempotencyConflict>();

        var refused = await Intake(new SubmitOutcome.RateLimited(TimeSpan.FromSeconds(1))).SubmitAsync(Commands(1, key: null, digest: "d"), bulk: false, CancellationToken.None);
        refused.ShouldBeOfType<SubmitOutcome.RateLimited>();
        _holding.Held.Count.ShouldBe(1);
    }

    [Fact]
    public async Task An_interactive_job_a_processor_served_is_not_queued_and_says_where_it_ran()
    {
        _interactive.Answer = _ => new InteractiveOutcome.Served("west");
        var job = Commands(1, key: null, digest: "d")[0] with { InteractiveWithin = TimeSpan.FromSeconds(5) };

        var outcome = await Intake().SubmitAsync([job], bulk: false, CancellationToken.None);

        outcome.ShouldBeOfType<SubmitOutcome.AcceptedAll>().Jobs.ShouldHaveSingleItem().ServedIn.ShouldBe("west");
        _interactive.Asked.ShouldBe([(job.JobId, TimeSpan.FromSeconds(5))]);
        _queue.Published.ShouldBeEmpty();
    }

    [Fact]
    public async Task An_interactive_job_another_run_took_is_a_replay_neither_queued_nor_counted_again()
    {
        _interactive.Answer = _ => new InteractiveOutcome.Taken();
        var job = Commands(1, key: "k", digest: "d")[0] with { InteractiveWithin = TimeSpan.FromSeconds(5) };

        var outcome = await Intake().SubmitAsync([job], bulk: false, CancellationToken.None);

        var accepted = outcome.ShouldBeOfType<SubmitOutcome.AcceptedAll>().Jobs.ShouldHaveSingleItem();
        accepted.Replayed.ShouldBeTrue();
        accepted.ServedIn.ShouldBeNull();
        _queue.Published.ShouldBeEmpty();
    }

    [Fact]
    public async Task An_interactive_job_nobody_served_is_queued()
    {
        _interactive.Answer = _ => null;
        var job = Commands(1, key: null, digest: "d")[0] with { InteractiveWithin = TimeSpan.FromSeconds(5) };

        var outcome = await Intake().SubmitAsync([job], bulk: false, CancellationToken.None);

        outcome.ShouldBeOfType<SubmitOutcome.AcceptedAll>().Jobs.ShouldHaveSingleItem().ServedIn.ShouldBeNull();
        _queue.Published.ShouldBe([job.JobId]);
    }

    [Fact]
    public async Task An_interactive_job_whose_caller_left_before_an_answer_is_still_queued_so_that_it_ends()
    {
        using var caller = new CancellationTokenSource();
        _interactive.Answer = _ =>
        {
            caller.Cancel();
            throw new OperationCanceledException(caller.Token);
        };
        var job = Commands(1, key: null, digest: "d")[0] with { InteractiveWithin = TimeSpan.FromSeconds(5) };

        await Intake().SubmitAsync([job], bulk: false, caller.Token);

        _queue.Published.ShouldBe([job.JobId]);
    }

    [Fact]
    public async Task A_queued_job_is_never_offered_to_the_interactive_path()
    {
        await Intake().SubmitAsync(Commands(1, key: null, digest: "d"), bulk: false, CancellationToken.None);

        _interactive.Asked.ShouldBeEmpty();
        _queue.Published.Count.ShouldBe(1);
    }

    private static List<SubmitInferenceJob> Commands(int count, string? key, string digest)
    {
        var x = new Tensor("x", "FP32", [1, 4], JsonSerializer.SerializeToElement(new[] { 1f, 2, 3, 4 }));
        return Enumerable.Range(0, count)
            .Select(_ => new SubmitInferenceJob(Guid.CreateVersion7(), "t", "mlp-test", null, null, [x], null, key, digest, DateTimeOffset.UtcNow))
            .ToList();
    }

    private sealed class FakeQueue : IJobQueue
    {
        public ConcurrentBag<Guid> Published { get; } = [];

        /// <summary>Whether a publish waits until it is cancelled (the home lost under it).</summary>
        public bool Block { get; set; }

        public async Task<(bool Duplicate, int Bytes)> PublishAsync(JobCommand job, CancellationToken ct)
        {
            if (Block)
            {
                await Task.Delay(Timeout.Infinite, ct);
            }

            Published.Add(job.JobId);
            return (false, 100);
        }
    }

    private sealed class FakeInteractive : IInteractiveRuns
    {
        public Func<JobCommand, InteractiveOutcome?> Answer { get; set; } = _ => null;

        public List<(Guid JobId, TimeSpan Within)> Asked { get; } = [];

        public Task<InteractiveOutcome?> RunAsync(JobCommand job, TimeSpan within, CancellationToken ct)
        {
            Asked.Add((job.JobId, within));
            return Task.FromResult(Answer(job));
        }
    }

    private sealed class FakeIdempotency : IIdempotencyRecords
    {
        public Dictionary<Guid, string> Digests { get; } = [];

        public int Lookups { get; private set; }

        public Task<IReadOnlyDictionary<Guid, string>> FindDigestsAsync(IReadOnlyList<Guid> jobIds, string tenant, CancellationToken ct)
        {
            Lookups++;
            return Task.FromResult<IReadOnlyDictionary<Guid, string>>(Digests.Where(d => jobIds.Contains(d.Key)).ToDictionary());
        }
    }

    [Fact]
    public async Task A_key_another_body_claimed_first_is_a_conflict_before_anything_is_claimed_or_published()
    {
        var jobs = Commands(3, key: "k", digest: "mine");
        _claims.Held[jobs[0].JobId] = "theirs";

        var outcome = await Intake().SubmitAsync(jobs, bulk: true, CancellationToken.None);

        outcome.ShouldBeOfType<SubmitOutcome.IdempotencyConflict>();
        _claims.Held.Keys.ShouldBe([jobs[0].JobId]);
        _queue.Published.ShouldBeEmpty();
    }

    private sealed class FakeClaims : IIdempotencyClaims
    {
        public ConcurrentDictionary<Guid, string> Held { get; } = new();

        public Task<string> ClaimAsync(Guid jobId, string digest, CancellationToken ct) => Task.FromResult(Held.GetOrAdd(jobId, digest));

        public Task<string?> FindAsync(Guid jobId, CancellationToken ct) => Task.FromResult(Held.TryGetValue(jobId, out var digest) ? digest : null);
    }

    private sealed class NoMemory : IAcceptedJobs
    {
        public void Accepted(V1.JobSubmitted submitted)
        {
        }
    }

    private sealed class FixedAdmission(SubmitOutcome? refusal) : ISubmitAdmission
    {
        public int Asked { get; private set; }

        public Task<SubmitOutcome?> RefuseAsync(string tenant, IReadOnlyCollection<string> models, int jobs, CancellationToken ct)
        {
            Asked++;
            return Task.FromResult(refusal);
        }

        public SubmitOutcome? RefuseHeld(string tenant, int jobs) => refusal;
    }

    private sealed class NoClaimCheck : IClaimCheck
    {
        public Task<(IReadOnlyList<Tensor> Inline, BlobRef? Ref)> OffloadAsync(IReadOnlyList<Tensor> tensors, CancellationToken ct) =>
            Task.FromResult<(IReadOnlyList<Tensor>, BlobRef?)>((tensors, null));

        public Task<IReadOnlyList<Tensor>> LoadAsync(BlobRef blob, CancellationToken ct) => throw new NotSupportedException();
    }

    /// <summary>A hold whose home is lost once <see cref="Lost"/> is called; held jobs by id, with their digest.</summary>
    private sealed class FakeHolding : IJobHolding
    {
        private readonly CancellationTokenSource _lost = new();

        public ConcurrentDictionary<Guid, string> Held { get; } = new();

        public bool Enabled => true;

        public bool HomeLost { get; private set; }

        public CancellationToken WhenHomeLost => _lost.Token;

        public void Lost()
        {
            HomeLost = true;
            _lost.Cancel();
        }

        public bool IsOutage(Exception exception) => exception is TimeoutException;

        /// <summary>Whether a hold waits until it is cancelled (the region's own servers away).</summary>
        public bool Block { get; set; }

        public async Task<HeldJob> HoldAsync(JobCommand job, string? digest, CancellationToken ct)
        {
            if (Block)
            {
                await Task.Delay(Timeout.Infinite, ct);
            }

            var held = Held.GetOrAdd(job.JobId, digest ?? "");
            return new HeldJob(Duplicate: false, Conflict: digest is not null && held != digest, 100);
        }
    }
}
