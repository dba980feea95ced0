using System.Text.Json;
using CqrsInference.Api.Http;
using CqrsInference.Api.Jobs;
using CqrsInference.Api.Jobs.Submitting;
using CqrsInference.Commands.Batches;
using CqrsInference.Commands.Jobs.Submitting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Batches;

/// <summary>The options of a batch, from the query string of <c>POST /v1/batches</c>.</summary>
internal sealed record BatchRequestOptions(DateTimeOffset? Deadline, string? Webhook, string Priority, bool Atomic, string Said);

/// <summary>A line of the file that is a job request (its model rules not checked yet).</summary>
internal sealed record BatchFileLine(int Line, string? CustomId, JobRequest Job, string Digest);

/// <summary>A batch file as read: its lines that are job requests, those refused, and a digest of the whole body.</summary>
internal sealed record BatchFile(int Lines, List<BatchFileLine> Valid, List<RefusedLine> Refused, string Digest, string? IdempotencyKey, BatchRequestOptions Options);

/// <summary>
/// Reads <c>POST /v1/batches</c>: the options (query parameters), the Idempotency-Key, the content type
/// (415), the size and line count (413), UTF-8 (400), then each line as a job request
/// (<see cref="JobRequestParser"/>, plus <c>customId</c>). A line that is not a job request is refused
/// by its number; a file of which no line is JSON is 400.
/// </summary>
internal static class BatchFileReader
{
    public static readonly IReadOnlyList<string> MediaTypes = ["application/jsonl", "application/x-ndjson"];
    public static readonly IReadOnlyList<string> OptionNames = ["deadline", "webhook", "priority", "atomic"];
    public const int MaxCustomIdLength = 256;
    public const string CustomId = "customId";

    public static async Task<(BatchFile? File, ProblemHttpResult? Problem)> ReadAsync(HttpRequest request, BatchOptions limits, DateTimeOffset now, CancellationToken ct)
    {
        var (idempotencyKey, badKey) = IdempotencyKeyHeader.Read(request);
        if (badKey is not null)
        {
            return (null, badKey);
        }

        var (options, optionErrors) = ReadOptions(request.Query, now);
        if (options is null)
        {
            return (null, Problems.Validation(optionErrors));
        }

        if (!IsJsonLines(request.ContentType))
        {
            return (null, Problems.UnsupportedMediaType(request.ContentType, string.Join(" or ", MediaTypes)));
        }

        if (BodyLimits.RefuseEncoding(request) is { } encoding)
        {
            return (null, encoding);
        }

        var bytes = await BodyLimits.ReadBodyAsync(request, limits.MaxBytes, ct);
        if (bytes is null)
        {
            return (null, Problems.PayloadTooLarge(limits.MaxBytes));
        }

        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return (null, Problems.MalformedJson("The body is not valid UTF-8."));
        }

        // A file saved with a UTF-8 byte order mark (as some editors write it) reads as without one.
        var lines = SplitLines(bytes.AsSpan().StartsWith("\uFEFF"u8) ? bytes[3..] : bytes);
        if (lines.Count == 0)
        {
            return (null, Problems.Validation("file", "The batch file holds no lines: send one job request (JSON) a line."));
        }

        if (lines.Count > limits.MaxLines)
        {
            return (null, Problems.TooManyLines(lines.Count, limits.MaxLines));
        }

