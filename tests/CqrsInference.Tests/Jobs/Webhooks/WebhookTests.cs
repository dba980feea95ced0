using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CqrsInference.Messaging;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using StandardWebhooks;
using StandardWebhooks.Diagnostics;

namespace CqrsInference.Tests.Jobs.Webhooks;

public sealed class WebhookTests(PipelineWithWebhooks pipeline) : IClassFixture<PipelineWithWebhooks>
{
    private static string WithWebhook(string url, string? events = null) =>
        Scenarios.MlpJob([1, 2, 3, 4]).TrimEnd('}') + $",\"webhook\":{JsonSerializer.Serialize(url)}" + (events is null ? "" : $",\"webhookEvents\":{events}") + "}";

    [Fact]
    public async Task Finished_job_calls_its_webhook_signed_and_retries_after_a_failure()
    {
        using var receiver = new WebhookReceiver(pipeline.AllowedPort(), failures: 1);

        var job = await pipeline.Client.SubmitAsync(WithWebhook(receiver.Url));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        await Retry.Until("the webhook to be delivered", () => Task.FromResult(receiver.Calls.Count), n => n >= 2);
        var calls = receiver.Calls.ToList();
        calls.Select(c => c.Status).ShouldBe([500, 200]);
        var delivered = JsonDocument.Parse(calls[1].Body).RootElement;
        delivered.GetProperty("id").GetGuid().ShouldBe(job.Id);
        delivered.GetProperty("type").GetString().ShouldBe("job.completed");
        delivered.GetProperty("status").GetString().ShouldBe("succeeded");
        delivered.GetProperty("outputs")[0].GetProperty("name").GetString().ShouldBe("y");

        // A retry is the same message (webhook-id, for the receiver's deduplication), another delivery.
        calls.Select(c => c.Headers["webhook-id"]).ShouldBe([$"{job.Id}:completed", $"{job.Id}:completed"]);
        calls.Select(c => c.Headers["Cqrsi-Delivery"]).Distinct().Count().ShouldBe(2);

        // The tenant verifies with its own secret (derived from the master key and the tenant), which
        // only an admin can read from the API, using a Standard Webhooks library as any receiver would.
        (await pipeline.Client.GetAsync("/v1/admin/webhook-key?tenant=default")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var webhook = new StandardWebhook(await SecretAsync());
        webhook.Verify(calls[1].Body, HeadersOf(calls[1]));
        Should.Throw<WebhookVerificationException>(() => webhook.Verify(calls[1].Body.Replace("succeeded", "failed", StringComparison.Ordinal), HeadersOf(calls[1])));

        // The deprecated Cqrsi-Signature is still sent, and still right, for this release.
        var tenantKey = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(PipelineWithWebhooks.SigningKey), Encoding.UTF8.GetBytes("tenant:default")));
        var parts = calls[1].Signature.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var expected = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(tenantKey), Encoding.UTF8.GetBytes($"{parts["t"]}.{calls[1].Body}")));
        parts["v1"].ShouldBe(expected);
    }

    [Fact]
    public async Task A_job_asking_for_started_and_completed_gets_both_calls_each_verified_by_a_Standard_Webhooks_library()
    {
        using var receiver = new WebhookReceiver(pipeline.AllowedPort());

        var job = await pipeline.Client.SubmitAsync(WithWebhook(receiver.Url, """["started","completed"]"""));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        await Retry.Until("both calls to be delivered", () => Task.FromResult(receiver.Calls.Count), n => n >= 2);
        var calls = receiver.Calls.ToDictionary(c => c.Type);
        calls.Keys.ShouldBe(["job.started", "job.completed"], ignoreOrder: true);
        var webhook = new StandardWebhook(await SecretAsync());
        foreach (var (type, call) in calls)
        {
            webhook.Verify(call.Body, HeadersOf(call));
            call.Headers["webhook-id"].ShouldBe($"{job.Id}:{type["job.".Length..]}");
            JsonDocument.Parse(call.Body).RootElement.GetProperty("startedAt").ValueKind.ShouldBe(JsonValueKind.String);
        }
    }

    [Theory]
    [InlineData("""["finished"]""", "unknown event 'finished'")]
    [InlineData("[]", "at least one")]
    [InlineData("""["started","started"]""", "twice")]
    [InlineData("\"started\"", "array")]
    [InlineData("""[1]""", "array")]
    public async Task A_webhook_filter_that_names_no_known_event_or_one_twice_is_refused(string filter, string says)
    {
        var job = await pipeline.Client.SubmitAsync(WithWebhook("https://example.com/hooks/", filter));

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").GetProperty("webhookEvents")[0].GetString()!.ShouldContain(says);
    }

    [Fact]
    public async Task A_webhook_filter_without_a_webhook_is_refused()
    {
        var job = await pipeline.Client.SubmitAsync(Scenarios.MlpJob([1, 2, 3, 4]).TrimEnd('}') + ",\"webhookEvents\":[\"started\"]}");

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").GetProperty("webhookEvents")[0].GetString()!.ShouldContain("needs a webhook");
    }

    /// <summary>The tenant's Standard Webhooks secret, as its admin reads it.</summary>
    private async Task<string> SecretAsync()
    {
        var key = await pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/admin/webhook-key?tenant=default");
        var secret = key.GetProperty("secret").GetString()!;
        secret.ShouldStartWith("whsec_");
        return secret;
    }

    private static HeaderDictionary HeadersOf(WebhookCall call) =>
        new(call.Headers.ToDictionary(h => h.Key, h => new StringValues(h.Value)));

    [Fact]
    public async Task A_webhook_that_is_not_an_http_url_is_refused()
    {
        var job = await pipeline.Client.SubmitAsync(WithWebhook("file:///etc/passwd"));

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").GetProperty("webhook")[0].GetString()!.ShouldContain("http");
    }

    [Fact]
    public async Task A_webhook_to_the_platform_or_its_network_is_refused_at_submit_and_nothing_is_stored()
    {
        var (nats, js) = await pipeline.ConnectAsync();
        await using var _ = nats;
        var before = await JobMessages.CountAsync(js, NatsTopology.EventsStream);
        string[] refused =
        [
            $"http://127.0.0.1:{pipeline.PortNotAllowed()}/hooks/", // loopback, on a port the allow-list does not name
            "http://127.0.0.1:8222/connz", // the NATS monitor
            "https://127.0.0.1:8222/connz",
            "https://169.254.169.254/latest/meta-data/", // cloud metadata
            "https://2130706433/", // 127.0.0.1 as one number
            "https://0x7f.1/",
            "https://[::ffff:127.0.0.1]/",
            "https://10.0.0.8/",
            "https://localhost/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://user:secret@example.com/hook",
            "http://example.com/hook", // http to a host not on the allow-list
        ];

        foreach (var url in refused)
        {
            var job = await pipeline.Client.SubmitAsync(WithWebhook(url));

            job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity, url);
            job.Body.GetProperty("errors").GetProperty("webhook")[0].GetString()!.ShouldStartWith("webhook", Case.Sensitive, url);
        }

        (await JobMessages.CountAsync(js, NatsTopology.EventsStream)).ShouldBe(before);
    }

    [Fact]
    public async Task A_redirect_is_never_followed_and_counts_as_a_failed_call()
    {
        using var forbidden = new WebhookReceiver(pipeline.PortNotAllowed());
        using var allowed = new WebhookReceiver(pipeline.AllowedPort());
        using var toForbidden = new WebhookReceiver(pipeline.AllowedPort(), redirectTo: forbidden.Url);
        using var toAllowed = new WebhookReceiver(pipeline.AllowedPort(), redirectTo: allowed.Url);

        (await pipeline.Client.SubmitAsync(WithWebhook(toForbidden.Url))).Status.ShouldBe(HttpStatusCode.Accepted);
        (await pipeline.Client.SubmitAsync(WithWebhook(toAllowed.Url))).Status.ShouldBe(HttpStatusCode.Accepted);

        // Each 307 is a failed attempt, tried again after 1 s; neither target is ever called, not
        // even the one webhooks may call.
        await Retry.Until(
            "both redirects to be tried again (or followed)",
            () => Task.FromResult((Again: Math.Min(toForbidden.Calls.Count, toAllowed.Calls.Count), Followed: forbidden.Calls.Count + allowed.Calls.Count)),
            calls => calls.Again >= 2 || calls.Followed > 0);
        forbidden.Calls.ShouldBeEmpty();
        allowed.Calls.ShouldBeEmpty();
    }
}
