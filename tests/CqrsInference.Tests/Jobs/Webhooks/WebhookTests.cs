using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Jobs.Webhooks;

/// <summary>A real HTTP endpoint on loopback that fails the first <c>failures</c> calls, then accepts.</summary>
public sealed class WebhookReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private int _failures;

    public WebhookReceiver(int failures)
    {
        _failures = failures;
        Url = $"http://127.0.0.1:{NatsServerProcess.FreePort()}/hooks/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    public string Url { get; }

    public ConcurrentQueue<(int Status, string Signature, string Body)> Calls { get; } = new();

    public void Dispose() => _listener.Close();

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            var status = Interlocked.Decrement(ref _failures) >= 0 ? 500 : 200;
            Calls.Enqueue((status, context.Request.Headers["Cqrsi-Signature"] ?? "", body));
            context.Response.StatusCode = status;
            context.Response.Close();
        }
    }
}

public sealed class WebhookTests(PipelineWithWebhooks pipeline) : IClassFixture<PipelineWithWebhooks>
{
    [Fact]
    public async Task Finished_job_calls_its_webhook_signed_and_retries_after_a_failure()
    {
        using var receiver = new WebhookReceiver(failures: 1);
        var body = Scenarios.MlpJob([1, 2, 3, 4]).TrimEnd('}') + $",\"webhook\":\"{receiver.Url}\"}}";

        var job = await pipeline.Client.SubmitAsync(body);
        job.Status.ShouldBe(HttpStatusCode.Accepted);

        await Retry.Until("the webhook to be delivered", () => Task.FromResult(receiver.Calls.Count), n => n >= 2);
        var calls = receiver.Calls.ToList();
        calls.Select(c => c.Status).ShouldBe([500, 200]);
        var delivered = JsonDocument.Parse(calls[1].Body).RootElement;
        delivered.GetProperty("id").GetGuid().ShouldBe(job.Id);
        delivered.GetProperty("status").GetString().ShouldBe("succeeded");
        delivered.GetProperty("outputs")[0].GetProperty("name").GetString().ShouldBe("y");

        // The tenant verifies with its own key (HMAC of the master key and the tenant), which only
        // an admin can read from the API.
        (await pipeline.Client.GetAsync("/v1/admin/webhook-key?tenant=default")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var tenantKey = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(PipelineWithWebhooks.SigningKey), Encoding.UTF8.GetBytes("tenant:default")));
        var parts = calls[1].Signature.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var expected = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(tenantKey), Encoding.UTF8.GetBytes($"{parts["t"]}.{calls[1].Body}")));
        parts["v1"].ShouldBe(expected);
    }

    [Fact]
    public async Task A_webhook_that_is_not_an_http_url_is_refused()
    {
        var body = Scenarios.MlpJob([1, 2, 3, 4]).TrimEnd('}') + ",\"webhook\":\"file:///etc/passwd\"}";

        var job = await pipeline.Client.SubmitAsync(body);

        job.Status.ShouldBe(HttpStatusCode.UnprocessableEntity);
        job.Body.GetProperty("errors").GetProperty("webhook")[0].GetString()!.ShouldContain("http");
    }
}