        var digest = options.Said.Length == 0 ? RequestDigest.Of(bytes) : RequestDigest.Of($"{RequestDigest.Of(bytes)}\n{options.Said}");
        var file = new BatchFile(lines.Count, [], [], digest, idempotencyKey, options);
        var json = 0;
        var customIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (number, line) in lines)
        {
            json += ReadLine(file, number, line, customIds) ? 1 : 0;
        }

        return json == 0
            ? (null, Problems.MalformedJson("The body is not JSONL: no line is a JSON value (one job request, a JSON object, a line)."))
            : (file, null);
    }

    /// <summary>Reads one line into the file's valid or refused lines; false when it is not JSON at all.</summary>
    private static bool ReadLine(BatchFile file, int number, ReadOnlyMemory<byte> line, Dictionary<string, int> customIds)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(line, new JsonDocumentOptions { MaxDepth = 32, AllowDuplicateProperties = false });
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            file.Refused.Add(new RefusedLine(number, null, new Dictionary<string, string[]> { ["$"] = [$"The line is not valid JSON: {e.Message}"] }));
            return false;
        }

        // As for a single submit: every string valid Unicode, and nothing the jobs' history could not store.
        try
        {
            if (StorableJson.FindUnstorable(root) is { } unstorable)
            {
                var (field, message) = StorableJson.Error(unstorable, "The line");
                file.Refused.Add(new RefusedLine(number, null, new Dictionary<string, string[]> { [field] = [message] }));
                return true;
            }
        }
        catch (InvalidOperationException e)
        {
            file.Refused.Add(new RefusedLine(number, null, new Dictionary<string, string[]> { ["$"] = [$"The line holds a string that is not valid Unicode: {e.Message}"] }));
            return true;
        }

        var customId = ReadCustomId(root, out var customIdError);
        var (job, errors) = JobRequestParser.Parse(root, CustomId);
        if (customIdError is not null)
        {
            errors[CustomId] = [customIdError];
        }
        else if (customId is not null && !customIds.TryAdd(customId, number))
        {
            // A line's result is found by its customId: two lines with one would be told apart by nothing.
            errors[CustomId] = [$"customId '{customId}' is already line {customIds[customId]}'s; each line's customId is its own."];
        }

        if (job is { Interactive: true })
        {
            errors["mode"] = ["A batch queues its jobs; submit an interactive job on its own (POST /v1/jobs)."];
        }

        if (errors.Count > 0 || job is null)
        {
            file.Refused.Add(new RefusedLine(number, customId, errors));
        }
        else
        {
            file.Valid.Add(new BatchFileLine(number, customId, job, RequestDigest.Of(line.Span)));
        }

        return true;
    }

    private static string? ReadCustomId(JsonElement root, out string? error)
    {
        error = null;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(CustomId, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String || value.GetString() is not { Length: > 0 and <= MaxCustomIdLength } text)
        {
            error = $"customId must be a string of 1 to {MaxCustomIdLength} characters.";
            return null;
        }

        return text;
    }

    /// <summary>
    /// The batch's options from the query string. Names are matched without case, as every query
    /// parameter is; an unknown name, a name given twice or an empty value is an error (a typo would
    /// otherwise pass silently, and an empty value would quietly mean the default).
    /// </summary>
    private static (BatchRequestOptions? Options, Dictionary<string, string[]> Errors) ReadOptions(IQueryCollection query, DateTimeOffset now)
    {
        var errors = new Dictionary<string, string[]>();
        foreach (var (name, values) in query)
        {
            if (!OptionNames.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                // A caller's name is echoed cut short, as everywhere (a 5,000-character name came back twice).
                errors[Commands.Shown.Cut(name)] = [$"Unknown option '{Commands.Shown.Cut(name)}'; the options are: {string.Join(", ", OptionNames)}."];
            }
            else if (values.Count > 1)
            {
                errors[name] = [$"{name} is given {values.Count} times; give it once."];
            }
            else if (string.IsNullOrWhiteSpace(values[0]))
            {
                errors[name] = [$"{name} is empty; leave it out for the default."];
            }
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        DateTimeOffset? deadline = null;
        if (query["deadline"].ToString() is { Length: > 0 } deadlineText)
        {
            string? fault;
            (deadline, fault) = Timestamps.TryParseUtc(deadlineText, out var at) ? (at, null)
                : !Durations.TryParse(deadlineText, out var after) ? (null, $"deadline must be {Timestamps.Rule}, or {Durations.Rule} from now.")
                : after > TimeSpan.Zero ? (now + after, null)
                : ((DateTimeOffset?)null, $"deadline {deadlineText} is no time from now: a duration must be longer than zero.");
            fault ??= deadline <= now ? $"deadline {deadline:O} has already passed." : null;
            if (fault is not null)
            {
                errors["deadline"] = [fault];
            }
        }

        var priority = query["priority"].ToString() is { Length: > 0 } p ? p : Priorities.Batch;
        if (!Priorities.All.Contains(priority))
        {
            errors["priority"] = [$"priority must be one of: {string.Join(", ", Priorities.All)}."];
        }

        var atomic = query["atomic"].ToString() switch
        {
            "" or "false" => false,
            "true" => true,
            _ => (bool?)null,
        };
        if (atomic is null)
        {
            errors["atomic"] = ["atomic must be true or false."];
        }

        var webhook = query["webhook"].ToString() is { Length: > 0 } w ? w : null;
        return errors.Count > 0 ? (null, errors) : (new BatchRequestOptions(deadline, webhook, priority, atomic!.Value, Said(query)), errors);
    }

    /// <summary>
    /// The options as the caller gave them, in a fixed order: part of the request's digest, so the
    /// same Idempotency-Key with other options is another request (409), not the first batch again. A
    /// deadline is taken as written (a duration means "from the first request"); none given is empty,
    /// so a file sent without options has the digest of the file alone.
    /// </summary>
    private static string Said(IQueryCollection query) =>
        string.Join("&", OptionNames.Where(n => query[n].Count > 0).Select(n => $"{n}={query[n]}"));

    private static bool IsJsonLines(string? contentType) =>
        Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var mediaType)
        && MediaTypes.Contains(mediaType.MediaType.Value ?? "", StringComparer.OrdinalIgnoreCase);

    /// <summary>The non-blank lines with their 1-based numbers (a trailing CR is dropped).</summary>
    private static List<(int Number, ReadOnlyMemory<byte> Line)> SplitLines(byte[] bytes)
    {
        var lines = new List<(int, ReadOnlyMemory<byte>)>();
        var start = 0;
        for (var number = 1; start < bytes.Length; number++)
        {
            var end = Array.IndexOf(bytes, (byte)'\n', start);
            end = end < 0 ? bytes.Length : end;
            var line = bytes.AsMemory(start, end - start);
            if (line.Span.TrimEnd((byte)'\r').Trim(" \t"u8).Length > 0)
            {
                lines.Add((number, line));
            }

            start = end + 1;
        }

        return lines;
    }
}
