using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineWithWebhooks : PipelineWithAllRoles
{
    public const string SigningKey = "test-webhook-signing-key";

    protected override IReadOnlyDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["Webhooks:SigningKey"] = SigningKey };
}
