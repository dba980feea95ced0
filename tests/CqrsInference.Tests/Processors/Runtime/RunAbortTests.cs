using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Running;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.ML.OnnxRuntime;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
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
        Catalog.TryGet("ppocr-rec", out var model).ShouldBeTrue();
        using var session = new InferenceSession(Catalog.PathOf(model.File), new SessionOptions { IntraOpNumThreads = 1 });
        using var ocr = new OcrRunner(session, "cpu", OcrRunner.LoadVocabulary(Catalog.PathOf(model.Assets!["vocabulary"])));
        var jobs = Enumerable.Range(0, 2).Select(_ => WorkerJobs.Admitted(WideLine(timeoutMs: 100))).ToList();

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

    /// <summary>An OCR job of the widest line the runner takes (blank: the run's cost is its size).</summary>
    private static JobCommand WideLine(int? timeoutMs)
    {
        using var image = new Image<Rgb24>(OcrRunner.MaxWidth, OcrRunner.Height, Color.White);
        using var png = new MemoryStream();
        image.SaveAsPng(png);
        var data = JsonSerializer.SerializeToElement(new[] { Convert.ToBase64String(png.ToArray()) });
        return WorkerJobs.Command(timeoutMs: timeoutMs) with { Model = "ppocr-rec", Inputs = [new Tensor("image", "BYTES", [1], data)] };
    }
}
