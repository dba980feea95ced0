using CqrsInference.Commands.Jobs;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Processors;

public sealed class ProcessorFaultTests(PipelineWithFaultInjection pipeline) : IClassFixture<PipelineWithFaultInjection>
{
    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Poison_job_ends_failed_after_max_deliver_attempts_while_other_jobs_flow()
    {
        var poison = await _client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4], """{"cqrsi-test-fault":"transient"}"""));
        var healthy = new List<SubmittedJob>();
        for (var i = 0; i < 10; i++)
        {
            healthy.Add(await _client.SubmitAsync(Scenarios.MlpJob([i, 0, 0, 1])));
        }

        foreach (var job in healthy)
        {
            await _client.WaitForStatusAsync(job.Id, "succeeded");
        }

        var failed = await _client.WaitForStatusAsync(poison.Id, "failed");
        failed.GetProperty("attempts").GetInt32().ShouldBe(3);
        var error = failed.GetProperty("error");
        error.GetProperty("deadLettered").GetBoolean().ShouldBeTrue();
        error.GetProperty("code").GetString().ShouldBe("injected_fault");
        error.GetProperty("message").GetString()!.ShouldContain("after 3 attempts");

        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{poison.Id}/events");
        // Each attempt was short: its start travels on its ending (no separate job_started).
        events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldBe([
            "v1.job_submitted", "v1.job_attempt_failed", "v1.job_attempt_failed", "v1.job_failed",
        ]);
        events.EnumerateArray().Skip(1).ShouldAllBe(e => e.GetProperty("data").GetProperty("start").GetProperty("queueWaitMs").GetDouble() >= 0);
    }

    [Fact]
    public async Task Job_running_longer_than_ack_wait_is_not_redelivered()
    {
        // AckWait is 2 s here; the job runs 5 s and lives on AckProgress heartbeats.
        var job = await _client.SubmitAsync(Scenarios.MlpJob([1, 1, 2, 2], """{"cqrsi-test-fault":"sleep:5000"}"""));

        var done = await _client.WaitForStatusAsync(job.Id, "succeeded", TimeSpan.FromSeconds(30));

        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("runMs").GetDouble().ShouldBeGreaterThan(5000);
        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");
        events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldBe(["v1.job_submitted", "v1.job_started", "v1.job_succeeded"]);

        // A long run announced its start; its ending carries none.
        events[2].GetProperty("data").GetProperty("start").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task Time_travel_shows_a_retried_job_as_it_stood_after_each_event()
    {
        var job = await _client.SubmitAsync(Scenarios.MlpJob([2, 0, 1, 0], """{"cqrsi-test-fault":"transient:1"}"""));
        await _client.WaitForStatusAsync(job.Id, "succeeded");
        var events = await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}/events");
        events.EnumerateArray().Select(e => e.GetProperty("type").GetString()).ShouldBe(
            ["v1.job_submitted", "v1.job_attempt_failed", "v1.job_succeeded"]);

        async Task<JsonElement> At(string query) => await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{job.Id}?{query}");

        (await At("version=1")).GetProperty("status").GetString().ShouldBe("queued");
        var backInQueue = await At("version=2");
        backInQueue.GetProperty("status").GetString().ShouldBe("queued");
        backInQueue.GetProperty("attempts").GetInt32().ShouldBe(1);
        backInQueue.GetProperty("startedAt").ValueKind.ShouldBe(JsonValueKind.String);
        backInQueue.GetProperty("error").GetProperty("code").GetString().ShouldBe("injected_fault");
        var final = await At("version=3");
        final.GetProperty("status").GetString().ShouldBe("succeeded");
        final.GetProperty("attempts").GetInt32().ShouldBe(2);
        final.ToString().ShouldBe((await _client.GetJobAsync(job.Id)).ToString());

        var failedAt = events[1].GetProperty("timestamp").GetDateTimeOffset();
        var asOf = Uri.EscapeDataString(failedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        (await At($"asOf={asOf}")).GetProperty("status").GetString().ShouldBe("queued");
        using var before = await _client.GetAsync($"/v1/jobs/{job.Id}?asOf=2000-01-01T00:00:00Z");
        before.StatusCode.ShouldBe(System.Net.HttpStatusCode.NotFound);
        using var bad = await _client.GetAsync($"/v1/jobs/{job.Id}?version=zero");
        bad.StatusCode.ShouldBe(System.Net.HttpStatusCode.UnprocessableEntity);
    }

    [Fact]
    public async Task A_job_whose_batch_fails_outside_the_model_on_every_delivery_ends_failed_dead_lettered_not_stuck()
    {
        var job = await _client.SubmitAsync(Scenarios.MlpJob([5, 4, 3, 2], """{"cqrsi-test-fault":"crash"}"""));

        var failed = await _client.WaitForStatusAsync(job.Id, "failed", TimeSpan.FromSeconds(90));

        var error = failed.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe(JobErrorCodes.ProcessorError);
        error.GetProperty("deadLettered").GetBoolean().ShouldBeTrue();
        error.GetProperty("message").GetString()!.ShouldContain("InvalidCastException");
    }

    [Fact]
    public async Task Server_sent_events_follow_a_job_to_its_end()
    {
        var job = await _client.SubmitAsync(Scenarios.MlpJob([3, 3, 3, 3], """{"cqrsi-test-fault":"sleep:700"}"""));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{job.Id}/stream");
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/event-stream");

        var types = new List<string>();
        JsonElement last = default;
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                types.Add(line["event: ".Length..]);
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && types[^1] == "status")
            {
                last = JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone();
            }
        }

        types.ShouldContain("v1.job_succeeded");
        types[^1].ShouldBe("status");
        last.GetProperty("status").GetString().ShouldBe("succeeded");
    }
}
