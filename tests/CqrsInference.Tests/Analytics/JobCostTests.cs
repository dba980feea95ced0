using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Projections.Audit;
using CqrsInference.Projections.Pricing;
using CqrsInference.Tests.Batches;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace CqrsInference.Tests.Analytics;

/// <summary>
/// Exact cost per job on a real pipeline: a workload of batched mlp-test jobs, some failing attempts
/// (fault injection), whose per-job device-seconds must add up to the usage roll-up's busy seconds and
/// to the processor's; the invoice must come out byte for byte the same from a rebuild of the job
/// status from the events; and the invoice belongs to its tenant.
/// </summary>
public sealed class JobCostTests(PipelineForCosts pipeline, ITestOutputHelper output) : IClassFixture<PipelineForCosts>
{
    private const string Fault = "cqrsi-test-fault";

    [Fact]
    public async Task Per_job_device_seconds_add_up_to_the_usage_busy_seconds_and_the_processors_busy_time()
    {
        using var client = await pipeline.TenantClientAsync("costs-a", "submit", "read", "analyst");
        var jobs = await RunWorkloadAsync(client, jobs: 48);

        var costs = new List<JsonElement>();
        foreach (var (id, fault) in jobs)
        {
            var cost = (await client.GetJobAsync(id)).GetProperty("cost");
            costs.Add(cost);
            var (runs, failed) = (cost.GetProperty("runs").GetArrayLength(), cost.GetProperty("failedRuns").GetArrayLength());
            (runs, failed).ShouldBe(fault switch { "transient:1" => (1, 1), "transient" => (0, 3), _ => (1, 0) }, $"job {id} ({fault})");
            var all = cost.GetProperty("runs").EnumerateArray().Concat(cost.GetProperty("failedRuns").EnumerateArray()).ToList();
            cost.GetProperty("deviceSeconds").GetDouble().ShouldBe(all.Sum(r => r.GetProperty("deviceSeconds").GetDouble()), 1e-12);
            all.ShouldAllBe(r => r.GetProperty("pricePerHour").GetDecimal() == PipelineForCosts.CpuPricePerHour && r.GetProperty("deviceClass").GetString() == "cpu");
        }

        var jobsSeconds = costs.Sum(c => c.GetProperty("deviceSeconds").GetDouble());
        var failedSeconds = costs.Sum(c => c.GetProperty("failedDeviceSeconds").GetDouble());
        failedSeconds.ShouldBeGreaterThan(0);

        // The usage roll-up (async daemon), this tenant's rows over the workload's hours.
        var window = $"from={Iso(DateTimeOffset.UtcNow.AddHours(-2))}&to={Iso(DateTimeOffset.UtcNow.AddHours(1))}";
        var usage = await Retry.Until("the usage roll-up to count every run", async () =>
                (await client.GetFromJsonAsync<JsonElement>($"/v1/analytics/usage?{window}&groupBy=tenant")).EnumerateArray()
                    .Where(r => r.GetProperty("tenant").GetString() == "costs-a").ToList(),
            rows => rows.Sum(r => r.GetProperty("succeeded").GetInt64() + r.GetProperty("failed").GetInt64()) == jobs.Count);
        var usageBusy = usage.Sum(r => r.GetProperty("busySeconds").GetDouble());
        Math.Abs(jobsSeconds - usageBusy).ShouldBeLessThanOrEqualTo(0.001 * usageBusy, $"jobs {jobsSeconds} s, usage {usageBusy} s");
        Math.Abs(failedSeconds - usage.Sum(r => r.GetProperty("failedBusySeconds").GetDouble())).ShouldBeLessThanOrEqualTo(0.001 * failedSeconds + 1e-6);

        // Reconciliation over the same hours: every run of every job (all tests' jobs) against the processor's heartbeats.
        var report = await Retry.Until("the processor's heartbeats to count every run",
            async () => await pipeline.Operator.GetFromJsonAsync<JsonElement>($"/v1/analytics/reconciliation?{window}"),
            r => Reconciled(r.GetProperty("total")));
        var total = report.GetProperty("total");
        output.WriteLine($"jobs {jobsSeconds} s (failed {failedSeconds} s), usage {usageBusy} s; reconciliation {total}");
        total.GetProperty("jobsDeviceSeconds").GetDouble().ShouldBeGreaterThanOrEqualTo(Math.Round(jobsSeconds, 6) - 1e-6);
        (total.GetProperty("jobsDeviceSeconds").GetDouble() + total.GetProperty("unattributedBusySeconds").GetDouble() + total.GetProperty("processorIdleSeconds").GetDouble())
            .ShouldBe(total.GetProperty("processorSlotSeconds").GetDouble(), 1e-5);
        report.GetProperty("hours").EnumerateArray().ShouldAllBe(h => h.GetProperty("explanation").GetString()!.Length > 0);
    }

