using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Processors;

/// <summary>The API and projections; each test queues work first, then starts one single-slot processor.</summary>
public sealed class SchedulingTests(PipelineWithTenantKeysAndNoProcessor pipeline) : IClassFixture<PipelineWithTenantKeysAndNoProcessor>
{
    [Fact]
    public async Task Interactive_work_goes_first_and_batch_work_still_gets_one_job_in_five()
    {
        using var alice = await pipeline.TenantAsync("alice");
        var batch = await SubmitAsync(alice, 10, "batch");
        var interactive = await SubmitAsync(alice, 10, "interactive");

        await using (pipeline.StartSingleSlotProcessor())
        {
            var order = await RunOrderAsync(alice, batch.Concat(interactive));

            // Four interactive jobs to one batch job while both wait, then the batch jobs left.
            var kinds = order.Select(id => batch.Contains(id) ? 'B' : 'I');
            new string(kinds.ToArray()).ShouldBe("IIIIBIIIIBIIBBBBBBBB");
        }
    }

    [Fact]
    public async Task A_tenants_burst_does_not_hold_up_another_tenants_jobs()
    {
        using var carol = await pipeline.TenantAsync("carol");
        using var dave = await pipeline.TenantAsync("dave");
        var burst = await SubmitAsync(carol, 12, "batch");
        var few = await SubmitAsync(dave, 3, "batch");

        // What operators see of it: fifteen batch jobs of two tenants waiting in region local.
        using (var admin = pipeline.Admin())
        {
            var queue = await Retry.Until("the queue counts", async () => (await admin.GetFromJsonAsync<JsonElement>("/v1/analytics/queues"))
                .EnumerateArray().Single(q => q.GetProperty("model").GetString() == "mlp-test"), q => q.GetProperty("waiting").GetInt64() == 15);
            queue.GetProperty("region").GetString().ShouldBe("local");
            queue.GetProperty("batchWaiting").GetInt64().ShouldBe(15);
            queue.GetProperty("interactiveWaiting").GetInt64().ShouldBe(0);
            queue.GetProperty("tenantsWaiting").GetInt32().ShouldBe(2);
        }

        await using (pipeline.StartSingleSlotProcessor())
        {
            var carolOrder = await RunOrderAsync(carol, burst);
            var daveOrder = await RunOrderAsync(dave, few);
            var all = carolOrder.Concat(daveOrder).ToList();
            var started = new Dictionary<Guid, DateTimeOffset>();
            foreach (var id in burst)
            {
                started[id] = (await carol.GetJobAsync(id)).GetProperty("startedAt").GetDateTimeOffset();
            }

            foreach (var id in few)
            {
                started[id] = (await dave.GetJobAsync(id)).GetProperty("startedAt").GetDateTimeOffset();
            }

            // Dave's three jobs, queued behind Carol's twelve, run as every other job.
            var order = all.OrderBy(id => started[id]).ToList();
            few.Select(id => order.IndexOf(id)).Order().ShouldBe([1, 3, 5]);
        }
    }

    private static async Task<List<Guid>> SubmitAsync(HttpClient client, int count, string priority)
    {
        var ids = new List<Guid>();
        for (var i = 0; i < count; i++)
        {
            var body = $$"""{"priority":"{{priority}}",{{Scenarios.MlpJob([i, 0, 0, 0], """{"cqrsi-test-fault":"sleep:20"}""")[1..]}}""";
            var job = await client.SubmitAsync(body);
            job.Status.ShouldBe(HttpStatusCode.Accepted, job.Body.ToString());
            ids.Add(job.Id);
        }

        return ids;
    }

    /// <summary>Waits for the jobs to succeed and returns them in the order they started.</summary>
    private static async Task<List<Guid>> RunOrderAsync(HttpClient client, IEnumerable<Guid> jobs)
    {
        var started = new List<(Guid Id, DateTimeOffset At)>();
        foreach (var id in jobs)
        {
            var done = await client.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(30));
            started.Add((id, done.GetProperty("startedAt").GetDateTimeOffset()));
        }

        return started.OrderBy(s => s.At).Select(s => s.Id).ToList();
    }
}
