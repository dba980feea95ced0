using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Gating;
using CqrsInference.Processors.Worker.Running;
using CqrsInference.Processors.Worker.Shadowing;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace CqrsInference.Tests.Shadows;

/// <summary>
/// The shadow's queue in a processor: offering a job never waits (a full queue drops it and counts
/// it), the shadow runs only when the primary leaves room, and its result compares answers by the
/// manifest's rules. A model runner stands in for ONNX (the rest is the real runner).
/// </summary>
public sealed class ShadowQueueTests
{
    private static readonly Tensor Answer = new("y", "FP32", [1, 3], JsonSerializer.SerializeToElement(new[] { 1f, 2f, 3f }));

    [Fact]
    public async Task Offers_to_a_full_shadow_queue_return_at_once_and_are_counted_as_dropped()
    {
        using var blocked = new ManualResetEventSlim();
        var log = new RecordedLog();
        var shadow = Runner(new BlockingRunner(blocked, log.Take), log, capacity: 2);
        using var stop = new CancellationTokenSource();
        var running = shadow.RunAsync(() => true, stop.Token);
        shadow.Offer(Job()).ShouldBeTrue();
        await Retry.Until("the shadow to take its first job", () => Task.FromResult(log.Taken), taken => taken == 1);

        var clock = Stopwatch.StartNew();
        var accepted = Enumerable.Range(0, 100).Count(_ => shadow.Offer(Job()));
        clock.Stop();

        accepted.ShouldBe(2);
        shadow.Dropped.ShouldBe(98);
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(1));
        blocked.Set();
        await Retry.Until("the queued shadow runs to be published", () => Task.FromResult(log.Events.Count), count => count == 3);
        await stop.CancelAsync();
        await running;
        shadow.Ran.ShouldBe(3);
    }

    [Fact]
    public async Task The_shadow_waits_while_the_primary_is_busy_and_what_is_left_at_stop_is_dropped()
    {
        var log = new RecordedLog();
        var shadow = Runner(new AnsweringRunner(Answer), log, capacity: 4);
        using var stop = new CancellationTokenSource();
        var busy = true;
        var asked = 0;
        var running = shadow.RunAsync(() => Interlocked.Increment(ref asked) > 0 && !Volatile.Read(ref busy), stop.Token);
        shadow.Offer(Job());
        shadow.Offer(Job());

        await Retry.Until("the shadow to ask a few times whether the primary has room", () => Task.FromResult(Volatile.Read(ref asked)), n => n >= 5);
        log.Events.ShouldBeEmpty();
        Volatile.Write(ref busy, false);
        await Retry.Until("the shadow to run once the primary is idle", () => Task.FromResult(log.Events.Count), count => count == 2);
        log.Events.Cast<V1.JobShadowResult>().ShouldAllBe(e => e.ShadowBatchSize == 2, "what waited runs as one batch");
        Volatile.Write(ref busy, true);
        shadow.Offer(Job());
        await stop.CancelAsync();
        await running;

        shadow.Dropped.ShouldBe(1);
        log.Events.ShouldAllBe(e => OutputComparison.Identical(((V1.JobShadowResult)e).Agreement));
    }

    [Fact]
    public async Task The_shadow_waits_while_the_hosts_CPU_is_busy_even_when_the_primary_is_idle()
    {
        var log = new RecordedLog();
        var idle = 1000L;
        var total = 10_000L;
        var busy = true;
        var cpu = new SpareCpu(0.2, () =>
        {
            // Each reading adds 1,000 units of CPU time, 10% idle while busy and 90% after.
            total += 1000;
            idle += Volatile.Read(ref busy) ? 100 : 900;
            return new CpuTimes(idle, total);
        }, TimeProvider.System);
        var shadow = Runner(new AnsweringRunner(Answer), log, capacity: 4, cpu: cpu);
        using var stop = new CancellationTokenSource();
        var running = shadow.RunAsync(() => true, stop.Token);
        shadow.Offer(Job());
        shadow.Offer(Job());

        await Task.Delay(SpareCpu.Window * 3);
        log.Events.ShouldBeEmpty("the host had no idle fifth");
        cpu.IdleShare.ShouldBe(0.1, 1e-9);
        Volatile.Write(ref busy, false);
        await Retry.Until("the shadow to run once the host has room", () => Task.FromResult(log.Events.Count), count => count == 2);
        await stop.CancelAsync();
        await running;
        shadow.Dropped.ShouldBe(0);
    }

    [Fact]
    public async Task Shadow_runs_keep_to_one_thread_at_the_lowest_CPU_priority()
    {
        var log = new RecordedLog();
        var runner = new ThreadNotingRunner(Answer);
        var shadow = Runner(runner, log, capacity: 8);
        using var stop = new CancellationTokenSource();
        var running = shadow.RunAsync(() => true, stop.Token);
        for (var i = 0; i < 3; i++)
        {
            shadow.Offer(Job());
            await Retry.Until("the shadow to run the job", () => Task.FromResult(log.Events.Count), count => count == i + 1);
        }

        await stop.CancelAsync();
        await running;
        runner.Threads.Distinct().ShouldHaveSingleItem("every shadow run on the shadow's own thread");
        runner.Threads.ShouldNotContain(Environment.CurrentManagedThreadId);
        if (OperatingSystem.IsLinux())
        {
            runner.Nices.ShouldAllBe(n => n == LowPriorityThread.Nice, "the thread's nice value, from /proc");
        }
    }

    [Fact]
    public async Task Work_on_the_low_priority_thread_returns_its_result_or_its_exception_in_order()
    {
        using var thread = new LowPriorityThread("test");
        (await thread.LoweredAsync()).ShouldBeTrue();
        var order = new List<int>();
        var first = thread.RunAsync(() => { Thread.Sleep(50); order.Add(1); return 1; });
        var second = thread.RunAsync(() => { order.Add(2); return 2; });
        var failing = thread.RunAsync<int>(() => throw new InvalidDataException("bad"));
        (await Task.WhenAll(first, second)).ShouldBe([1, 2]);
        order.ShouldBe([1, 2]);
        (await Should.ThrowAsync<InvalidDataException>(failing)).Message.ShouldBe("bad");
    }

    [Fact]
    public void A_shadow_result_compares_by_the_shadow_versions_rules_and_a_failed_run_differs_everywhere()
    {
        var shadow = Runner(new AnsweringRunner(Answer), new RecordedLog(), capacity: 1,
            rules: new Dictionary<string, OutputRule> { ["y"] = new() { Rule = OutputRule.WithinTolerance, Tolerance = 0.5 } });
        var close = Answer with { Data = JsonSerializer.SerializeToElement(new[] { 1.2f, 2f, 3f }) };
        var far = Answer with { Data = JsonSerializer.SerializeToElement(new[] { 5f, 2f, 3f }) };

        shadow.Result(Job(), new RunOutcome.Succeeded([close]), TimeSpan.FromMilliseconds(3)).Agreement.ShouldHaveSingleItem().Same.ShouldBeTrue();
        shadow.Result(Job(), new RunOutcome.Succeeded([far]), TimeSpan.FromMilliseconds(3)).Agreement.ShouldHaveSingleItem().Same.ShouldBeFalse();
        var failed = shadow.Result(Job(), new RunOutcome.Rejected("bad_input", "no"), TimeSpan.Zero);
        failed.Error.ShouldBe("bad_input: no");
        failed.Agreement.ShouldHaveSingleItem().Same.ShouldBeFalse();
        failed.ShadowVersion.ShouldBe("2");
        failed.PrimaryVersion.ShouldBe("1");
    }

    private static ShadowRunner Runner(IJobRunner runner, RecordedLog log, int capacity, IReadOnlyDictionary<string, OutputRule>? rules = null, SpareCpu? cpu = null)
    {
        var shadow = Version("2", rules) with { State = ModelVersionStates.Shadow };
        return new ShadowRunner(shadow, runner, new Dictionary<string, ModelDefinition> { ["1"] = Version("1", null) }, log,
            new WorkerIdentity("w", "local", "cpu", "cpu"), capacity, TimeProvider.System, NullLogger.Instance, cpu);
    }

    private static ModelDefinition Version(string version, IReadOnlyDictionary<string, OutputRule>? rules) => new()
    {
        Name = "mlp-test", Version = version, Runner = "tensor", File = "m.onnx",
        Inputs = [new TensorSpec("x", "FP32", [-1, 4])], Outputs = [new TensorSpec("y", "FP32", [-1, 3])], Comparison = rules,
        Batching = new BatchingSpec(8, 2),
    };

    private static ShadowJob Job()
    {
        var command = new JobCommand(Guid.CreateVersion7(), "acme", "mlp-test", "1", "local", "interactive", DateTimeOffset.UtcNow, "digest", [], null);
        return new ShadowJob(command, "1", [Answer], 2, 1);
    }

    private sealed class RecordedLog : IEventLog
    {
        private int _taken;

        public List<object> Events { get; } = [];

        public int Taken => Volatile.Read(ref _taken);

        public void Take() => Interlocked.Increment(ref _taken);

        public Task AppendAsync(JobRoute job, object @event, Activity? trace, CancellationToken ct)
        {
            lock (Events)
            {
                Events.Add(@event);
            }

            return Task.CompletedTask;
        }

        public Task AppendServedAsync(JobCommand job, byte[] message, Activity? trace, CancellationToken ct) => Task.CompletedTask;
    }

    private sealed class AnsweringRunner(Tensor answer) : IJobRunner
    {
        public string Device => "cpu";

        public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort) => [.. jobs.Select(_ => new RunOutcome.Succeeded([answer]))];
    }

    /// <summary>The calling thread's nice value (Linux: field 19 of /proc/thread-self/stat, after the parenthesised name).</summary>
    private static int ThreadNice()
    {
        var stat = File.ReadAllText("/proc/thread-self/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[16], System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed class ThreadNotingRunner(Tensor answer) : IJobRunner
    {
        public List<int> Threads { get; } = [];

        public List<int> Nices { get; } = [];

        public string Device => "cpu";

        public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort)
        {
            Threads.Add(Environment.CurrentManagedThreadId);
            if (OperatingSystem.IsLinux())
            {
                Nices.Add(ThreadNice());
            }

            return [.. jobs.Select(_ => new RunOutcome.Succeeded([answer]))];
        }
    }

    private sealed class BlockingRunner(ManualResetEventSlim release, Action taken) : IJobRunner
    {
        public string Device => "cpu";

        public IReadOnlyList<RunOutcome> Run(IReadOnlyList<AdmittedJob> jobs, CancellationToken abort)
        {
            taken();
            release.Wait(TimeSpan.FromSeconds(30));
            return [.. jobs.Select(_ => new RunOutcome.Succeeded([Answer]))];
        }
    }
}
