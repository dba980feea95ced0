using System.Threading.Channels;
using CqrsInference.Commands.Jobs;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Running;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CqrsInference.Tests.Processors.Worker;

public sealed class BatchRunningTests
{
    [Fact]
    public async Task A_batch_takes_what_waits_up_to_the_maximum()
    {
        var channel = Channel.CreateUnbounded<JobDelivery>();
        for (var i = 0; i < 5; i++)
        {
            channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        }

        var collector = new BatchCollector(channel.Reader, maxBatch: 3, maxDelay: TimeSpan.Zero, TimeProvider.System, Coming);

        (await collector.NextAsync(CancellationToken.None))!.Count.ShouldBe(3);
        (await collector.NextAsync(CancellationToken.None))!.Count.ShouldBe(2);
    }

    [Fact]
    public async Task A_batch_waits_for_batch_mates_at_most_the_batch_delay()
    {
        var channel = Channel.CreateUnbounded<JobDelivery>();
        channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var collector = new BatchCollector(channel.Reader, maxBatch: 8, maxDelay: TimeSpan.FromMilliseconds(300), clock, Coming);

        // A batch-mate that arrives within the delay joins; the batch is not closed before the delay is over.
        var next = collector.NextAsync(CancellationToken.None);
        clock.Advance(TimeSpan.FromMilliseconds(50));
        channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        clock.Advance(TimeSpan.FromMilliseconds(249));
        await Task.Delay(50);
        next.IsCompleted.ShouldBeFalse("the delay is not over and the batch is not full");
        clock.Advance(TimeSpan.FromMilliseconds(1));

        (await next)!.Count.ShouldBe(2);
    }

    [Fact]
    public async Task A_batch_with_an_interactive_job_leaves_at_once_with_what_is_there()
    {
        var channel = Channel.CreateUnbounded<JobDelivery>();
        var clock = new FakeTimeProvider();
        var collector = new BatchCollector(channel.Reader, maxBatch: 8, maxDelay: TimeSpan.FromMilliseconds(300), clock, Coming);

        // Opened by an interactive job: the jobs already waiting join, nobody is waited for.
        channel.Writer.TryWrite(Interactive(Jobs.Command()));
        channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        var first = collector.NextAsync(CancellationToken.None);
        (await first.WaitAsync(TimeSpan.FromSeconds(5)))!.Count.ShouldBe(2, "the clock never moved: the batch did not wait for its window");

        // Opened by a queued job: it waits for batch-mates until an interactive one joins, then leaves with it.
        channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        var second = collector.NextAsync(CancellationToken.None);
        clock.Advance(TimeSpan.FromMilliseconds(100));
        await Task.Delay(50);
        second.IsCompleted.ShouldBeFalse("a queued job waits for batch-mates");
        channel.Writer.TryWrite(Interactive(Jobs.Command()));
        var batch = (await second.WaitAsync(TimeSpan.FromSeconds(5)))!;
        batch.Count.ShouldBe(2);
        batch[1].IsInteractive.ShouldBeTrue();
    }

