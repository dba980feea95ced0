using CqrsInference.Projections;
using Microsoft.Extensions.Options;

namespace CqrsInference.Api.Hosting;

/// <summary>
/// What the host's process exits with, so that a supervisor (systemd's <c>Restart=on-failure</c>, a
/// container runtime) can tell a clean stop from a failure: 0 after a stop that was asked for;
/// <see cref="Failed"/> when a background service (a processor, a recorder) failed and stopped the
/// host, or the host could not start; <see cref="Misconfigured"/> when a setting, a secret or the
/// schema refused the start, which restarting cannot mend. A refusal is one line on stderr, not an
/// unhandled exception's abort (exit 134 and a core dump per restart).
/// </summary>
internal static class HostExit
{
    public const int Failed = 1;

    /// <summary>EX_CONFIG of sysexits.h; the systemd unit does not restart on it (<c>RestartPreventExitStatus</c>).</summary>
    public const int Misconfigured = 78;

    /// <summary>The host's background services, taken before it runs (its services are disposed once it has stopped).</summary>
    public static IReadOnlyList<BackgroundService> Watch(IServiceProvider services) =>
        [.. services.GetServices<IHostedService>().OfType<BackgroundService>()];

    /// <summary>Failed when one of <paramref name="watched"/> ended its work in an exception (the host then stopped), else 0.</summary>
    public static int After(IReadOnlyList<BackgroundService> watched) => watched.Any(s => s.ExecuteTask is { IsFaulted: true }) ? Failed : 0;

    /// <summary>
    /// The AppContext switch a process that hosts the application in-process (a test's
    /// WebApplicationFactory) sets, so that a failed start reaches it as the exception it is.
    /// </summary>
    public const string RethrowSwitch = "CqrsInference.Hosting.RethrowStartFailures";

    /// <summary>
    /// Whether the process should end on <paramref name="error"/> with <see cref="Refused"/>: any failure to
    /// build or start the host, unless the host is hosted in-process (<see cref="RethrowSwitch"/>), and
    /// but the one a test host's factory uses to take the host over.
    /// </summary>
    public static bool Ends(Exception error) =>
        error is not HostAbortedException && !(AppContext.TryGetSwitch(RethrowSwitch, out var rethrow) && rethrow);

    /// <summary>The start refused: why, in one line on stderr, and the exit code.</summary>
    public static int Refused(Exception error)
    {
        var misconfigured = Causes(error).Any(e => e is OptionsValidationException or SchemaNotMigratedException or SecretsDirectoryException);
        Console.Error.WriteLine($"error: CqrsInference did not start: {string.Join(" ← ", Causes(error).Select(e => e.Message).Distinct())}");
        return misconfigured ? Misconfigured : Failed;
    }

    private static IEnumerable<Exception> Causes(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            if (e is AggregateException { InnerExceptions.Count: > 0 } many)
            {
                foreach (var inner in many.InnerExceptions.SelectMany(Causes))
                {
                    yield return inner;
                }

                yield break;
            }

            yield return e;
        }
    }
}
