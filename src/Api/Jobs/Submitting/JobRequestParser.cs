using System.Globalization;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Webhooks;

namespace CqrsInference.Api.Jobs.Submitting;

/// <summary>The submit body, read field by field so that every mistake gets its own message.</summary>
internal sealed record JobRequest(
    string Model,
    string? Region,
    string? Priority,
    IReadOnlyList<Tensor> Inputs,
    IReadOnlyDictionary<string, string>? Metadata,
    string? Webhook = null,
    DateTimeOffset? Deadline = null,
    TimeSpan? Timeout = null,
    bool Interactive = false,
    IReadOnlyList<string>? WebhookEvents = null,
    string? ModelVersion = null);

/// <summary>
/// Reads the fields of a submit body: unknown fields, types, the inputs' tensors (<see cref="TensorReader"/>),
/// metadata, webhook (and its webhookEvents), deadline and timeout. What the model requires of the inputs is the command's rule
/// (<see cref="Commands.Jobs.Submitting.SubmitDecision"/>).
/// </summary>
internal static class JobRequestParser
{
    public const int MaxMetadataEntries = 32;
    public const int MaxMetadataLength = 512;
    public const int MaxWebhookLength = 2048;
    private static readonly HashSet<string> Known = ["model", "modelVersion", "inputs", "region", "priority", "metadata", "webhook", "webhookEvents", "deadline", "timeout", "mode"];

    /// <summary>How a job may run: through the durable queue (the default) or on the interactive path.</summary>
    public static readonly IReadOnlyList<string> Modes = ["queued", "interactive"];

    /// <summary>
    /// Reads a parsed body; returns the request or the errors by field. <paramref name="alsoKnown"/>: a
    /// field the caller reads itself (a batch line's <c>customId</c>), not reported as unknown.
    /// </summary>
    public static (JobRequest? Request, Dictionary<string, string[]> Errors) Parse(JsonElement root, string? alsoKnown = null)
    {
        var errors = new FieldErrors();
        var request = Parse(root, errors, alsoKnown);
        return (request, errors.ToDictionary());
    }