    [Fact]
    public async Task A_queued_batch_waits_for_batch_mates_only_while_a_pull_is_bringing_counted_jobs()
    {
        var channel = Channel.CreateUnbounded<JobDelivery>();
        var clock = new FakeTimeProvider();
        var capacity = new WorkerCapacity(capacity: 16, remoteSlots: 0);
        var collector = new BatchCollector(channel.Reader, maxBatch: 8, maxDelay: TimeSpan.FromMilliseconds(300), clock, () => capacity.JobsComing);
        var queue = new Messaging.JobQueue("local", "mlp-test", "batch", "t");

        // A pull of the one job the counts showed (an idle queue): once it arrived nothing else is on its way.
        var single = new PullPlan(queue, 1, Remote: false);
        capacity.Reserve(single);
        capacity.Delivered(single, remote: false);
        channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        (await collector.NextAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)))!.Count
            .ShouldBe(1, "the clock never moved: the batch did not wait for a window nobody could fill");
        capacity.PullEnded(single, delivered: 1);

        // A pull of three counted jobs, one arrived so far: the batch waits for the other two.
        var three = new PullPlan(queue, 3, Remote: false);
        capacity.Reserve(three);
        capacity.Delivered(three, remote: false);
        channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        var next = collector.NextAsync(CancellationToken.None);
        await Task.Delay(50);
        next.IsCompleted.ShouldBeFalse("two counted jobs are still on their way");
        capacity.Delivered(three, remote: false);
        channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        capacity.Delivered(three, remote: false);
        channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
        (await next.WaitAsync(TimeSpan.FromSeconds(5)))!.Count.ShouldBe(3, "the last one came and nothing else is on its way: no window left to wait");
        capacity.PullEnded(three, delivered: 3);

        // A pull that waits at the server for a job a wake-up announced brings nothing counted.
        var woken = new PullPlan(queue, 1, Remote: false, WaitAtServer: TimeSpan.FromSeconds(1));
        capacity.Reserve(woken);
        capacity.JobsComing.ShouldBeFalse();
    }

    private static bool Coming() => true;

    private static JobDelivery Interactive(JobCommand job) =>
        Jobs.Delivery(job) with { Ack = new InteractiveReply(default, "local") };

    [Fact]
    public async Task A_batch_that_does_not_fill_and_a_run_that_ends_throw_nothing()
    {
        // Both happen for nearly every batch; an exception each was a measurable cost (docs/BENCHMARKS.md).
        var thrown = 0;
        void Count(object? sender, System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs e)
        {
            var stack = Environment.StackTrace;
            if (e.Exception is OperationCanceledException && (stack.Contains(nameof(BatchCollector), StringComparison.Ordinal) || stack.Contains(nameof(BatchExecutor), StringComparison.Ordinal)))
            {
                Interlocked.Increment(ref thrown);
            }
        }

        AppDomain.CurrentDomain.FirstChanceException += Count;
        try
        {
            var channel = Channel.CreateUnbounded<JobDelivery>();
            var executor = new BatchExecutor(new FakeRunner(), "mlp-test", TimeSpan.FromSeconds(10), TimeProvider.System, NullLogger.Instance);
            var collector = new BatchCollector(channel.Reader, maxBatch: 8, maxDelay: TimeSpan.FromMilliseconds(5), TimeProvider.System, Coming);
            for (var i = 0; i < 20; i++)
            {
                channel.Writer.TryWrite(Jobs.Delivery(Jobs.Command()));
                var batch = (await collector.NextAsync(CancellationToken.None))!;
                batch.Count.ShouldBe(1, "the window passed without batch-mates");
                (await executor.RunAsync([new AdmittedJob(batch[0], Jobs.Command())])).Outcomes.ShouldHaveSingleItem();
            }
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= Count;
        }

        thrown.ShouldBe(0);
    }

    [Fact]
    public async Task No_batch_once_the_channel_is_closed_and_empty()
    {
        var channel = Channel.CreateUnbounded<JobDelivery>();
        channel.Writer.TryComplete();

        (await new BatchCollector(channel.Reader, 4, TimeSpan.Zero, TimeProvider.System, Coming).NextAsync(CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task A_long_run_keeps_its_jobs_from_being_redelivered_and_counts_as_busy()
    {
        var ack = new FakeAck();
        var job = new AdmittedJob(Jobs.Delivery(Jobs.Command(), ack: ack), Jobs.Command());
        using var release = new ManualResetEventSlim();
        var clock = new FakeTimeProvider(Jobs.Now);
        var executor = new BatchExecutor(new FakeRunner(runUntil: release), "mlp-test", TimeSpan.FromSeconds(10), clock, NullLogger.Instance);

        var running = executor.RunAsync([job]);
        for (var beat = 1; beat <= 3; beat++)
        {
            clock.Advance(TimeSpan.FromSeconds(10));
            await Retry.Until($"progress ack {beat}", () => Task.FromResult(ack.Calls.Count(c => c == "progress")), n => n == beat);
        }

        clock.Advance(TimeSpan.FromSeconds(5));
        release.Set();
        var run = await running;

        run.Outcomes.ShouldHaveSingleItem().ShouldBeOfType<RunOutcome.Succeeded>();
        ack.Calls.ShouldAllBe(c => c == "progress");
        run.Elapsed.ShouldBe(TimeSpan.FromSeconds(35));
        executor.BusyTime.ShouldBe(run.Elapsed);
    }

    [Theory]
    [InlineData("transient", 7, true)]
    [InlineData("transient:2", 2, true)]
    [InlineData("transient:2", 3, false)]
    [InlineData(null, 1, false)]
    public void Injected_faults_fail_the_attempts_they_name(string? fault, int attempt, bool fails)
    {
        var runner = new FaultInjectingRunner(new FakeRunner());

        var outcome = runner.Run([Jobs.Admitted(Jobs.Command(fault: fault), attempt)], CancellationToken.None).ShouldHaveSingleItem();

        if (fails)
        {
            outcome.ShouldBeOfType<RunOutcome.Faulted>().Code.ShouldBe(JobErrorCodes.InjectedFault);
        }
        else
        {
            outcome.ShouldBeOfType<RunOutcome.Succeeded>();
        }
    }

    [Fact]
    public void Fault_injection_is_off_unless_the_processor_turns_it_on_and_always_runs_under_the_timeouts()
    {
        Runner(faultInjection: false).ShouldBeOfType<TimedRunner>().Inner.ShouldBeOfType<ModelJobRunner>();
        Runner(faultInjection: true).ShouldBeOfType<TimedRunner>().Inner.ShouldBeOfType<FaultInjectingRunner>();

        static IJobRunner Runner(bool faultInjection) =>
            new JobRunnerFactory(faultInjection, new RunCancels(TimeProvider.System), TimeProvider.System, NullLoggerFactory.Instance).Create(Jobs.Model(), new NoModel());
    }

    private sealed class NoModel : IModelRunner
    {
        public string Device => "cpu";

        public IReadOnlyList<RunOutcome> Run(IReadOnlyList<JobCommand> jobs, CancellationToken abort) => [];

        public void WarmUp()
        {
        }

        public void Dispose()
        {
        }
    }
}
