namespace CqrsInference.Cli;

/// <summary>
/// What <c>cqrsi</c> exits with, the same for every command, so that a script can tell "the job did
/// not succeed" from "the command could not do its work". Public so that the tests name the codes
/// (the CLI's internals are not visible to them: its top-level <c>Program</c> would clash with the API's).
/// </summary>
public static class ExitCodes
{
    /// <summary>The command did what was asked (and every job it waited for or read succeeded, or has not ended yet).</summary>
    public const int Ok = 0;

    /// <summary>
    /// A job did not succeed: it ended <c>failed</c>, <c>expired</c> or <c>cancelled</c>, or <c>submit</c>
    /// had a job refused for what it is (400, 404, 409, 413, 415, 422).
    /// </summary>
    public const int JobFailed = 1;

    /// <summary>
    /// The command could not do its work: bad arguments, an API that cannot be reached or does not
    /// answer, an API refusal of the call itself (401, 403, 404, 409, 429, 5xx), an answer it cannot read.
    /// </summary>
    public const int UsageOrTransport = 2;

    /// <summary>Interrupted (Ctrl+C): 128 + SIGINT, as shells report it.</summary>
    public const int Interrupted = 130;

    /// <summary>The statuses in which a job has ended; it never leaves them.</summary>
    public static readonly IReadOnlySet<string> Terminal = new HashSet<string>(StringComparer.Ordinal) { "succeeded", "failed", "cancelled", "expired" };

    /// <summary>A job in <paramref name="status"/>: 1 once it has ended without succeeding, else 0.</summary>
    public static int ForJob(string? status) => status is not null && status != "succeeded" && Terminal.Contains(status) ? JobFailed : Ok;

    /// <summary>
    /// A submission the API refused with <paramref name="httpStatus"/>: 1 when the job itself was
    /// refused, 2 when the caller or the service was (no key or rights, rate limits, server errors).
    /// </summary>
    public static int ForRefusedSubmission(int httpStatus) =>
        httpStatus is 401 or 403 or 408 or 429 or >= 500 ? UsageOrTransport : JobFailed;
}
