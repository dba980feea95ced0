using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Marten;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace CqrsInference.Api.Security;

/// <summary>
/// How callers are known: an ASP.NET Core authentication scheme for the API's keys. Stored keys
/// (created by an admin or the operator) are looked up in PostgreSQL at most every few seconds per
/// key, and while PostgreSQL is out of reach or hangs a key it confirmed lately still works
/// (<see cref="VerifiedKeys"/>). <c>CQRSI_API_KEY</c> (if set) is the operator's key (every role, tenant
/// <c>default</c>). With <c>Api:AllowAnonymous</c> (true in the shipped appsettings.json, false in
/// Production's; absent from every source, true only while no <c>CQRSI_API_KEY</c> is set) a request
/// without credentials acts for tenant <c>default</c> with the roles submit and read only.
/// </summary>
internal sealed class ApiKeyAuthentication(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IConfiguration configuration, ApiOptions api, IServiceProvider services, VerifiedKeys verified)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string DefaultTenant = "default";
    public const string TenantClaim = "cqrsi:tenant";
    public const string KeyClaim = "cqrsi:key";

    /// <summary>
    /// The key id of the operator's configured key (<c>CQRSI_API_KEY</c>), which no store holds: what
    /// the records of its acts (a cancel's, a retry's, a backtest's requester) name. Recorded as
    /// "development" before 2026-12-02.
    /// </summary>
    public const string ConfiguredKeyId = "operator";

    /// <summary>The key id of an anonymous caller.</summary>
    public const string AnonymousKeyId = "anonymous";

    private static readonly string[] AnonymousRoles = [ApiRoles.Submit, ApiRoles.Read];

    private readonly byte[]? _developmentKeyHash = configuration["CQRSI_API_KEY"] is { Length: > 0 } key
        ? SHA256.HashData(Encoding.UTF8.GetBytes(key))
        : null;

    /// <summary><c>Api:AllowAnonymous</c>; unset, anonymous callers are allowed only while no <c>CQRSI_API_KEY</c> is set.</summary>
    private bool AllowAnonymous => api.AllowAnonymous ?? _developmentKeyHash is null;

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (Request.Headers.Authorization.Count > 1)
        {
            // Joined, two keys read as one unknown key; say what is wrong instead.
            return AuthenticateResult.Fail($"Send one Authorization header, not {Request.Headers.Authorization.Count}.");
        }

        var header = Request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            return AllowAnonymous ? Success(DefaultTenant, AnonymousRoles, AnonymousKeyId) : AuthenticateResult.NoResult();
        }

        // The scheme's name is case-insensitive (RFC 9110, 11.1): "bearer" is "Bearer". "Bearer"
        // and nothing after it is what a script sends whose variable holding the key is empty.
        if (header.Trim().Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail("The bearer token is empty (is the variable that holds the key set?).");
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail("Not a bearer token.");
        }

        var presented = header["Bearer ".Length..].Trim();
        if (_developmentKeyHash is not null
            && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _developmentKeyHash))
        {
            return Success(DefaultTenant, ApiRoles.All, ConfiguredKeyId);
        }

        if (!ApiKeySecrets.TryParse(presented, out var id, out var secret))
        {
            return AuthenticateResult.Fail("Not an API key.");
        }

        // A process without the event store (a processor alone) knows only the operator's key.
        if (services.GetService<IDocumentStore>() is not { } store)
        {
            return AuthenticateResult.Fail("This process has no key store; use the operator's key (CQRSI_API_KEY).");
        }

        var stored = await verified.FindAsync(id, store, Context.RequestAborted);
        return stored is not null && ApiKeySecrets.Matches(secret, stored.SecretHash)
            ? Success(stored.Tenant, stored.Roles, stored.Id)
            : AuthenticateResult.Fail("Unknown or revoked key.");
    }

    /// <summary>401 with the bearer challenge (RFC 6750): <c>error="invalid_token"</c> and why, when a key was sent.</summary>
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure?.Message;
        Response.Headers.WWWAuthenticate = failure is null ? "Bearer" : $"Bearer error=\"invalid_token\", error_description=\"{Quoted(failure)}\"";
        await TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized",
            detail: $"{(failure is null ? "" : failure + " ")}Send 'Authorization: Bearer <key>' with a valid, unrevoked API key.").ExecuteAsync(Context);
    }

    /// <summary>403 for a key without the policy's role, with RFC 6750's <c>error="insufficient_scope"</c>.</summary>
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        var needs = Context.GetEndpoint()?.Metadata.GetMetadata<ApiPolicyDescription>()?.Needs;
        Response.Headers.WWWAuthenticate = "Bearer error=\"insufficient_scope\"";
        var detail = Context.User.FindFirst(KeyClaim)?.Value == AnonymousKeyId
            ? $"A caller without a key may only submit and read (Api:AllowAnonymous); this needs a key{(needs is null ? "" : $" with {needs}")}: send 'Authorization: Bearer <key>'."
            : needs is null ? "This key may not do this." : $"This key lacks what this needs: {needs}.";
        return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: detail).ExecuteAsync(Context);
    }

    /// <summary>A quoted-string of the challenge may hold neither quotes nor backslashes.</summary>
    private static string Quoted(string text) => text.Replace('"', '\'').Replace('\\', '/');

    private AuthenticateResult Success(string tenant, IEnumerable<string> roles, string keyId)
    {
        var claims = new List<Claim> { new(TenantClaim, tenant), new(KeyClaim, keyId) };
        claims.AddRange(roles.Select(r => new Claim(ClaimTypes.Role, r)));
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName));
    }
}
