using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Pricing;
using CqrsInference.Projections.JobStatus;
using CqrsInference.Projections.Pricing;

namespace CqrsInference.Tests.Analytics;

/// <summary>The rules of a job's cost without a server: which price is in force, which runs a job keeps, how an invoice is printed.</summary>
public sealed class JobCostRulesTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly JobContext Cpu = new("t", "mlp-test", "local", "cpu");

    [Fact]
    public void A_run_is_priced_by_the_last_list_set_before_it_ended_and_runs_before_the_history_by_the_first()
    {
        IReadOnlyList<V1.PriceListSet> history =
        [
            new(new Dictionary<string, decimal> { ["cpu"] = 1m }, T0, "a"),
            new(new Dictionary<string, decimal> { ["cpu"] = 2m, ["h100"] = 4m }, T0.AddHours(1), "b"),
        ];

        PriceLists.PriceAt(history, "cpu", T0.AddMinutes(-5)).ShouldBe(1m);
        PriceLists.PriceAt(history, "CPU", T0.AddMinutes(59)).ShouldBe(1m);
        PriceLists.PriceAt(history, "cpu", T0.AddHours(1)).ShouldBe(2m);
        PriceLists.PriceAt(history, "h100", T0).ShouldBe(0m);
        PriceLists.PriceAt([], "cpu", T0).ShouldBe(0m);
        PriceLists.Differs(new Dictionary<string, decimal> { ["CPU"] = 2m, ["h100"] = 4m }, history[^1]).ShouldBeFalse();
        PriceLists.Differs(new Dictionary<string, decimal> { ["cpu"] = 2m }, history[^1]).ShouldBeTrue();
    }

    [Fact]
    public void A_job_keeps_every_run_of_every_attempt_and_series_and_a_failure_without_a_run_adds_none()
    {
        var id = Guid.NewGuid();
        object[] events =
        [
            new V1.JobSubmitted(id, "t", "mlp-test", "1", "local", "batch", T0, "d", 10, null),
            new V1.JobAttemptFailed(id, 1, "w", "cpu", T0.AddSeconds(1), "fault", "x", TimeSpan.Zero, Context: Cpu, RunMs: 8, BatchSize: 4),
            new V1.JobFailed(id, 2, "w", "cpu", T0.AddSeconds(2), "fault", "x", DeadLettered: true, Cpu, RunMs: 3, BatchSize: 1),
            new V1.JobRetried(id, 2, "t", "mlp-test", "local", "batch", T0.AddSeconds(3), "op"),
            new V1.JobAttemptFailed(id, 1, "w", "cpu", T0.AddSeconds(4), "processor_error", "outside the model", TimeSpan.Zero, Context: Cpu, Series: 2),
            new V1.JobSucceeded(id, 2, "w", "cpu", T0.AddSeconds(5), 10, 2, [], null, Cpu, Series: 2),
        ];

        var status = events.Aggregate((JobStatus?)null, JobStatusProjection.Evolve)!;

        status.Runs!.Select(r => (r.Series, r.Attempt, r.Outcome, r.DeviceSeconds())).ShouldBe(
            [(1, 1, EventNames.JobAttemptFailed, 0.002), (1, 2, EventNames.JobFailed, 0.003), (2, 2, EventNames.JobSucceeded, 0.005)]);
        var cost = JobCost.Of(status.Runs, [new V1.PriceListSet(new Dictionary<string, decimal> { ["cpu"] = 3.6m }, T0, "a")]);
        cost.DeviceSeconds.ShouldBe(0.010, 1e-15);
        cost.FailedDeviceSeconds.ShouldBe(0.005, 1e-15);
        cost.Amount.ShouldBe(0.00001m);
        (cost.Runs.Count, cost.FailedRuns.Count).ShouldBe((1, 2));
    }

    [Fact]
    public void An_invoice_prints_fixed_decimals_quotes_text_and_totals_the_printed_lines()
    {
        var invoice = new Invoice("t", T0, [
            new InvoiceLine(Guid.Parse("00000000-0000-0000-0000-000000000001"), T0, "mlp-test", "1", 2, 1, 0.123456m, 0m, 0.000000123m, 0m),
            new InvoiceLine(Guid.Parse("00000000-0000-0000-0000-000000000002"), T0.AddSeconds(1), "=cmd", "v,2", 1, 0, 1m, 0m, 0.5m, 0m),
        ]);

        // The tests run in globalization-invariant mode; the code names the invariant culture in every format, so no host culture changes a byte.
        invoice.ToCsv().ShouldBe(
            "jobId,submittedAt,model,modelVersion,runs,failedRuns,deviceSeconds,failedDeviceSeconds,cost,failedCost\n"
            + "00000000-0000-0000-0000-000000000001,2026-01-01T10:00:00.0000000Z,mlp-test,1,2,1,0.123456,0.000000,0.000000123,0.000000000\n"
            + "00000000-0000-0000-0000-000000000002,2026-01-01T10:00:01.0000000Z,\"'=cmd\",\"v,2\",1,0,1.000000,0.000000,0.500000000,0.000000000\n"
            + "total,,,,3,1,1.123456,0.000000,0.500000123,0.000000000\n");
    }
}
