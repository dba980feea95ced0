using System.Diagnostics;
using System.Net;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Webhooks;

public sealed class WebhookTenantIsolationTests(PipelineWithWebhookTenants pipeline) : IClassFixture<PipelineWithWebhookTenants>
{
    private static string WithWebhook(string url) => Scenarios.MlpJob([1, 2, 3, 4]).TrimEnd('}') + $",\"webhook\":{JsonSerializer.Serialize(url)}}}";

    [Fact]
    public async Task A_tenant_whose_endpoint_never_answers_does_not_delay_another_tenants_webhook()
    {
        using var blackHole = new BlackHole(pipeline.AllowedPort());
        using var receiver = new WebhookReceiver(pipeline.AllowedPort());
        using var hanging = await pipeline.TenantAsync("tenant-a");
        using var prompt = await pipeline.TenantAsync("tenant-b");

        // More of tenant A's calls than the dispatcher runs at once (4), each hanging for 30 s.
        for (var i = 0; i < 6; i++)
        {
            (await hanging.SubmitAsync(WithWebhook(blackHole.Url))).Status.ShouldBe(HttpStatusCode.Accepted);
        }

        await Retry.Until("tenant A's calls to hang", () => Task.FromResult(blackHole.Connections), n => n >= 2);
        var clock = Stopwatch.StartNew();
        var job = await prompt.SubmitAsync(WithWebhook(receiver.Url));
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        await Retry.Until("tenant B's webhook", () => Task.FromResult(receiver.Calls.Count), n => n >= 1, TimeSpan.FromSeconds(25));
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(5));
        JsonDocument.Parse(receiver.Calls.Single().Body).RootElement.GetProperty("id").GetGuid().ShouldBe(job.Id);
        blackHole.Connections.ShouldBe(2, "tenant A has at most Webhooks:MaxConcurrentPerTenant calls in flight");
    }
}
