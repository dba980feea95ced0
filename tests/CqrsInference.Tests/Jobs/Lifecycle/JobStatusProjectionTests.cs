using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;

namespace CqrsInference.Tests.Jobs.Lifecycle;

public sealed class JobStatusProjectionTests
{
    private static readonly Guid JobId = Guid.Parse("0b5f8f4e-1111-5222-8333-444455556666");
    private static readonly DateTimeOffset T0 = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private static readonly Dictionary<string, string> Meta = new() { ["user"] = "u1" };

    private static readonly IReadOnlyList<Tensor> Outputs =
        [new Tensor("y", "FP32", [1, 3], JsonSerializer.SerializeToElement(new[] { 0.1f, 0.2f, 0.3f }))];

    private static V1.JobSubmitted Submitted() =>
        new(JobId, "acme", "mlp-test", "1", "eu", "normal", T0, "sha256:abc", 16, Meta);

    private static V1.JobStarted Started(int attempt, string worker = "w1") =>
        new(JobId, attempt, worker, "cuda:0", T0.AddSeconds(attempt), 12.5 * attempt);

    private static V1.JobAttemptFailed AttemptFailed(int attempt) =>
        new(JobId, attempt, "w1", "cuda:0", T0.AddSeconds(attempt + 0.5), "ort_error", $"boom {attempt}", TimeSpan.FromSeconds(1));

    private static V1.JobSucceeded Succeeded(int attempt, IReadOnlyList<Tensor>? outputs = null) =>
        new(JobId, attempt, "w2", "cpu", T0.AddSeconds(10), 3.25, 4, outputs ?? Outputs);

    private static V1.JobFailed Failed(int attempt, bool deadLettered) =>
        new(JobId, attempt, "w3", "cpu", T0.AddSeconds(20), "bad_input", "refused", deadLettered);

    private static JobStatus Running(int attempt = 1) => JobStatusProjection.Apply(Started(attempt), JobStatusProjection.Create(Submitted()));

    [Fact]
    public void Submitted_job_is_queued_with_the_submit_details()
    {
        var status = JobStatusProjection.Create(Submitted());

        status.Id.ShouldBe(JobId);
        status.Status.ShouldBe(JobStatuses.Queued);
        status.Tenant.ShouldBe("acme");
        status.Model.ShouldBe("mlp-test");
        status.ModelVersion.ShouldBe("1");
        status.Region.ShouldBe("eu");
        status.Priority.ShouldBe("normal");
        status.SubmittedAt.ShouldBe(T0);
        status.RequestDigest.ShouldBe("sha256:abc");
        status.Metadata.ShouldBe(Meta);
        status.Attempts.ShouldBe(0);
        status.StartedAt.ShouldBeNull();
        status.Error.ShouldBeNull();
        status.Outputs.ShouldBeNull();
    }

    [Fact]
    public void Started_job_is_running_with_its_attempt_worker_and_device()
    {
        var status = Running(attempt: 1);

        status.Status.ShouldBe(JobStatuses.Running);
        status.Attempts.ShouldBe(1);
        status.Worker.ShouldBe("w1");
        status.Device.ShouldBe("cuda:0");
        status.StartedAt.ShouldBe(T0.AddSeconds(1));
        status.QueueWaitMs.ShouldBe(12.5);
    }

    [Fact]
    public void Failed_attempt_puts_the_job_back_in_the_queue_with_the_error()
    {
        var status = JobStatusProjection.Apply(AttemptFailed(1), Running(1));

        status.Status.ShouldBe(JobStatuses.Queued);
        status.Attempts.ShouldBe(1);
        status.Error.ShouldBe(new JobError("ort_error", "boom 1", 1, DeadLettered: false));
    }

    [Fact]
    public void Attempts_count_never_goes_down_on_a_late_event_of_an_earlier_attempt()
    {
        var status = JobStatusProjection.Apply(Started(2), JobStatusProjection.Apply(AttemptFailed(1), Running(1)));
        status.Attempts.ShouldBe(2);

        JobStatusProjection.Apply(AttemptFailed(1), status).Attempts.ShouldBe(2);
    }

    [Fact]
    public void Succeeded_job_has_its_outputs_and_no_error()
    {
        var afterRetry = JobStatusProjection.Apply(Started(2), JobStatusProjection.Apply(AttemptFailed(1), Running(1)));

        var status = JobStatusProjection.Apply(Succeeded(2), afterRetry);

        status.Status.ShouldBe(JobStatuses.Succeeded);
        status.Attempts.ShouldBe(2);
        status.Outputs.ShouldBeSameAs(Outputs);
        status.CompletedAt.ShouldBe(T0.AddSeconds(10));
        status.RunMs.ShouldBe(3.25);
        status.BatchSize.ShouldBe(4);
        status.Worker.ShouldBe("w2");
        status.Device.ShouldBe("cpu");
        status.Error.ShouldBeNull();
        status.Metadata.ShouldBe(Meta);
    }

    [Fact]
    public void Events_after_success_leave_the_job_unchanged()
    {
        var done = JobStatusProjection.Apply(Succeeded(1), Running(1));
        IReadOnlyList<Tensor> otherOutputs = [new Tensor("y", "FP32", [1, 3], JsonSerializer.SerializeToElement(new[] { 9f, 9f, 9f }))];

        JobStatusProjection.Apply(Started(2, worker: "late"), done).ShouldBeSameAs(done);
        JobStatusProjection.Apply(AttemptFailed(2), done).ShouldBeSameAs(done);
        JobStatusProjection.Apply(Failed(2, deadLettered: true), done).ShouldBeSameAs(done);
        JobStatusProjection.Apply(Succeeded(2, otherOutputs), done).ShouldBeSameAs(done);
        done.Status.ShouldBe(JobStatuses.Succeeded);
        done.Outputs.ShouldBeSameAs(Outputs);
    }

    [Fact]
    public void Events_after_failure_leave_the_job_unchanged()
    {
        var failed = JobStatusProjection.Apply(Failed(1, deadLettered: false), Running(1));

        JobStatusProjection.Apply(Succeeded(2), failed).ShouldBeSameAs(failed);
        JobStatusProjection.Apply(Started(2), failed).ShouldBeSameAs(failed);
        JobStatusProjection.Apply(AttemptFailed(2), failed).ShouldBeSameAs(failed);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Failed_job_records_whether_it_was_dead_lettered(bool deadLettered)
    {
        var status = JobStatusProjection.Apply(Failed(3, deadLettered), Running(3));

        status.Status.ShouldBe(JobStatuses.Failed);
        status.Attempts.ShouldBe(3);
        status.CompletedAt.ShouldBe(T0.AddSeconds(20));
        status.Error.ShouldBe(new JobError("bad_input", "refused", 3, deadLettered));
        status.Outputs.ShouldBeNull();
    }
}
