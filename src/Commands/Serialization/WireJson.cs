using System.Text.Json;
using System.Text.Json.Serialization;
using CqrsInference.Commands.Jobs;

namespace CqrsInference.Commands;

/// <summary>Source-generated JSON for everything that crosses NATS.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(JobCommand))]
[JsonSerializable(typeof(List<Tensor>))]
[JsonSerializable(typeof(V1.JobSubmitted))]
[JsonSerializable(typeof(V1.JobStarted))]
[JsonSerializable(typeof(V1.JobAttemptFailed))]
[JsonSerializable(typeof(V1.JobSucceeded))]
[JsonSerializable(typeof(V1.JobFailed))]
[JsonSerializable(typeof(V1.JobCancelled))]
[JsonSerializable(typeof(V1.JobExpired))]
[JsonSerializable(typeof(V1.JobRetried))]
[JsonSerializable(typeof(V1.JobShadowResult))]
[JsonSerializable(typeof(V1.ProcessorOnline))]
[JsonSerializable(typeof(V1.ProcessorHeartbeat))]
[JsonSerializable(typeof(V1.ProcessorOffline))]
[JsonSerializable(typeof(WebhookOwed))]
public sealed partial class WireJson : JsonSerializerContext;

/// <summary>Source-generated JSON for the edge events.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(V1.EdgeSpeechDetected))]
[JsonSerializable(typeof(V1.EdgeTextRead))]
[JsonSerializable(typeof(V1.EdgeItemProcessed))]
[JsonSerializable(typeof(V1.EdgeItemFailed))]
[JsonSerializable(typeof(V1.EdgeSiteHeartbeat))]
public sealed partial class EdgeJson : JsonSerializerContext;