    [Fact]
    public async Task A_batchs_cost_is_the_sum_of_its_jobs_costs_failed_runs_and_retried_attempts_included()
    {
        using var client = await pipeline.TenantClientAsync("costs-batch", "submit", "read");
        var submitted = await client.SubmitBatchAsync(BatchScenarios.File(
            [BatchScenarios.Line(1), BatchScenarios.Line(2, "transient:1"), BatchScenarios.Line(3, "transient"), BatchScenarios.Line(4)]));
        submitted.Status.ShouldBe(HttpStatusCode.Accepted);
        var batch = await client.WaitForBatchAsync(submitted.Id, BatchScenarios.Settled, "to settle");
        (batch.Count("succeeded"), batch.Count("failed")).ShouldBe((3, 1));

        var lines = (await client.LinesAsync(submitted.Id, "results")).Concat(await client.LinesAsync(submitted.Id, "errors"));
        var costs = new List<JsonElement>();
        foreach (var line in lines)
        {
            costs.Add((await client.GetJobAsync(line.GetProperty("jobId").GetGuid())).GetProperty("cost"));
        }

        costs.Sum(c => c.GetProperty("failedRuns").GetArrayLength()).ShouldBe(4); // one of the retried job, three of the failed one
        var cost = batch.GetProperty("cost");
        cost.GetProperty("deviceSeconds").GetDouble().ShouldBe(costs.Sum(c => c.GetProperty("deviceSeconds").GetDouble()), 1e-9);
        cost.GetProperty("failedDeviceSeconds").GetDouble().ShouldBe(costs.Sum(c => c.GetProperty("failedDeviceSeconds").GetDouble()), 1e-9);
        cost.GetProperty("failedDeviceSeconds").GetDouble().ShouldBeGreaterThan(0);
        cost.GetProperty("amount").GetDecimal().ShouldBe(costs.Sum(c => c.GetProperty("amount").GetDecimal()), 1e-12m);
        cost.GetProperty("failedAmount").GetDecimal().ShouldBe(costs.Sum(c => c.GetProperty("failedAmount").GetDecimal()), 1e-12m);
        cost.GetProperty("amount").GetDecimal().ShouldBeGreaterThan(0m);
    }

    [Fact]
    public async Task The_invoice_is_the_same_byte_for_byte_after_the_job_status_is_rebuilt_from_the_events()
    {
        using var client = await pipeline.TenantClientAsync("costs-b", "submit", "read", "analyst");
        var jobs = await RunWorkloadAsync(client, jobs: 12);
        var month = DateTimeOffset.UtcNow.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);

