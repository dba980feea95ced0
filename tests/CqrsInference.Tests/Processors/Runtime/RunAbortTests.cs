using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Running;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.ML.OnnxRuntime;
using WorkerJobs = CqrsInference.Tests.Processors.Worker.Jobs;

namespace CqrsInference.Tests.Processors.Runtime;

/// <summary>
/// Real ONNX Runtime sessions, in process: an execution timeout aborts the model's run itself
/// (<c>RunOptions.Terminate</c>), and that abort ends the job with execution_timeout.
/// </summary>
public sealed class RunAbortTests
{
    private static readonly ModelCatalog Catalog = ModelCatalog.Load(TestEnvironment.Manifest, TestEnvironment.ModelsDirectory);

    [Fact]
    public void A_run_aborted_before_it_starts_is_stopped_by_onnx_runtime_itself()
    {
        Catalog.TryGet("mlp-test", out var model).ShouldBeTrue();
        using var runner = new TensorRunner(model, new InferenceSession(GeneratedModels.Mlp.Build()), "cpu");
        using var abort = new CancellationTokenSource();
        abort.Cancel();

        var error = Should.Throw<ExecutionTimeoutException>(() => runner.Run([WorkerJobs.Command()], abort.Token));

        error.InnerException.ShouldBeOfType<OnnxRuntimeException>();
        runner.Run([WorkerJobs.Command()], CancellationToken.None).ShouldHaveSingleItem().ShouldBeOfType<RunOutcome.Succeeded>();
    }

    [Fact]
    public void A_real_model_run_past_its_timeout_is_aborted_midway_and_its_jobs_fail_with_execution_timeout()
    {
        using var ocrModel = new OcrInProcess();
        var (ocr, model) = (ocrModel.Runner, ocrModel.Model);
        var jobs = Enumerable.Range(0, 2).Select(_ => WorkerJobs.Admitted(OcrInProcess.Job(OcrInProcess.Blank(OcrRunner.MaxWidth), timeoutMs: 100))).ToList();

        var whole = Stopwatch.StartNew();
        ocr.Run(jobs.Select(j => j.Job).ToList(), CancellationToken.None).ShouldAllBe(o => o is RunOutcome.Succeeded);
        whole.Stop();

        // The timeouts' clock ticks on a thread of its own (not the thread pool, which parallel
        // tests may starve), a whole timeout every 20 ms: each run is aborted about 20 ms in.
        var clock = new FakeTimeProvider();
        var timed = new TimedRunner(new ModelJobRunner(ocr), model, new RunCancels(clock), clock, NullLogger.Instance);
        using var done = new ManualResetEventSlim();
        var ticker = new Thread(() =>
        {
            while (!done.Wait(20))
            {
                clock.Advance(TimeSpan.FromMilliseconds(100));
            }
        }) { IsBackground = true };
        ticker.Start();
        var aborted = Stopwatch.StartNew();
        var outcomes = timed.Run(jobs, CancellationToken.None);
        aborted.Stop();
        done.Set();
        ticker.Join();

        outcomes.Select(o => (o as RunOutcome.Rejected)?.Code).ShouldAllBe(code => code == JobErrorCodes.ExecutionTimeout, string.Join("; ", outcomes));

        // The batch, then each job alone, was stopped inside ONNX Runtime, well before a whole run.
        aborted.Elapsed.ShouldBeLessThan(whole.Elapsed, $"a whole run took {whole.Elapsed.TotalMilliseconds:0} ms");
    }
}
