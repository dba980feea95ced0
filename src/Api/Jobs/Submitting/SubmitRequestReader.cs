using System.Text.Json;
using CqrsInference.Api.Http;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs.Submitting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>A submit request the API could read: the job, how to submit it, and how long the caller waits.</summary>
internal sealed record SubmitRequest(JobRequest Job, string? IdempotencyKey, string Digest, TimeSpan? Wait)
{
    /// <summary>How long an interactive job's caller waits when it names no <c>wait</c>.</summary>
    public static readonly TimeSpan InteractiveWait = TimeSpan.FromSeconds(30);

    /// <summary>How long the caller waits for the job to end: its <c>wait</c>, or by default for an interactive job.</summary>
    public TimeSpan? WaitFor => Wait ?? (Job.Interactive ? InteractiveWait : null);

    /// <summary>The command for the caller's tenant, with its id (so the caller can follow it before it is submitted).</summary>
    public SubmitInferenceJob ToCommand(ApiCaller caller, DateTimeOffset now) =>
        new(JobIds.For(caller.Tenant, IdempotencyKey, now), caller.Tenant, Job.Model, Job.Region, Job.Priority, Job.Inputs, Job.Metadata,
            IdempotencyKey, Digest, now, Job.Webhook, Job.Deadline, Job.Timeout, Job.Interactive ? WaitFor : null, Job.WebhookEvents, ModelVersion: Job.ModelVersion);
}

/// <summary>
/// Reads a submit from HTTP, every check that does not need the model: the wait parameter, the
/// Idempotency-Key header, content type (415), size (413), UTF-8 and JSON syntax (400, no duplicate
/// keys, depth at most 32), then the fields (<see cref="JobRequestParser"/>, 422). The model's rules
/// are the command's (<see cref="SubmitDecision"/>).
/// </summary>
internal static class SubmitRequestReader
{
    /// <summary>The largest submit body accepted; larger ones get 413.</summary>
    public const int MaxBodyBytes = 8 * 1024 * 1024;

    public static async Task<(SubmitRequest? Request, ProblemHttpResult? Problem)> ReadAsync(HttpRequest request, string? wait, CancellationToken ct)
    {
        TimeSpan? waitFor = null;
        if (wait is not null)
        {
            if (!JobNotifications.TryParseWait(wait, out var parsedWait))
            {
                return (null, Problems.Validation("wait", $"wait must be a duration such as 500ms, 5s or 1m, at most {JobNotifications.MaxWaitSeconds} s."));
            }

            waitFor = parsedWait;
        }

        var (body, idempotencyKey, problem) = await ReadBodyAsync(request, ct);
        if (body is null)
        {
            return (null, problem);
        }

        var (job, errors) = JobRequestParser.Parse(body.Value);
        return job is null
            ? (null, Problems.Validation(errors))
            : (new SubmitRequest(job, idempotencyKey, RequestDigest.Of(body.Value.GetRawText()), waitFor), null);
    }

    /// <summary>
    /// What every submit checks before its fields: the Idempotency-Key header, content type (415),
    /// size (413), UTF-8 and JSON syntax (400). The body comes back parsed.
    /// </summary>
    public static async Task<(JsonElement? Body, string? IdempotencyKey, ProblemHttpResult? Problem)> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        var (idempotencyKey, badKey) = IdempotencyKeyHeader.Read(request);
        if (badKey is not null)
        {
            return (null, null, badKey);
        }

        if (!IsJson(request.ContentType))
        {
            return (null, null, Problems.UnsupportedMediaType(request.ContentType, "application/json"));
        }

        if (BodyLimits.RefuseEncoding(request) is { } encoding)
        {
            return (null, null, encoding);
        }

        var bytes = await BodyLimits.ReadBodyAsync(request, MaxBodyBytes, ct);
        if (bytes is null)
        {
            return (null, null, Problems.PayloadTooLarge(MaxBodyBytes));
        }

        var (body, problem) = Parse(bytes);
        return (body, idempotencyKey, problem);
    }

    private static bool IsJson(string? contentType) =>
        Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var mediaType)
        && string.Equals(mediaType.MediaType.Value, "application/json", StringComparison.OrdinalIgnoreCase);

    private static (JsonElement? Body, ProblemHttpResult? Problem) Parse(byte[] body)
    {
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            return (null, Problems.MalformedJson("The body is not valid UTF-8."));
        }

        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 32, AllowDuplicateProperties = false });
            var root = document.RootElement.Clone();

            // Strings are read here, while the error can still be a 400 (a lone "\ud800" is valid
            // JSON but no valid string); and nothing the job's history could not store gets further.
            return StorableJson.FindUnstorable(root) is { } unstorable ? (null, Unstorable(unstorable)) : (root, null);
        }
        catch (JsonException e)
        {
            return (null, Problems.MalformedJson($"The body is not valid JSON: {e.Message}"));
        }
        catch (InvalidOperationException e)
        {
            // Escapes such as a lone "\ud800" are valid JSON but no valid string.
            return (null, Problems.MalformedJson($"The body holds a string that is not valid Unicode: {e.Message}"));
        }
    }

    /// <summary>422 naming the value the job's history could not store (<see cref="StorableJson"/>).</summary>
    private static ProblemHttpResult Unstorable((string Path, string Reason) value)
    {
        var (field, message) = StorableJson.Error(value, "The body");
        return Problems.Validation(field, message);
    }
}
