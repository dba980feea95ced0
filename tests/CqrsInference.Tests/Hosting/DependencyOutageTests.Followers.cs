using System.Diagnostics;
using System.Net;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Hosting;

/// <summary>Callers who follow the log (<c>?wait=</c>, SSE) hear of their jobs at once after nats-server restarts.</summary>
public sealed partial class DependencyOutageTests
{
    [Fact]
    public async Task A_caller_waiting_right_after_nats_restarts_is_answered_when_its_job_ends()
    {
        using var client = Client(TestEnvironment.OperatorKey);
        (await client.InferAsync([1, 2, 3, 4], wait: "10s")).Status.ShouldBe(HttpStatusCode.OK);

        // The server's restart loses the API's consumer of the log (ephemeral, in memory).
        await _nats.StopProcessAsync();
        await _nats.StartProcessAsync();
        await Retry.Until("the API to take jobs again", () => client.SubmitAsync(Scenarios.MlpJob([6, 6, 6, 6])),
            job => job.Status == HttpStatusCode.Accepted, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));

        // Run at once by request/reply; its ending must reach the caller from a new consumer, not
        // after the client library's check of two missed heartbeats (10 s).
        var took = Stopwatch.StartNew();
        var answered = await client.InferAsync([7, 7, 7, 7], wait: "5s");
        answered.Status.ShouldBe(HttpStatusCode.OK, $"after {took.ElapsedMilliseconds} ms: {answered.Body}");
        answered.Body.GetProperty("status").GetString().ShouldBe("succeeded");
    }
}
