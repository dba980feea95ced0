using System.Text.Json;
using CqrsInference.Api.Jobs.Submitting;
using CqrsInference.Api.Security;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Commands.Models;

namespace CqrsInference.Api.Inference;

/// <summary>An inference request the API could read, for one model.</summary>
internal sealed record InferRequest(
    string? Id,
    InferParameters Parameters,
    IReadOnlyList<Tensor> Inputs,
    IReadOnlySet<string>? Outputs,
    string? IdempotencyKey,
    string Digest)
{
    /// <summary>
    /// The command: <paramref name="version"/> is the version the path pins (null: the default or the
    /// split). The path's model and pinned version are part of the request as the body is: the same
    /// Idempotency-Key on another model's or version's path is another request (409), not the first
    /// one's answer (the body names no model, so the same body on another model's path was a replay).
    /// </summary>
    public SubmitInferenceJob ToCommand(ApiCaller caller, ModelDefinition model, string? version, DateTimeOffset now, TimeSpan wait) =>
        new(JobIds.For(caller.Tenant, IdempotencyKey, now), caller.Tenant, model.Name, Parameters.Region, Parameters.Priority, Inputs,
            Metadata: null, IdempotencyKey, RequestDigest.Of($"{Digest}\nmodel {model.Name}" + (version is null ? "" : $"\nversion {version}")), now, Webhook: null,
            Parameters.Deadline, Parameters.Timeout, InteractiveWithin: wait, ModelVersion: version);
}

/// <summary>The request parameters that map onto the job (<see cref="V2InferParameters"/>).</summary>
internal sealed record InferParameters(string? Region, string? Priority, DateTimeOffset? Deadline, TimeSpan? Timeout);

/// <summary>
/// Reads an Open Inference Protocol request body: the HTTP-level checks are the v1 submit's
/// (<see cref="SubmitRequestReader.ReadBodyAsync"/>: Idempotency-Key, 415, 413, UTF-8, JSON syntax),
/// the tensors are read by <see cref="TensorReader"/>; then <c>id</c>, <c>parameters</c> and the
/// requested <c>outputs</c>, which must be the model's. What the model requires of the inputs stays
/// the command's rule.
/// </summary>
internal static class InferRequestReader
{
    private static readonly HashSet<string> Known = ["id", "parameters", "inputs", "outputs"];

    /// <summary>The header of the binary tensor data extension (Triton's), which this server does not speak.</summary>
    public const string BinaryExtensionHeader = "Inference-Header-Content-Length";

    public static async Task<(InferRequest? Request, V2ErrorResult? Error)> ReadAsync(HttpRequest request, ModelDefinition model, CancellationToken ct)
    {
        if (request.Headers.ContainsKey(BinaryExtensionHeader))
        {
            // Said, not ignored: the body would be JSON followed by raw tensor bytes, read as neither.
            return (null, V2Errors.BadRequest(
                $"The binary tensor data extension ({BinaryExtensionHeader}) is not supported here (GET /v2 lists no extensions): send every tensor as JSON data."));
        }

        var (body, idempotencyKey, problem) = await SubmitRequestReader.ReadBodyAsync(request, ct);
        if (body is not { } root)
        {
            return (null, V2Errors.From(problem!));
        }

        var errors = new FieldErrors();
        var fields = Parse(root, model, errors);
        return errors.Count > 0 || fields is null
            ? (null, V2Errors.BadRequest(V2Errors.Describe(errors.ToDictionary())))
            : (new InferRequest(fields.Value.Id, fields.Value.Parameters, fields.Value.Inputs, fields.Value.Outputs, idempotencyKey,
                RequestDigest.Of(root.GetRawText())), null);
    }