    /// <summary>Reads a parsed body into <paramref name="errors"/>; the request, or null when it has faults.</summary>
    public static JobRequest? Parse(JsonElement root, FieldErrors errors, string? alsoKnown = null)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            errors.Add("$", "The body must be a JSON object.");
            return null;
        }

        foreach (var property in root.EnumerateObject().Where(p => !Known.Contains(p.Name) && p.Name != alsoKnown))
        {
            errors.Add(property.Name, $"Unknown field '{Shown.Cut(property.Name)}'; the fields are: {string.Join(", ", Known)}.");
        }

        var model = ReadString(root, "model", required: true, errors.Add);
        var modelVersion = ReadString(root, "modelVersion", required: false, errors.Add);
        var region = ReadString(root, "region", required: false, errors.Add);
        var priority = ReadString(root, "priority", required: false, errors.Add);
        var inputs = ReadInputs(root, errors);
        var metadata = ReadMetadata(root, errors);
        var webhook = ReadWebhook(root, errors);
        var webhookEvents = ReadWebhookEvents(root, errors);
        var deadline = ReadDeadline(root, errors);
        var timeout = ReadTimeout(root, errors);
        var mode = ReadString(root, "mode", required: false, errors.Add);
        if (mode is not null && !Modes.Contains(mode))
        {
            errors.Add("mode", $"mode must be one of: {string.Join(", ", Modes)}.");
        }

        return errors.Count > 0 || model is null
            ? null
            : new JobRequest(model, region, priority, inputs, metadata, webhook, deadline, timeout, mode == "interactive", webhookEvents, modelVersion);
    }

    /// <summary>A string field: absent or null is fine unless required; anything but a non-blank string is an error.</summary>
    public static string? ReadString(JsonElement root, string name, bool required, Action<string, string> error)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                error(name, $"The field '{name}' is required.");
            }

            return null;
        }

        if (value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()))
        {
            error(name, $"The field '{name}' must be a non-empty string.");
            return null;
        }

        return value.GetString();
    }

    private static List<Tensor> ReadInputs(JsonElement root, FieldErrors errors)
    {
        var inputs = new List<Tensor>();
        if (!root.TryGetProperty("inputs", out var element))
        {
            errors.Add("inputs", "The field 'inputs' is required.");
        }
        else if (element.ValueKind != JsonValueKind.Array || element.GetArrayLength() == 0)
        {
            errors.Add("inputs", "The field 'inputs' must be a non-empty array of tensors.");
        }
        else
        {
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                if (TensorReader.Read(item, errors.Under($"inputs[{i++}]")) is { } tensor)
                {
                    inputs.Add(tensor);
                }
            }
        }

        return inputs;
    }

    private static string? ReadWebhook(JsonElement root, FieldErrors errors)
    {
        var webhook = ReadString(root, "webhook", required: false, errors.Add);
        Uri? url = null;
        var fault = webhook switch
        {
            null => null,
            { Length: > MaxWebhookLength } => $"webhook is at most {MaxWebhookLength} characters.",
            _ when webhook.Trim() != webhook => "webhook must not begin or end with white space.",
            // "/x" reads as a file: URL on Linux; an address without "://" is no address here.
            _ when !Uri.TryCreate(webhook, UriKind.Absolute, out url) || !webhook.Contains("://", StringComparison.Ordinal) =>
                "webhook must be an absolute http or https URL: a scheme, a host, and a port (if any) of 1 to 65535.",
            _ when url.Scheme is not ("http" or "https") => $"webhook must be an http or https URL, not {url.Scheme}.",
            _ => null,
        };
        if (fault is not null)
        {
            errors.Add("webhook", fault);
        }

        return webhook;
    }

    /// <summary>The events that call the webhook: an array of strings; which ones are allowed is the command's rule (<see cref="WebhookEvents"/>).</summary>
    private static List<string>? ReadWebhookEvents(JsonElement root, FieldErrors errors)
    {
        if (!root.TryGetProperty("webhookEvents", out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (element.ValueKind != JsonValueKind.Array || element.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
        {
            errors.Add("webhookEvents", $"webhookEvents must be an array of event names: {string.Join(", ", WebhookEvents.All)}.");
            return null;
        }

        return element.EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    private static DateTimeOffset? ReadDeadline(JsonElement root, FieldErrors errors)
    {
        if (ReadString(root, "deadline", required: false, errors.Add) is not { } text)
        {
            return null;
        }

        if (Http.Timestamps.TryParseUtc(text, out var parsed))
        {
            return parsed;
        }

        errors.Add("deadline", $"deadline must be {Http.Timestamps.Rule}.");
        return null;
    }

    /// <summary>The execution timeout asked for, as a string such as <c>"500ms"</c>; the model's cap is the command's rule.</summary>
    private static TimeSpan? ReadTimeout(JsonElement root, FieldErrors errors)
    {
        if (root.TryGetProperty("timeout", out var value) && value.ValueKind == JsonValueKind.Number)
        {
            errors.Add("timeout", $"timeout must be a string: {Durations.Rule}.");
            return null;
        }

        if (ReadString(root, "timeout", required: false, errors.Add) is not { } text)
        {
            return null;
        }

        if (Durations.TryParse(text, out var timeout))
        {
            return timeout;
        }

        errors.Add("timeout", $"timeout must be {Durations.Rule}, at most the model's timeoutMs (GET /v1/models).");
        return null;
    }

    private static Dictionary<string, string>? ReadMetadata(JsonElement root, FieldErrors errors)
    {
        if (!root.TryGetProperty("metadata", out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (element.ValueKind != JsonValueKind.Object)
        {
            errors.Add("metadata", "The field 'metadata' must be an object of string values.");
            return null;
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.String)
            {
                errors.Add($"metadata.{property.Name}", "Metadata values must be strings.");
            }
            else if (property.Name.Length > 128 || property.Value.GetString()!.Length > MaxMetadataLength)
            {
                errors.Add($"metadata.{property.Name}", $"Metadata keys are at most 128 characters and values at most {MaxMetadataLength}.");
            }
            else
            {
                metadata[property.Name] = property.Value.GetString()!;
            }
        }

        if (metadata.Count > MaxMetadataEntries)
        {
            errors.Add("metadata", $"At most {MaxMetadataEntries} metadata entries.");
        }

        return metadata;
    }
}
