using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;
using CqrsInference.Tests.Infrastructure;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.JetStream;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineWithPricesAndNoProcessor : PipelineWithAllRoles
{
    protected override string Roles => "api,projections";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Analytics:PricePerHour:h100"] = "3.6",
        ["Analytics:PricePerHour:cpu"] = "0.36",
        ["Analytics:ProcessorTimeout"] = "00:00:03",
    };

    public IDocumentStore Store => Host.Services.GetRequiredService<IDocumentStore>();
}
