using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CqrsInference.Processors.Runtime;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.ObjectStore;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineWithSmallClaimCheckThreshold : PipelineWithAllRoles
{
    public static readonly Dictionary<string, string?> Threshold = new() { ["ClaimCheck:ThresholdBytes"] = "512" };

    protected override string Roles => "api,projections";

    protected override IReadOnlyDictionary<string, string?>? Settings => Threshold;

    public PipelineHost StartProcessor()
    {
        var processor = new PipelineHost(Nats.Url, Host.Schema, "processor", Threshold);
        _ = processor.Server;
        return processor;
    }
}
