using System.Security.Cryptography;
using System.Text;
using Marten;

namespace CqrsInference.Api.Security;

/// <summary>
/// How callers are known. Stored keys (created by an admin) always work and are looked up on every
/// request, so a revocation takes effect at once. For local development, <c>CQRSI_API_KEY</c> (if
/// set) is a key for tenant <c>default</c> with every role; with <c>Api:AllowAnonymous</c> (the
/// local default) a request without credentials acts for tenant <c>default</c> with every role
/// but admin. Production sets <c>Api:AllowAnonymous=false</c>.
/// </summary>
internal sealed class ApiAuthentication(IConfiguration configuration, IDocumentStore store)
{
    public const string DefaultTenant = "default";
    private readonly byte[]? _developmentKeyHash = configuration["CQRSI_API_KEY"] is { Length: > 0 } key
        ? SHA256.HashData(Encoding.UTF8.GetBytes(key))
        : null;

    private readonly bool _allowAnonymous = configuration.GetValue("Api:AllowAnonymous", true);

    private static readonly ApiCaller Anonymous = new(DefaultTenant, ApiRoles.All.Where(r => r != ApiRoles.Admin).ToHashSet(), "anonymous");
    private static readonly ApiCaller Developer = new(DefaultTenant, ApiRoles.All.ToHashSet(), "development");

    /// <summary>The caller, or null when credentials are missing or wrong.</summary>
    public async ValueTask<ApiCaller?> AuthenticateAsync(HttpRequest request, CancellationToken ct)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            return _allowAnonymous && _developmentKeyHash is null ? Anonymous : null;
        }

        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return null;
        }

        var presented = header["Bearer ".Length..].Trim();
        if (_developmentKeyHash is not null
            && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _developmentKeyHash))
        {
            return Developer;
        }

        if (!ApiKeySecrets.TryParse(presented, out var id, out var secret))
        {
            return null;
        }

        await using var session = store.QuerySession();
        var stored = await session.LoadAsync<ApiKey>(id, ct);
        return stored is { RevokedAt: null } && ApiKeySecrets.Matches(secret, stored.SecretHash)
            ? new ApiCaller(stored.Tenant, stored.Roles.ToHashSet(), stored.Id)
            : null;
    }
}

/// <summary>Endpoint metadata: the roles of which a caller needs one (none: any authenticated caller).</summary>
internal sealed record RequiredRole(string[] Roles);

internal static class RoleRequirement
{
    /// <summary>401 without valid credentials, 403 without the role; otherwise the caller is bound for the handler.</summary>
    public static TBuilder RequireRole<TBuilder>(this TBuilder builder, params string[] anyOf)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RequiredRole(anyOf));

    /// <summary>
    /// Authenticates before the endpoint binds its parameters, so that handlers can take
    /// <see cref="ApiCaller"/> and an unauthenticated request never reaches body parsing.
    /// </summary>
    public static IApplicationBuilder UseApiAuthentication(this IApplicationBuilder app) =>
        app.Use(async (http, next) =>
        {
            if (http.GetEndpoint()?.Metadata.GetMetadata<RequiredRole>() is not { } required)
            {
                await next(http);
                return;
            }

            var authentication = http.RequestServices.GetRequiredService<ApiAuthentication>();
            var caller = await authentication.AuthenticateAsync(http.Request, http.RequestAborted);
            IResult? refusal = caller is null
                ? TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized",
                    detail: "Send 'Authorization: Bearer <key>' with a valid, unrevoked API key.")
                : required.Roles.Length > 0 && !required.Roles.Any(caller.Has)
                    ? TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
                        detail: $"This key lacks the role this needs: {string.Join(" or ", required.Roles)}.")
                    : null;
            if (refusal is not null)
            {
                await refusal.ExecuteAsync(http);
                return;
            }

            http.Items[ApiCaller.ItemKey] = caller;
            await next(http);
        });
}
