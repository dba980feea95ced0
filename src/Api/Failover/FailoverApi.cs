using CqrsInference.Api.OpenApi;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Jobs.Submitting;
using CqrsInference.Messaging;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Failover;

/// <summary>
/// <c>POST /v1/admin/failover</c>: the operator declares a region lost, and this API's region
/// (<c>Submit:Region</c>, the survivor) takes over from its standby mirrors
/// (<see cref="RegionFailover.TakeOverAsync(string, Func{CancellationToken, Task}, IRecorderCheckpoints?, CancellationToken)"/>),
/// the recorders' checkpoints moved with it (<see cref="Takeover"/>). Refused while the lost
/// region's servers still answer for the log: a takeover then would split the books.
/// </summary>
internal static class FailoverApi
{
    [System.Text.Json.Serialization.JsonUnmappedMemberHandling(System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow)]
    public sealed record FailoverRequest(string? LostRegion);

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
        FailoverRequest request, FailoverOptions options, SubmitOptions submit, Takeover takeover, HttpContext http, CancellationToken ct)
    {
        if (options.StandbyRegions.Count == 0)
        {
            return Http.Problems.NotFound("Failover is off", "Failover:StandbyRegions is not set: no region keeps a standby copy.");
        }

        if (Refusal(request.LostRegion, submit.Region, options, submit) is { } refused)
        {
            return refused;
        }

        var outcome = await takeover.RunAsync(request.LostRegion!, ct);
        return outcome switch
        {
            { Report: { } report } => TypedResults.Ok(report),
            { Refused: { Status: 503 } unavailable } => Http.Problems.Unavailable(http, unavailable.Title, unavailable.Detail, TimeSpan.FromSeconds(5)),
            { Refused: { } conflict } => Http.Problems.Conflict(conflict.Title, conflict.Detail),
            _ => throw new InvalidOperationException("A takeover ends with a report or a refusal."),
        };
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
}
