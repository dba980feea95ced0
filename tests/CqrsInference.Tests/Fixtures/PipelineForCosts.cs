namespace CqrsInference.Tests.Fixtures;

/// <summary>
/// The whole pipeline (mlp-test, batching) with fault injection, three deliveries, a price for cpu
/// device-hours, and processors that heartbeat twice a second, so that their busy time is counted soon
/// after the runs. The ack wait is long: a job redelivered while it waits would run twice, and the
/// second run's time would belong to no job (the reconciliation test counts it).
/// </summary>
public sealed class PipelineForCosts : PipelineWithAllRoles
{
    public const decimal CpuPricePerHour = 0.36m;

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Topology:JobAckWait"] = "00:00:30",
        ["Topology:MaxDeliver"] = "3",
        ["Processor:FaultInjection"] = "true",
        ["Processor:RetryBaseDelay"] = "00:00:00.050",
        ["Processor:HeartbeatInterval"] = "00:00:00.500",
        ["Processor:Models:0"] = "mlp-test",
        ["Analytics:PricePerHour:cpu"] = "0.36",
    };
}
