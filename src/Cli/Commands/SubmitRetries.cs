using Polly;
using Polly.Retry;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// How <c>submit</c> sends a job again: after <c>429</c> (the tenant's rate or quota), <c>503</c> (a
/// full queue, a store that did not confirm in time) or a lost connection, at most
/// <c>--retries</c> times, waiting what the answer's <c>Retry-After</c> asks, else 1 s doubling with
/// jitter. An answer that asks for more than a minute (a quota spent until the next day) is not
/// waited for: the report says how to send the job again later. Safe because every job is sent with its Idempotency-Key: a job the API
/// accepted before the connection broke is answered as it stands, not submitted again.
/// </summary>
internal static class SubmitRetries
{
    private static readonly TimeSpan LongestWait = TimeSpan.FromMinutes(1);

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
