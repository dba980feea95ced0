using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Cancelling;
using CqrsInference.Tests.Processors.Worker;

namespace CqrsInference.Tests.Jobs.Cancelling;

/// <summary>
/// A batch's cancel is queued-only: a job no processor claimed is cancelled, a job a processor holds
/// is left to finish, even while its recorded status still says queued (a run shorter than
/// Processor:ReportRunningAfter reports no start; a job waiting for another attempt is queued again).
/// </summary>
public sealed class QueuedOnlyCancelTests
{
    private static readonly JobRoute Route = new("local", "mlp-test");

    private readonly FakeClaims _claims = new();
    private readonly FakeRunCancels _runs = new();

    private CancelInferenceJobHandler Handler => new(_claims, _runs);

    [Fact]
    public async Task A_queued_job_nobody_claimed_is_cancelled()
    {
        var job = Guid.NewGuid();

        var outcome = await Handler.Handle(Cancel(job, JobStatuses.Queued, queuedOnly: true), CancellationToken.None);

        outcome.ShouldBe(new CancelOutcome.Cancelled(DateTimeOffset.UnixEpoch));
        _runs.Ended.ShouldHaveSingleItem().ShouldBeOfType<V1.JobCancelled>().JobId.ShouldBe(job);
    }

    [Fact]
    public async Task A_cancel_that_came_second_answers_the_time_of_the_one_the_log_kept()
    {
        var job = Guid.NewGuid();
        _claims.Outcomes[job] = ClaimOutcome.Cancelled;
        _runs.StoredFirst = new V1.JobCancelled(job, DateTimeOffset.UnixEpoch.AddSeconds(-1), "first");

        var outcome = await Handler.Handle(Cancel(job, JobStatuses.Queued, queuedOnly: false), CancellationToken.None);

        outcome.ShouldBe(new CancelOutcome.Cancelled(DateTimeOffset.UnixEpoch.AddSeconds(-1)));
    }

    [Theory]
    [InlineData(JobStatuses.Queued)]
    [InlineData(JobStatuses.Running)]
    public async Task A_job_a_processor_claimed_is_left_to_finish(string observed)
    {
        var job = Guid.NewGuid();
        _claims.Outcomes[job] = ClaimOutcome.Running;

        var outcome = await Handler.Handle(Cancel(job, observed, queuedOnly: true), CancellationToken.None);

        outcome.ShouldBe(new CancelOutcome.NotCancellable(JobStatuses.Running));
        _runs.Ended.ShouldBeEmpty();
        _runs.Calls.ShouldBeEmpty();
    }

    [Fact]
    public async Task The_jobs_own_cancel_still_ends_a_claimed_job_and_aborts_its_run()
    {
        var job = Guid.NewGuid();
        _claims.Outcomes[job] = ClaimOutcome.Running;

        var outcome = await Handler.Handle(Cancel(job, JobStatuses.Queued, queuedOnly: false), CancellationToken.None);

        outcome.ShouldBeOfType<CancelOutcome.CancelRequested>();
        _runs.Calls.ShouldBe(["mark", "end", "abort"]);
    }

    private static CancelInferenceJob Cancel(Guid job, string observed, bool queuedOnly) =>
        new(job, Route, observed, "test", DateTimeOffset.UnixEpoch, queuedOnly);

    private sealed class FakeRunCancels : IRunCancels
    {
        public List<string> Calls { get; } = [];

        public List<object> Ended { get; } = [];

        /// <summary>The ending the log already holds, if any: what a publish under the terminal id finds.</summary>
        public object? StoredFirst { get; set; }

        public Task MarkCancelledAsync(Guid jobId, int series, CancellationToken ct)
        {
            Calls.Add("mark");
            return Task.CompletedTask;
        }

        public Task<object> EndAsync(JobRoute job, object terminal, CancellationToken ct)
        {
            Calls.Add("end");
            Ended.Add(terminal);
            return Task.FromResult(StoredFirst ?? terminal);
        }

        public Task AbortRunAsync(JobRoute job, Guid jobId, CancellationToken ct)
        {
            Calls.Add("abort");
            return Task.CompletedTask;
        }
    }
}
