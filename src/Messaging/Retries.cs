using Polly;
using Polly.Retry;

namespace CqrsInference.Messaging;

/// <summary>
/// Every retry schedule of the system, in one place and through one library (Polly, which Marten
/// already retries with). Waits grow exponentially and are jittered, so that processes that failed
/// together (a server restart, a leader election) do not come back in step. Nothing is retried once
/// the caller's token is cancelled: that ends the wait and the call at once.
/// </summary>
/// <remarks>
/// Where a retry is JetStream's own (a Nak with a delay, redelivery after <c>ack_wait</c>), the
/// server keeps the schedule and the message keeps the count; those are not retried here.
/// </remarks>
public static class Retries
{
    /// <summary>Start-up steps against a server that may not be there yet: 250 ms doubling to 3 s, at most 60 tries.</summary>
    public static readonly TimeSpan StartupFirst = TimeSpan.FromMilliseconds(250);

    /// <inheritdoc cref="StartupFirst"/>
    public static readonly TimeSpan StartupMax = TimeSpan.FromSeconds(3);

    /// <inheritdoc cref="StartupFirst"/>
    public const int StartupTries = 60;

    /// <summary>
    /// Start-up steps (creating or waiting for streams) while the server is not there yet or its
    /// JetStream is electing: 250 ms doubling to 3 s, jittered, at most 60 tries; then the last
    /// failure is thrown and the host does not start.
    /// </summary>
    public static ResiliencePipeline Startup(Func<Exception, bool> handles, Action<RetryFailure> onRetry, TimeProvider? clock = null) =>
        Exponential(StartupFirst, StartupMax, StartupTries - 1, handles, f =>
        {
            onRetry(f);
            return ValueTask.CompletedTask;
        }, clock);

    /// <summary>
    /// Tries until it succeeds or <paramref name="handles"/> refuses a failure (which is thrown):
    /// waits from <paramref name="first"/> doubling to <paramref name="max"/>, jittered. For work
    /// that must not be skipped (a run of events to record, an item an edge site must publish).
    /// </summary>
    public static ResiliencePipeline Forever(TimeSpan first, TimeSpan max, Func<Exception, bool> handles, Func<RetryFailure, ValueTask> onRetry, TimeProvider? clock = null) =>
        Exponential(first, max, int.MaxValue, handles, onRetry, clock);