        var before = await client.GetStringAsync($"/v1/analytics/invoice?month={month}");
        var lines = before.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].ShouldBe("jobId,submittedAt,model,modelVersion,runs,failedRuns,deviceSeconds,failedDeviceSeconds,cost,failedCost");
        lines.Length.ShouldBe(jobs.Count + 2);
        lines[^1].ShouldStartWith($"total,,,,{jobs.Count(j => j.Fault != "transient") + jobs.Count(j => j.Fault == "transient:1") + (3 * jobs.Count(j => j.Fault == "transient"))},");
        var columns = lines[1..^1].Select(l => l.Split(',')).ToList();
        lines[^1].Split(',')[6].ShouldBe(columns.Sum(c => decimal.Parse(c[6], System.Globalization.CultureInfo.InvariantCulture)).ToString("F6", System.Globalization.CultureInfo.InvariantCulture));

        // The same code path as ./run.sh replay: the job status rebuilt from the events into fresh tables.
        var replay = pipeline.Host.Services.GetRequiredService<ProjectionReplay>();
        var report = await replay.RunAsync("job-status", progress: null, CancellationToken.None);
        report.Identical.ShouldBeTrue(string.Join("\n", report.Differences.Select(d => d.Problem)));

        var invoices = pipeline.Host.Services.GetRequiredService<InvoiceReader>();
        var rebuilt = await invoices.ReadAsync(report.ReplaySchema, "costs-b", DateTimeOffset.Parse($"{month}-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture), CancellationToken.None);
        rebuilt.ToCsv().ShouldBe(before);
        (await client.GetStringAsync($"/v1/analytics/invoice?month={month}")).ShouldBe(before);
        (await pipeline.Operator.GetStringAsync($"/v1/analytics/invoice?tenant=costs-b&month={month}")).ShouldBe(before);
    }

    [Fact]
    public async Task A_tenant_reads_its_own_invoice_only_and_the_operator_names_the_tenant()
    {
        using var analyst = await pipeline.TenantClientAsync("costs-c", "analyst");

        (await analyst.GetAsync("/v1/analytics/invoice?month=2026-01&tenant=costs-b")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await analyst.GetAsync("/v1/analytics/invoice?month=2026-01&tenant=costs-c")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await analyst.GetStringAsync("/v1/analytics/invoice?month=2026-01")).ShouldBe(
            "jobId,submittedAt,model,modelVersion,runs,failedRuns,deviceSeconds,failedDeviceSeconds,cost,failedCost\ntotal,,,,0,0,0.000000,0.000000,0.000000000,0.000000000\n");
        (await analyst.GetAsync("/v1/analytics/reconciliation")).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await pipeline.Operator.GetAsync("/v1/analytics/invoice?month=2026-01")).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Reconciliation_widens_a_range_to_whole_hours()
    {
        var report = await pipeline.Operator.GetFromJsonAsync<JsonElement>("/v1/analytics/reconciliation?from=2026-01-01T10:20:00Z&to=2026-01-01T10:40:00Z");

        report.GetProperty("from").GetDateTimeOffset().ShouldBe(DateTimeOffset.Parse("2026-01-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        report.GetProperty("to").GetDateTimeOffset().ShouldBe(DateTimeOffset.Parse("2026-01-01T11:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("/v1/analytics/invoice", "month")]
    [InlineData("/v1/analytics/invoice?month=2026-13", "month")]
    [InlineData("/v1/analytics/invoice?month=2026-1", "month")]
    [InlineData("/v1/analytics/invoice?month=26-01-01", "month")]
    [InlineData("/v1/analytics/invoice?month=2026-01&tenant=no%20such!", "tenant")]
    [InlineData("/v1/analytics/reconciliation?from=yesterday", "from")]
    [InlineData("/v1/analytics/reconciliation?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    [InlineData("/v1/analytics/reconciliation?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "to")]
    public async Task Bad_invoice_and_reconciliation_queries_are_400_naming_the_parameter(string query, string field)
    {
        using var analyst = await pipeline.TenantClientAsync("costs-d", "analyst");
        var client = query.Contains("reconciliation", StringComparison.Ordinal) ? pipeline.Operator : analyst;

        using var response = await client.GetAsync(query);

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/problem+json");
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").TryGetProperty(field, out _).ShouldBeTrue();
    }

    /// <summary>
    /// Jobs submitted at once, so that the processor batches them: one in four fails its first attempt,
    /// one in twelve fails every attempt (dead-lettered after three), one in six runs 20 ms longer.
    /// </summary>
    private static async Task<List<(Guid Id, string? Fault)>> RunWorkloadAsync(HttpClient client, int jobs)
    {
        string? FaultOf(int i) => (i % 12) switch { 0 => "transient", 3 or 6 or 9 => "transient:1", 1 or 7 => "sleep:20", _ => null };
        var submitted = await Task.WhenAll(Enumerable.Range(0, jobs).Select(async i =>
        {
            var fault = FaultOf(i);
            var job = await client.SubmitAsync(Scenarios.MlpJob([i, 1, 2, 3], fault is null ? null : $$"""{"{{Fault}}":"{{fault}}"}"""));
            job.Status.ShouldBe(HttpStatusCode.Accepted);
            return (job.Id, fault);
        }));
        foreach (var (id, fault) in submitted)
        {
            await client.WaitForStatusAsync(id, fault == "transient" ? "failed" : "succeeded");
        }

        return submitted.ToList();
    }

    /// <summary>
    /// Jobs and usage agree, and the processor's busy time equals the jobs' device-seconds to the
    /// microsecond (rounding): both are sums of the same measured batch run times, once the heartbeat
    /// after the last run has been recorded.
    /// </summary>
    private static bool Reconciled(JsonElement total) =>
        total.GetProperty("reconciled").GetBoolean() && Math.Abs(total.GetProperty("unattributedBusySeconds").GetDouble()) <= 1e-5;

    private static string Iso(DateTimeOffset time) => Uri.EscapeDataString(time.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
}
