using System.Net;
using System.Net.Http.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Processors;

public sealed class ScaleToZeroTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    [Fact]
    public async Task Job_submitted_while_no_processor_runs_stays_queued_and_succeeds_once_one_starts()
    {
        var client = pipeline.Client;
        var job = await client.SubmitAsync(Scenarios.MlpJob([4, 3, 2, 1]));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        // Visible at once: the 202 came after the submission was recorded (or queued for recording).
        (await client.GetJobAsync(job.Id)).GetProperty("status").GetString().ShouldBe("queued");
        var (nats, js) = await pipeline.ConnectAsync();
        await using (nats)
        {
            var queued = await Retry.Until("the job to wait in the work queue", () => JobMessages.QueuedAsync(js, "mlp-test"), q => q.Waiting >= 1);
            queued.InFlight.ShouldBe(0);
        }

        await using var processor = new PipelineHost(pipeline.Nats.Url, pipeline.Host.Schema, "processor");
        _ = processor.Server;

        var done = await client.WaitForStatusAsync(job.Id, "succeeded");
        done.GetProperty("queueWaitMs").GetDouble().ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Cancelled_queued_job_never_runs()
    {
        var client = pipeline.Client;
        var cancelled = await client.SubmitAsync(Scenarios.MlpJob([9, 9, 9, 9]));
        var viaPost = await client.SubmitAsync(Scenarios.MlpJob([8, 8, 8, 8]));
        var kept = await client.SubmitAsync(Scenarios.MlpJob([7, 7, 7, 7]));

        using var deleted = await client.DeleteAsync($"/v1/jobs/{cancelled.Id}");
        deleted.StatusCode.ShouldBe(HttpStatusCode.OK);
        using var posted = await client.PostAsync($"/v1/jobs/{viaPost.Id}:cancel", null);
        posted.StatusCode.ShouldBe(HttpStatusCode.OK);
        using var again = await client.DeleteAsync($"/v1/jobs/{cancelled.Id}");
        again.StatusCode.ShouldBe(HttpStatusCode.OK);
        await client.WaitForStatusAsync(cancelled.Id, "cancelled");
        await client.WaitForStatusAsync(viaPost.Id, "cancelled");

        await using var processor = new PipelineHost(pipeline.Nats.Url, pipeline.Host.Schema, "processor");
        _ = processor.Server;
        await client.WaitForStatusAsync(kept.Id, "succeeded");

        var events = await client.GetFromJsonAsync<System.Text.Json.JsonElement>($"/v1/jobs/{cancelled.Id}/events");
        events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldBe(["v1.job_submitted", "v1.job_cancelled"]);
        (await client.GetJobAsync(cancelled.Id)).GetProperty("worker").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
        using var finished = await client.DeleteAsync($"/v1/jobs/{kept.Id}");
        finished.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        using var unknown = await client.DeleteAsync($"/v1/jobs/{Guid.NewGuid()}");
        unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Submit_with_wait_answers_202_when_the_job_does_not_finish_in_time()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var response = await pipeline.Client.PostAsync("/v1/jobs?wait=300ms",
            new StringContent(Scenarios.MlpJob([1, 2, 3, 4]), System.Text.Encoding.UTF8, "application/json"));

        response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        watch.ElapsedMilliseconds.ShouldBeGreaterThanOrEqualTo(300);
        (await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("status").GetString().ShouldBe("queued");
    }

    [Fact]
    public async Task Job_still_queued_past_its_deadline_expires_and_never_runs()
    {
        var client = pipeline.Client;
        var deadline = DateTimeOffset.UtcNow.AddSeconds(1);
        var late = await client.SubmitAsync(WithDeadline(Scenarios.MlpJob([6, 6, 6, 6]), deadline.ToString("O", System.Globalization.CultureInfo.InvariantCulture)));
        var onTime = await client.SubmitAsync(Scenarios.MlpJob([5, 5, 5, 5]));
        late.Status.ShouldBe(HttpStatusCode.Accepted);
        await Retry.Until("the deadline to pass", () => Task.FromResult(DateTimeOffset.UtcNow), now => now > deadline.AddMilliseconds(100));

        await using var processor = new PipelineHost(pipeline.Nats.Url, pipeline.Host.Schema, "processor");
        _ = processor.Server;

        await client.WaitForStatusAsync(onTime.Id, "succeeded");
        var expired = await client.WaitForStatusAsync(late.Id, "expired");
        expired.GetProperty("completedAt").GetDateTimeOffset().ShouldBeGreaterThan(deadline);
        var events = await client.GetFromJsonAsync<System.Text.Json.JsonElement>($"/v1/jobs/{late.Id}/events");
        events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldBe(["v1.job_submitted", "v1.job_expired"]);
    }

    [Theory]
    [InlineData("2001-01-01T00:00:00Z", "already passed")]
    [InlineData("tomorrow", "ISO 8601")]
    public async Task A_deadline_in_the_past_or_not_a_timestamp_is_refused(string deadline, string message)
    {
        var job = await pipeline.Client.SubmitAsync(WithDeadline(Scenarios.MlpJob([1, 2, 3, 4]), deadline));

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").GetProperty("deadline")[0].GetString()!.ShouldContain(message);
    }

    private static string WithDeadline(string body, string deadline) => $"{{\"deadline\":\"{deadline}\",{body[1..]}";
}