    /// <summary>A background role's work through an outage: 500 ms doubling to <see cref="OutageMax"/>, jittered, for as long as it lasts.</summary>
    public static readonly TimeSpan OutageFirst = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The longest wait between two tries while a server is away, for every role (outage retries,
    /// a recorder's lease, a recorder's run): 5 s, jittered, so a role resumes within about 5 s of
    /// the server's return, whatever the outage's length.
    /// </summary>
    public static readonly TimeSpan OutageMax = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A background role's piece of work (a round of sealing, of archiving, …) while a server it
    /// needs is away: tried again until it succeeds or <paramref name="handles"/> refuses a failure
    /// (thrown), waits from 500 ms doubling to <see cref="OutageMax"/>, jittered. The role's <paramref name="watch"/>
    /// hears of every failure and logs only the one that begins an outage; the caller tells it
    /// <see cref="OutageWatch.Worked"/> after.
    /// </summary>
    public static ResiliencePipeline ThroughOutages(OutageWatch watch, Func<Exception, bool> handles, TimeProvider? clock = null) =>
        Forever(OutageFirst, OutageMax, handles, f =>
        {
            watch.Failed(f.Exception);
            return ValueTask.CompletedTask;
        }, clock);

    /// <summary>
    /// A loop that runs for the life of the host and starts again after a failure (a consumer, a
    /// leadership term): about every <paramref name="delay"/> (±25%), however many failures came
    /// before, since a failure next week should not wait as long as the tenth one today.
    /// </summary>
    public static ResiliencePipeline Restart(TimeSpan delay, Func<Exception, bool> handles, Action<RetryFailure> onRetry, TimeProvider? clock = null) =>
        Build(DelayBackoffType.Constant, delay, max: null, int.MaxValue, handles, f =>
        {
            onRetry(f);
            return ValueTask.CompletedTask;
        }, clock);

    /// <summary>
    /// A compare-and-set on shared state (a key-value entry): tried again at once, reading the new
    /// state each time, while <paramref name="again"/> says the write lost, at most
    /// <paramref name="tries"/> times; the last result is returned as it is. No wait: the loser
    /// learns the winner's state from the next read, and waiting would only hold up a submit.
    /// </summary>
    public static ResiliencePipeline<T> Contended<T>(int tries, Func<T, bool> again) =>
        new ResiliencePipelineBuilder<T>()
            .AddRetry(new RetryStrategyOptions<T>
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is null && again(args.Outcome.Result!)),
                Delay = TimeSpan.Zero,
                MaxRetryAttempts = tries - 1,
            })
            .Build();

    /// <summary>
    /// Waits for something another process may hold (a leadership lock): asks again every
    /// <paramref name="poll"/> while it is held elsewhere (a null result), and while the server is
    /// out of reach (failures <paramref name="handles"/> accepts) after waits from
    /// <paramref name="first"/> doubling to <paramref name="max"/>, jittered. After a long wait on
    /// the holder, an outage is waited out at <paramref name="max"/> from its first failure.
    /// </summary>
    public static ResiliencePipeline<T?> UntilAcquired<T>(
        TimeSpan poll, TimeSpan first, TimeSpan max, Func<Exception, bool> handles, Action onHeldElsewhere, Action<RetryFailure> onFailure, TimeProvider? clock = null)
        where T : class =>
        new ResiliencePipelineBuilder<T?> { TimeProvider = clock ?? TimeProvider.System }
            .AddRetry(new RetryStrategyOptions<T?>
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e
                    ? Handled(e, args.Context.CancellationToken, handles)
                    : args.Outcome.Result is null),
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is null ? poll : (TimeSpan?)null),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = first,
                MaxDelay = max,
                MaxRetryAttempts = int.MaxValue,
                OnRetry = args =>
                {
                    if (args.Outcome.Exception is { } e)
                    {
                        onFailure(new RetryFailure(args.AttemptNumber + 1, args.RetryDelay, e));
                    }
                    else
                    {
                        onHeldElsewhere();
                    }

                    return ValueTask.CompletedTask;
                },
            })
            .Build();

    private static ResiliencePipeline Exponential(
        TimeSpan first, TimeSpan max, int retries, Func<Exception, bool> handles, Func<RetryFailure, ValueTask> onRetry, TimeProvider? clock) =>
        Build(DelayBackoffType.Exponential, first, max, retries, handles, onRetry, clock);

    /// <summary>A jittered retry of the failures <paramref name="handles"/> accepts, telling <paramref name="onRetry"/> of each before its wait.</summary>
    private static ResiliencePipeline Build(
        DelayBackoffType backoff, TimeSpan delay, TimeSpan? max, int retries, Func<Exception, bool> handles, Func<RetryFailure, ValueTask> onRetry, TimeProvider? clock) =>
        new ResiliencePipelineBuilder { TimeProvider = clock ?? TimeProvider.System }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(Handled(args.Outcome.Exception, args.Context.CancellationToken, handles)),
                BackoffType = backoff,
                UseJitter = true,
                Delay = delay,
                MaxDelay = max,
                MaxRetryAttempts = retries,
                OnRetry = args => onRetry(new RetryFailure(args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception!)),
            })
            .Build();

    private static bool Handled(Exception? e, CancellationToken ct, Func<Exception, bool> handles) =>
        e is not null && !ct.IsCancellationRequested && handles(e);
}

/// <summary>One failed try: the retry it leads to (1 = the first), the wait before it, and the failure.</summary>
public readonly record struct RetryFailure(int Attempt, TimeSpan Delay, Exception Exception)
{
    /// <summary>The failure's innermost message, for a log line.</summary>
    public string Reason => Exception.GetBaseException().Message;
}
