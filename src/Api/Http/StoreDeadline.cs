using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CqrsInference.Api.Http;

/// <summary><c>Api:Timeouts</c>: how long a request may wait for the stores.</summary>
internal sealed class ApiTimeoutOptions
{
    /// <summary>How long a request may take before it answers 503 (a store that hangs), unless its endpoint waits by design.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan Request { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one command of a request's session may wait for PostgreSQL (whole seconds).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan Command { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// The sessions requests are given (<c>IQuerySession</c>, <c>IDocumentSession</c>): each command
/// waits at most <see cref="ApiTimeoutOptions.Command"/>, not the driver's 30 s. Npgsql's own
/// command timeout cancels a command the server does not answer and breaks its connection when the
/// cancel goes unanswered too (within its 2 s cancellation timeout); a cancelled token alone, as the
/// request's bound cancels it, left the command waiting for its command timeout from then on (a
/// key's creation answered after 40 s with the request's bound at 10 s).
/// </summary>
internal sealed class BoundedSessions(Marten.IDocumentStore store, ApiTimeoutOptions timeouts) : Marten.ISessionFactory
{
    private Marten.Services.SessionOptions Options => new() { Timeout = (int)Math.Ceiling(timeouts.Command.TotalSeconds) };

    public Marten.IQuerySession QuerySession() => store.QuerySession(Options);

    public Marten.IDocumentSession OpenSession() => store.LightweightSession(Options);
}

/// <summary>
/// A bound on the requests that answer from PostgreSQL alone (lists, keys, backtests, analytics, the
/// audit feed, a batch's lines: <see cref="WithStoreDeadline{TBuilder}"/>), with ASP.NET Core's
/// request timeouts: a PostgreSQL that hangs instead of refusing (stopped, a network that drops
/// packets) held them for the driver's timeouts (a 5 s connect, 30 s per command: 38-45 s in a
/// probe). At <see cref="ApiTimeoutOptions.Request"/> the request's token is cancelled, the store's
/// call gives up, within a command's timeout (<see cref="BoundedSessions"/>), and the caller gets 503
/// with Retry-After, as for a store out of reach. Not bounded so: what also waits for NATS, whose
/// waits have bounds of their own and may be long by design (a job's read from a region's hold,
/// submits, cancels, failover), streams, uploads, and the reads that may be long on a healthy store
/// (verify, replay, the invoice, the reconciliation). A write cut off may still be stored when the
/// store resumes, as any 503 of the API says. An export ends the bound once the store has answered
/// (<see cref="Answered"/>): from then on it streams for as long as the client reads.
/// </summary>
internal static class StoreDeadline
{
    public static IServiceCollection AddStoreDeadline(this IServiceCollection services)
    {
        Hosting.Settings.AddSetting<ApiTimeoutOptions>(services, "Api:Timeouts");
        services.AddOptions<RequestTimeoutOptions>().Configure<ApiTimeoutOptions>((timeouts, settings) =>
            timeouts.AddPolicy(Policy, new RequestTimeoutPolicy
            {
                Timeout = settings.Request,
                TimeoutStatusCode = StatusCodes.Status503ServiceUnavailable,
                WriteTimeoutResponse = http => WriteAsync(http, settings.Request),
            }));
        services.AddRequestTimeouts();

        services.AddSingleton(sp => new Projections.Batches.StoreReadTimeout(
            (int)Math.Ceiling(sp.GetRequiredService<ApiTimeoutOptions>().Command.TotalSeconds)));

        // After the event store's registration: the request's sessions are this factory's.
        services.Replace(ServiceDescriptor.Singleton<Marten.ISessionFactory, BoundedSessions>());
        return services;
    }

    /// <summary>The name of the bound's policy.</summary>
    public const string Policy = "store";

    /// <summary>Bounds an endpoint that answers from PostgreSQL alone (<see cref="ApiTimeoutOptions.Request"/>).</summary>
    public static TBuilder WithStoreDeadline<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new RequestTimeoutAttribute(Policy));

    /// <summary>The store answered an export: the rest of the response is not bounded.</summary>
    public static void Answered(HttpContext http) => http.Features.Get<IHttpRequestTimeoutFeature>()?.DisableTimeout();

    /// <summary>Whether the request's bound, not its client, cancelled it.</summary>
    public static bool TimedOut(HttpContext http) => http.Features.Get<IHttpRequestTimeoutFeature>()?.RequestTimeoutToken.IsCancellationRequested == true;

    /// <summary>The 503 of a request that passed its bound (also for a store's exception thrown after it).</summary>
    public static string Detail(TimeSpan within) =>
        $"A store the API depends on did not answer within {within.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s; "
        + $"retry in {ApiExceptionHandler.RetryAfterSeconds} s (a write may have been stored all the same).";

    private static async Task WriteAsync(HttpContext http, TimeSpan within)
    {
        http.Response.Headers.RetryAfter = ApiExceptionHandler.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        await ApiExceptionHandler.WriteAsync(http, http.RequestServices.GetRequiredService<IProblemDetailsService>(),
            new ProblemDetails { Status = StatusCodes.Status503ServiceUnavailable, Title = "Service unavailable", Detail = Detail(within) });
    }
}
