using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Failover;

/// <summary>
/// Jobs held while the home is lost (docs/ARCHITECTURE.md): with <c>Failover:StandbyRegions</c> set,
/// the API role makes its region's hold (<see cref="RegionOutbox"/>) and looks at the log every
/// second (<see cref="Takeover.HomeAsync"/>, two seconds' patience). Once the log has not answered
/// twice in a row (or while a takeover into this region is still copying), and until it answers,
/// submits are held at once (<see cref="IJobHolding.HomeLost"/>) and submits waiting on it are
/// switched to holding (<see cref="WhenHomeLost"/>); <see cref="HeldJobForwarder"/> forwards them
/// once it answers again. With <c>Failover:TakeOverAfter</c>, a home that stays lost that long is
/// taken over by this region (<see cref="Takeover"/>).
/// </summary>
internal sealed partial class JobHolding(INatsJSContext js, FailoverOptions options, SubmitOptions submit, IServiceProvider services, TimeProvider clock, ILogger<JobHolding> logger, OutageWatches? watches = null)
    : BackgroundService, IJobHolding
{
    private static readonly TimeSpan LookEvery = TimeSpan.FromSeconds(1);

    /// <summary>How long one look waits for the log's answer; a loaded machine can take a second.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);

    /// <summary>Looks in a row without an answer before the home counts as lost (one slow answer is not a lost region).</summary>
    private const int MissesToLose = 2;

    private int _misses;
    private readonly object _gate = new();
    private CancellationTokenSource _lost = new();
    private volatile bool _homeLost;
    private volatile bool _ready;
    private readonly OutageWatch _watch = (watches ?? OutageWatches.Detached()).For("job holding");

    public RegionOutbox Outbox { get; } = new(js, submit.Region);

    public bool Enabled => options.StandbyRegions.Count > 0;

    bool IJobHolding.Enabled => Enabled && _ready;

    public bool HomeLost => _homeLost && _ready;

    /// <summary>Whether the region's hold exists (made at start).</summary>
    public bool Ready => _ready;

    public CancellationToken WhenHomeLost => _lost.Token;

    /// <summary>The region the log was last found in.</summary>
    public string? Home { get; private set; }

    public bool IsOutage(Exception exception) => Projections.Outages.IsOutage(exception);

    public Task<HeldJob> HoldAsync(JobCommand job, string? digest, CancellationToken ct) => Outbox.HoldAsync(job, digest, ct);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }

        try
        {
            await Retries.ThroughOutages(_watch, IsOutage, clock).ExecuteAsync(async ct => await Outbox.EnsureAsync(options.Replicas, options.HeldMaxJobs, ct), stoppingToken);
            _watch.Worked();
            _ready = true;
            DateTimeOffset? lostSince = null;
            using var timer = new PeriodicTimer(LookEvery, clock);
            do
            {
                lostSince = await LookAsync(lostSince, stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One look at the log; returns since when it has not answered (null while it answers).</summary>
    private async Task<DateTimeOffset?> LookAsync(DateTimeOffset? lostSince, CancellationToken ct)
    {
        var (home, logCreated) = await Takeover.HomeAsync(js, Patience, ct);
        if (home is not null && !(home == submit.Region && await TakeoverCopyingAsync(logCreated, ct)))
        {
            Home = home;
            _misses = 0;
            if (_homeLost)
            {
                LogHomeBack(logger, home);
                lock (_gate)
                {
                    // A fresh signal first: a submit that reads the home as back never links to the
                    // spent one. The spent one is not disposed: a submit may still be reading its token.
                    _lost = new CancellationTokenSource();
                    _homeLost = false;
                }
            }

            return null;
        }

        if (!_homeLost && ++_misses < MissesToLose && home is null)
        {
            return lostSince;
        }

        if (!_homeLost)
        {
            LogHomeLost(logger, Home ?? "(unknown)", submit.Region);
            _homeLost = true;
            CancellationTokenSource lost;
            lock (_gate)
            {
                lost = _lost;
            }

            await lost.CancelAsync();
        }

        var since = lostSince ?? clock.GetUtcNow();
        if (options.TakeOverAfter is { } after && clock.GetUtcNow() - since >= after && Home is { } lostHome && lostHome != submit.Region && lostHome != "")
        {
            await TakeOverAsync(lostHome, ct);
        }

        return since;
    }

    /// <summary>
    /// Whether a takeover into this region is still copying: the log answers from here, but this
    /// region's mirror of it, made before the log (<see cref="RegionFailover.IsTakeoverSourceAsync"/>),
    /// is not deleted yet (the takeover's last step). Until then jobs stay held, so that nothing is
    /// published into the new log between the copied messages (the recorders' checkpoints move to
    /// the copy's numbering only while it is the lost log's). A mirror made after the log is none:
    /// a standby request sent before the takeover and delivered after it (a client's buffer
    /// flushed on reconnect); <see cref="StandbyMirrors"/> deletes it.
    /// </summary>
    private async Task<bool> TakeoverCopyingAsync(DateTimeOffset logCreated, CancellationToken ct)
    {
        try
        {
            return await new RegionFailover(js).IsTakeoverSourceAsync(submit.Region, logCreated, ct);
        }
        catch (Exception e) when (IsOutage(e))
        {
            return true;
        }
    }

    private async Task TakeOverAsync(string lost, CancellationToken ct)
    {
        using var scope = services.CreateScope();
        var outcome = await scope.ServiceProvider.GetRequiredService<Takeover>().RunAsync(lost, ct);
        if (outcome.Report is { } report)
        {
            LogTookOver(logger, submit.Region, lost, report.ToString());
        }
        else
        {
            LogNotTakenOver(logger, lost, outcome.Refused?.Title ?? "", outcome.Refused?.Detail ?? "");
        }
    }

    [LoggerMessage(LogLevel.Warning, "The log's region {Home} does not answer: region {Region} holds the jobs it accepts until it does (or until a takeover)")]
    private static partial void LogHomeLost(ILogger logger, string home, string region);

    [LoggerMessage(LogLevel.Information, "The log answers again from region {Home}: the held jobs are forwarded to it")]
    private static partial void LogHomeBack(ILogger logger, string home);

    [LoggerMessage(LogLevel.Warning, "Region {Region} took over from lost region {Lost} by itself (Failover:TakeOverAfter): {Report}")]
    private static partial void LogTookOver(ILogger logger, string region, string lost, string report);

    [LoggerMessage(LogLevel.Information, "No automatic takeover of region {Lost}: {Title}: {Detail}")]
    private static partial void LogNotTakenOver(ILogger logger, string lost, string title, string detail);
}
