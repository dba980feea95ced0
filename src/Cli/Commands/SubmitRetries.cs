using System.CommandLine;
using Polly;
using Polly.Retry;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// How <c>submit</c> and <c>batch submit</c> send a request again: after <c>429</c> (the tenant's rate or quota), <c>503</c> (a
/// full queue, a store that did not confirm in time) or a lost connection, at most
/// <c>--retries</c> times, waiting what the answer's <c>Retry-After</c> asks, else 1 s doubling with
/// jitter. An answer that asks for more than a minute (a quota spent until the next day) is not
/// waited for: the report says how to send the job again later. Safe because every job is sent with its Idempotency-Key: a job the API
/// accepted before the connection broke is answered as it stands, not submitted again.
/// </summary>
internal static class SubmitRetries
{
    private static readonly TimeSpan LongestWait = TimeSpan.FromMinutes(1);

    /// <summary>The longest <c>--idempotency-key</c>: the API takes keys of 256 characters, and a line's number may be added to it.</summary>
    public const int MaxKeyLength = 200;

    public static Option<int> RetriesOption() => new Option<int>("--retries")
    {
        Description = "How many times a request is sent again after 429, 503 or a lost connection (waiting what Retry-After asks, else 1 s doubling)",
        DefaultValueFactory = _ => 5,
    }.Within(0, 100, "--retries must be from 0 to 100.");

    /// <summary><c>--idempotency-key</c>, described by <paramref name="description"/>: 1 to <see cref="MaxKeyLength"/> characters of printable ASCII.</summary>
    public static Option<string?> KeyOption(string description)
    {
        var key = new Option<string?>("--idempotency-key") { Description = description };
        key.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && result.Tokens[^1].Value is var value
                && (value.Length is 0 or > MaxKeyLength || value.Any(c => c is < '!' or > '~')))
            {
                result.AddError($"--idempotency-key must be 1 to {MaxKeyLength} characters of printable ASCII, without spaces.");
            }
        });
        return key;
    }

    /// <summary>A key of its own for a command that names none: the time and 8 random hex digits.</summary>
    public static string NewKey() => $"cqrsi-{DateTime.UtcNow:yyyyMMdd'T'HHmmss}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>A path as a shell reads it back: quoted when it holds blanks or shell characters.</summary>
    public static string Quoted(string path) =>
        path.Any(c => char.IsWhiteSpace(c) || c is '\'' or '"' or '$' or '\\' or '`' or ';' or '&' or '|' or '(' or ')' or '<' or '>' or '*' or '?')
            ? $"'{path.Replace("'", "'\\''", StringComparison.Ordinal)}'"
            : path;

    public static ResiliencePipeline<SubmitAnswer> Create(int retries) => retries == 0
        ? ResiliencePipeline<SubmitAnswer>.Empty
        : new ResiliencePipelineBuilder<SubmitAnswer>().AddRetry(new RetryStrategyOptions<SubmitAnswer>
        {
            MaxRetryAttempts = retries,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromSeconds(1),
            MaxDelay = TimeSpan.FromSeconds(30),
            ShouldHandle = new PredicateBuilder<SubmitAnswer>()
                .Handle<HttpRequestException>()
                .Handle<IOException>()
                .HandleResult(answer => answer.Status is 429 or 503 && !(answer.RetryAfter > LongestWait)),
            DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result?.RetryAfter is { } after
                ? (TimeSpan?)(after < TimeSpan.Zero ? TimeSpan.Zero : after)
                : null),
        }).Build();
}
