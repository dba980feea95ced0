using CqrsInference.Api.Jobs;
using CqrsInference.Api.Jobs.Submitting;
using CqrsInference.Api.Security;
using CqrsInference.Commands.Models;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Inference;

/// <summary>
/// <c>POST /v2/models/{model}[/versions/{version}]/infer</c>: find the model, read the request,
/// submit it as a job through the same seam as /v1 (same keys, tenants, limits and admission) and
/// wait for it, then answer in the protocol's layout. Synchronous: the caller waits up to
/// <c>?wait=</c> (default <see cref="SubmitRequest.InteractiveWait"/>), whichever path serves the job.
/// A version in the path pins the job to it; without one the job goes to the model's default version
/// or its canary split, as an unpinned /v1 submit.
/// </summary>
internal static class InferEndpoint
{
    public static Task<Results<Ok<V2InferResponse>, V2ErrorResult>> InferAsync(
        string model, HttpRequest request, ApiCaller caller, SubmitServices services, ModelCatalog catalog, string? wait, CancellationToken ct) =>
        InferVersionAsync(model, null, request, caller, services, catalog, wait, ct);

    public static async Task<Results<Ok<V2InferResponse>, V2ErrorResult>> InferVersionAsync(
        string model, string? version, HttpRequest request, ApiCaller caller, SubmitServices services, ModelCatalog catalog, string? wait, CancellationToken ct)
    {
        var (definition, unknown) = V2Models.Find(catalog, model, version);
        if (definition is null)
        {
            return unknown!;
        }

        var waitFor = SubmitRequest.InteractiveWait;
        if (wait is not null && !JobNotifications.TryParseWait(wait, out waitFor))
        {
            return V2Errors.BadRequest($"wait must be a duration such as 500ms, 5s or 1m, at most {JobNotifications.MaxWaitSeconds} s.");
        }

        var (infer, error) = await InferRequestReader.ReadAsync(request, definition, ct);
        if (infer is null)
        {
            return error!;
        }

        var command = infer.ToCommand(caller, definition, version, services.Clock.GetUtcNow(), waitFor);
        Http.ApiExceptionHandler.Submitting(request.HttpContext, command.JobId);
        var answer = await SubmitEndpoint.RunAsync(command, waitFor, services, ct);
        return answer.Status is { } job
            ? await InferAnswers.OfAsync(job, infer, answer.ServedBy, waitFor, services.ClaimCheck, ct)
            : InferAnswers.Refused(answer.Outcome);
    }
}
