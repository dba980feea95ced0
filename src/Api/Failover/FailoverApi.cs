using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using Microsoft.AspNetCore.Http.HttpResults;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CqrsInference.Api.Failover;

/// <summary>
/// <c>POST /v1/admin/failover</c>: the operator declares a region lost, and this API's region
/// (<c>Submit:Region</c>, the survivor) takes over from its standby mirrors
/// (<see cref="RegionFailover.TakeOverAsync(string, Func{CancellationToken, Task}, IRecorderCheckpoints?, CancellationToken)"/>),
/// the recorders' checkpoints moved with it. Refused while the lost region's servers still answer
/// for the log: a takeover then would split the books.
/// </summary>
internal static class FailoverApi
{
    public sealed record FailoverRequest(string? LostRegion);

    /// <summary>One takeover at a time in this process.</summary>
    private static readonly SemaphoreSlim Running = new(1, 1);

    public static IEndpointRouteBuilder MapFailoverApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/admin/failover", TakeOverAsync)
            .WithTags("Admin").WithName("TakeOverRegion").RequirePolicy(ApiPolicies.Operator)
            .WithSummary("Declare a region lost: this API's region takes over its streams from the standby mirrors (the platform operator only)")
            .WithDescription("Answers the takeover's report: messages copied per stream, jobs in the copied log and those already ended, each recorder checkpoint's move.")
            .WithProblems(
                (StatusCodes.Status404NotFound, "Failover is off (Failover:StandbyRegions is not set)."),
                (StatusCodes.Status409Conflict, "The region is not lost (its servers answer for the log), the takeover is done, another is running, or this region keeps no standby copy."),
                (StatusCodes.Status422UnprocessableEntity, "lostRegion is missing, not a known region, or this API's own."),
                (StatusCodes.Status503ServiceUnavailable, "JetStream has no majority (a takeover needs a third region: a witness)."));
        return app;
    }

    public static async Task<Results<Ok<RegionFailover.TakeoverReport>, ProblemHttpResult>> TakeOverAsync(
        FailoverRequest request, FailoverOptions options, SubmitOptions submit, INatsJSContext js, NatsTopology topology, IRecorderCheckpoints checkpoints,
        HttpContext http, CancellationToken ct)
    {
        if (options.StandbyRegions.Count == 0)
        {
            return Http.Problems.NotFound("Failover is off", "Failover:StandbyRegions is not set: no region keeps a standby copy.");
        }

        var survivor = submit.Region;
        if (Refusal(request.LostRegion, survivor, options, submit) is { } refused)
        {
            return refused;
        }

        var lost = request.LostRegion!;
        if (await StateRefusalAsync(js, lost, survivor, ct) is { } state)
        {
            return state;
        }

        if (!await Running.WaitAsync(TimeSpan.Zero, ct))
        {
            return Http.Problems.AlreadyRunning($"A takeover of region {lost} by {survivor} is running in this API.");
        }

        try
        {
            return TypedResults.Ok(await new RegionFailover(js).TakeOverAsync(survivor, topology.EnsureAsync, checkpoints, ct));
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == 10008)
        {
            return Http.Problems.Unavailable(http, "JetStream has no majority", $"The JetStream metadata answers '{e.Error.Description}': a takeover needs a majority of the super-cluster's servers (a third region, a witness).", TimeSpan.FromSeconds(5));
        }
        finally
        {
            Running.Release();
        }
    }

    /// <summary>What is wrong with the request itself, if anything (422).</summary>
    private static ProblemHttpResult? Refusal(string? lost, string survivor, FailoverOptions options, SubmitOptions submit)
    {
        if (string.IsNullOrEmpty(lost) || !Commands.Models.Naming.IsToken(lost))
        {
            return Http.Problems.Validation("lostRegion", $"Name the lost region: a region is {Commands.Models.Naming.TokenRule}.");
        }

        var known = options.StandbyRegions.Concat(submit.ServedRegions).Distinct().ToList();
        if (!known.Contains(lost))
        {
            return Http.Problems.Validation("lostRegion", $"Region '{lost}' is not known here (Failover:StandbyRegions, Submit:Regions: {string.Join(", ", known)}).");
        }

        return lost == survivor
            ? Http.Problems.Validation("lostRegion", $"Region '{lost}' is this API's own (Submit:Region): ask an API of the surviving region.")
            : null;
    }

    /// <summary>Whether the super-cluster's state allows the takeover (409 when not): the log must not answer from the lost region, and a mirror must be here.</summary>
    private static async Task<ProblemHttpResult?> StateRefusalAsync(INatsJSContext js, string lost, string survivor, CancellationToken ct)
    {
        var home = await HomeAsync(js, ct);
        if (home == "")
        {
            return Http.Problems.Conflict("Not a super-cluster", "The log's servers answer and form no cluster: there is no other region to take over in.");
        }

        if (home == survivor)
        {
            return Http.Problems.Conflict("Takeover already done", $"The log lives in region {survivor} already.");
        }

        if (home == lost)
        {
            return Http.Problems.Conflict("Region not lost", $"Region {lost}'s servers still answer for the log: a takeover is refused while the home answers (it would split the books).");
        }

        if (home is not null)
        {
            return Http.Problems.Conflict("Region is not the home", $"The log lives in region {home}, not {lost}.");
        }

        try
        {
            await js.GetStreamAsync(RegionFailover.MirrorOf(NatsTopology.EventsStream, survivor), cancellationToken: ct);
            return null;
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == 10059)
        {
            return Http.Problems.Conflict("No standby copy here", $"Region {survivor} keeps no mirror of the log ({RegionFailover.MirrorOf(NatsTopology.EventsStream, survivor)}): nothing to take over from.");
        }
    }

    /// <summary>The region whose servers answer for the log; "" for a server that is no cluster; null when none answers (its servers are lost, or it was forgotten by a takeover cut short).</summary>
    private static async Task<string?> HomeAsync(INatsJSContext js, CancellationToken ct)
    {
        using var within = CancellationTokenSource.CreateLinkedTokenSource(ct);
        within.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            var info = (await js.GetStreamAsync(NatsTopology.EventsStream, cancellationToken: within.Token)).Info;
            return info.Cluster is null ? "" : info.Cluster.Leader is { Length: > 0 } ? info.Cluster.Name : null;
        }
        catch (Exception e) when (e is NatsException or TimeoutException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return null;
        }
    }
}