    /// <summary>Reads a parsed body, adding every fault to <paramref name="errors"/>.</summary>
    public static (string? Id, InferParameters Parameters, List<Tensor> Inputs, IReadOnlySet<string>? Outputs)? Parse(
        JsonElement root, ModelDefinition model, FieldErrors errors)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            errors.Add("$", "The body must be a JSON object with inputs, and optionally id, parameters and outputs.");
            return null;
        }

        foreach (var property in root.EnumerateObject().Where(p => !Known.Contains(p.Name)))
        {
            errors.Add(property.Name, $"Unknown field '{property.Name}'; the fields are: {string.Join(", ", Known)}.");
        }

        var id = ReadId(root, errors);
        var parameters = ReadParameters(root, errors);
        var inputs = ReadInputs(root, errors);
        var outputs = ReadOutputs(root, model, errors);
        return (id, parameters, inputs, outputs);
    }

    private static string? ReadId(JsonElement root, FieldErrors errors)
    {
        if (!root.TryGetProperty("id", out var id) || id.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (id.ValueKind != JsonValueKind.String)
        {
            errors.Add("id", "The field 'id' must be a string.");
            return null;
        }

        return id.GetString();
    }

    private static InferParameters ReadParameters(JsonElement root, FieldErrors errors)
    {
        var none = new InferParameters(null, null, null, null);
        if (!root.TryGetProperty("parameters", out var parameters) || parameters.ValueKind == JsonValueKind.Null)
        {
            return none;
        }

        if (parameters.ValueKind != JsonValueKind.Object)
        {
            errors.Add("parameters", "The field 'parameters' must be an object.");
            return none;
        }

        var scope = errors.Under("parameters");
        string? Read(string name) => JobRequestParser.ReadString(parameters, name, required: false, scope.Add);
        var (region, priority, deadlineText, timeoutText) = (Read("region"), Read("priority"), Read("deadline"), Read("timeout"));
        DateTimeOffset? deadline = null;
        if (deadlineText is not null)
        {
            deadline = Http.Timestamps.TryParseUtc(deadlineText, out var at) ? at : null;
            if (deadline is null)
            {
                scope.Add("deadline", $"deadline must be {Http.Timestamps.Rule}.");
            }
        }

        TimeSpan? timeout = null;
        if (timeoutText is not null)
        {
            timeout = Jobs.Durations.TryParse(timeoutText, out var parsed) ? parsed : null;
            if (timeout is null)
            {
                scope.Add("timeout", $"timeout (the run's execution timeout) must be {Jobs.Durations.Rule}, at most the model's timeoutMs.");
            }
        }

        return new InferParameters(region, priority, deadline, timeout);
    }

    private static List<Tensor> ReadInputs(JsonElement root, FieldErrors errors)
    {
        var inputs = new List<Tensor>();
        if (!root.TryGetProperty("inputs", out var element) || element.ValueKind != JsonValueKind.Array || element.GetArrayLength() == 0)
        {
            errors.Add("inputs", "The field 'inputs' is required: a non-empty array of tensors {name, shape, datatype, data}.");
            return inputs;
        }

        var i = 0;
        foreach (var item in element.EnumerateArray())
        {
            if (TensorReader.Read(item, errors.Under($"inputs[{i++}]")) is { } tensor)
            {
                inputs.Add(tensor);
            }
        }

        return inputs;
    }

    /// <summary>The requested outputs' names, each one the model's; null when the request names none (all are returned).</summary>
    private static HashSet<string>? ReadOutputs(JsonElement root, ModelDefinition model, FieldErrors errors)
    {
        if (!root.TryGetProperty("outputs", out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (element.ValueKind != JsonValueKind.Array)
        {
            errors.Add("outputs", "The field 'outputs' must be an array of {name}.");
            return null;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var item in element.EnumerateArray())
        {
            var scope = errors.Under($"outputs[{i++}]");
            var name = item.ValueKind == JsonValueKind.Object ? JobRequestParser.ReadString(item, "name", required: true, scope.Add) : null;
            if (item.ValueKind != JsonValueKind.Object)
            {
                scope.Add("", "Each requested output must be an object with a name.");
            }
            else if (name is not null && model.Outputs.All(o => o.Name != name))
            {
                scope.Add("name", $"Model '{model.Name}' has no output '{name}'; its outputs are: {string.Join(", ", model.Outputs.Select(o => o.Name))}.");
            }
            else if (name is not null && !names.Add(name))
            {
                scope.Add("name", $"Output '{name}' is requested more than once.");
            }

            if (item.ValueKind == JsonValueKind.Object)
            {
                // The protocol's requested output is {name, parameters}; its parameters (binary_data,
                // classification, …) are extensions this server does not apply: the output comes as JSON data.
                foreach (var other in item.EnumerateObject().Where(p => p.Name is not ("name" or "parameters")))
                {
                    scope.Add(other.Name, $"Unknown field '{other.Name}'; a requested output has name and, optionally, parameters.");
                }

                if (item.TryGetProperty("parameters", out var parameters) && parameters.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                {
                    scope.Add("parameters", "The field 'parameters' must be an object.");
                }
            }
        }

        // An empty list asks for nothing in particular: every output, as when it is absent.
        return names.Count > 0 ? names : null;
    }
}
