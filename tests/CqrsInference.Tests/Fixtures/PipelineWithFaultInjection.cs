using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

/// <summary>
/// The whole pipeline with short ack waits, three deliveries at most and fault injection on, so
/// redelivery, dead-lettering and heartbeats happen within a test's patience.
/// </summary>
public sealed class PipelineWithFaultInjection : PipelineWithAllRoles
{
    public static readonly IReadOnlyDictionary<string, string> Topology = new Dictionary<string, string>
    {
        ["Topology:JobAckWait"] = "00:00:02",
        ["Topology:MaxDeliver"] = "3",
        ["Processor:FaultInjection"] = "true",
        ["Processor:RetryBaseDelay"] = "00:00:00.100",
        ["Processor:Models:0"] = "mlp-test",
    };

    /// <summary>A second region, where no processor lives (its jobs overflow to local).</summary>
    public const string QuietRegion = "metrics";

    protected override IReadOnlyDictionary<string, string?>? Settings => Topology
        .Append(new("Submit:Regions:0", "local")).Append(new("Submit:Regions:1", QuietRegion))
        .ToDictionary(p => p.Key, p => (string?)p.Value);
}

/// <summary>
/// As <see cref="PipelineWithFaultInjection"/>, with one slot per model: a job that kept its slot
/// would stop every job after it.
/// </summary>
public sealed class PipelineWithOneSlotAndFaultInjection : PipelineWithAllRoles
{
    protected override IReadOnlyDictionary<string, string?>? Settings => PipelineWithFaultInjection.Topology
        .Append(new("Processor:Slots", "1"))
        .ToDictionary(p => p.Key, p => (string?)p.Value);
}

/// <summary>The API and projections in the test process; processors are started by the tests as child processes.</summary>
public class PipelineWithProcessorProcesses : PipelineWithAllRoles
{
    protected override string Roles => "api,projections";

    /// <summary>
    /// A processor process answers its first interactive job on cold code (JIT) while the machine
    /// may be loaded by the rest of the suite: the API waits this long for it before queueing the job.
    /// </summary>
    public const string InteractiveAnswerWithin = "00:00:10";

    protected override IReadOnlyDictionary<string, string?>? Settings => PipelineWithFaultInjection.Topology
        .Append(new("Submit:InteractiveAnswerWithin", InteractiveAnswerWithin))
        .ToDictionary(p => p.Key, p => (string?)p.Value);

    public Task<ProcessorProcess> StartProcessorAsync(string workerId, IReadOnlyDictionary<string, string>? extra = null)
    {
        var settings = new Dictionary<string, string>(PipelineWithFaultInjection.Topology);
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            settings[key] = value;
        }

        return ProcessorProcess.StartAsync(Nats.Url, workerId, settings);
    }
}

/// <summary>As <see cref="PipelineWithProcessorProcesses"/>, serving two regions: <c>local</c> and <see cref="West"/>.</summary>
public sealed class PipelineWithProcessorProcessesInTwoRegions : PipelineWithProcessorProcesses
{
    public const string West = "west";

    protected override IReadOnlyDictionary<string, string?>? Settings => base.Settings!
        .Append(new("Submit:Regions:0", "local")).Append(new("Submit:Regions:1", West))
        .ToDictionary(p => p.Key, p => p.Value);
}
