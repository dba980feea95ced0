using CqrsInference.Api.Http;
using System.ComponentModel;
using System.Text.Json.Serialization;
using Marten;
using CqrsInference.Api.OpenApi;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Security;

internal static class AdminApi
{
    [System.Text.Json.Serialization.JsonUnmappedMemberHandling(System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow)]
    public sealed record CreateKeyRequest(string? Tenant, string? Name, string[]? Roles);

    public sealed record KeyView(string Id, string Tenant, string Name, string[] Roles, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key = null);

    /// <summary>What <c>GET /v1/admin/webhook-key</c> answers: the tenant's signing secrets and how deliveries are signed.</summary>
    public sealed record WebhookKeyView(
        string Tenant,
        [property: Description("The Standard Webhooks secret (whsec_…) that verifies webhook-signature.")] string Secret,
        string Signature,
        [property: Description("Deprecated: the key of the Cqrsi-Signature header, sent until the next release.")] string Key,
        string DeprecatedSignature);

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        // A tenant's admin manages its own tenant's keys; the platform operator any tenant's.
        var admin = app.MapGroup("/v1/admin/keys").WithTags("Admin").RequirePolicy(ApiPolicies.TenantAdmin);
        admin.MapPost("", CreateAsync)
            .WithStoreDeadline().WithName("CreateApiKey")
            .WithSummary("Create an API key with roles (submit, read, analyst, auditor, admin; operator only by the operator) for the caller's tenant, "
                + "or any tenant for the platform operator; the key is shown only in this answer")
            .WithResponseHeader(StatusCodes.Status201Created, "Location", "The key's address, /v1/admin/keys/{id}.")
            .WithProblems(OtherTenantProblem, (StatusCodes.Status422UnprocessableEntity, "The tenant or the roles are not valid; 'errors' names each."));
        admin.MapGet("", ListAsync)
            .WithStoreDeadline().WithName("ListApiKeys").WithSummary("The keys of the caller's tenant, or of ?tenant= for the operator (without secrets)")
            .WithProblems(OtherTenantProblem, InvalidTenantProblem);
        app.MapGet("/v1/admin/webhook-key", WebhookKey)
            .WithTags("Admin").WithName("GetWebhookKey").WithSummary("The secret a tenant verifies its webhooks' Standard Webhooks signatures with (its own; any tenant's for the operator)")
            .WithProblems(OtherTenantProblem, InvalidTenantProblem, (StatusCodes.Status404NotFound, "Webhooks are off (Webhooks:SigningKey is not set)."))
            .RequirePolicy(ApiPolicies.TenantAdmin);
        admin.MapDelete("/{id}", RevokeAsync)
            .WithStoreDeadline().WithName("RevokeApiKey").WithSummary("Revoke a key of the caller's tenant (any, for the operator; a key with the operator role only by the operator: 403); it stops working at once on this instance, within Api:KeyCache:FreshFor (5 s) on others")
            .WithProblems((StatusCodes.Status404NotFound, "There is no such key (another tenant's key is not disclosed)."));
        return app;
    }

    private static readonly (int, string) OtherTenantProblem = (StatusCodes.Status403Forbidden,
        "The key lacks the role admin, or names another tenant: a tenant's admin manages its own tenant only, other tenants are the platform operator's.");

    private static readonly (int, string) InvalidTenantProblem = (StatusCodes.Status422UnprocessableEntity, "The tenant is not a valid name.");

    /// <summary>The longest name a key may carry.</summary>
    public const int MaxNameLength = 200;

    public static async Task<Results<Created<KeyView>, ProblemHttpResult>> CreateAsync(
        CreateKeyRequest request, ApiCaller caller, IDocumentSession session, TimeProvider clock, CancellationToken ct)
    {
        var tenant = request.Tenant ?? caller.Tenant;
        var errors = new Dictionary<string, string[]>();
        if (!Commands.Models.Naming.IsToken(tenant))
        {
            errors["tenant"] = [Http.Problems.TenantRule];
        }

        if (request.Name is { } name && (name.Length > MaxNameLength || name.Any(char.IsControl)))
        {
            // Kept in PostgreSQL, which refuses the NUL character: refused here, not a 500 there.
            errors["name"] = [$"name is at most {MaxNameLength} characters, without control characters."];
        }

        var grantable = caller.IsOperator ? ApiRoles.All : ApiRoles.OfTenant;
        var roles = request.Roles ?? [];
        if (roles.Length == 0 || roles.Any(r => !grantable.Contains(r)))
        {
            errors["roles"] = [$"Roles must be a non-empty list of: {string.Join(", ", grantable)}."];
        }

        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        if (tenant != caller.Tenant && !caller.IsOperator)
        {
            return OtherTenant();
        }

        var (id, key, hash) = ApiKeySecrets.Create();
        var stored = new ApiKey(id, tenant, request.Name ?? "", roles.Distinct().ToArray(), hash, clock.GetUtcNow());
        session.Insert(stored);
        await session.SaveChangesAsync(ct);
        return TypedResults.Created($"/v1/admin/keys/{id}", View(stored) with { Key = key });
    }

    public static async Task<Results<Ok<List<KeyView>>, ProblemHttpResult>> ListAsync(string? tenant, ApiCaller caller, IQuerySession session, CancellationToken ct)
    {
        if (tenant is not null && !Commands.Models.Naming.IsToken(tenant))
        {
            return InvalidTenant();
        }

        if (tenant is not null && tenant != caller.Tenant && !caller.IsOperator)
        {
            return OtherTenant();
        }

        var of = caller.IsOperator ? tenant : caller.Tenant;
        var keys = await session.Query<ApiKey>().Where(k => of == null || k.Tenant == of).ToListAsync(ct);
        return TypedResults.Ok(keys.OrderBy(k => k.CreatedAt).Select(View).ToList());
    }

    public static Results<Ok<WebhookKeyView>, ProblemHttpResult> WebhookKey(string? tenant, ApiCaller caller, Projections.Webhooks.WebhookOptions webhooks)
    {
        var of = tenant ?? caller.Tenant;
        if (!Commands.Models.Naming.IsToken(of))
        {
            return InvalidTenant();
        }

        if (of != caller.Tenant && !caller.IsOperator)
        {
            return OtherTenant();
        }

        return webhooks.Enabled
            ? TypedResults.Ok(new WebhookKeyView(
                of,
                webhooks.TenantSecret(of),
                "Standard Webhooks: webhook-signature: v1,<base64 HMAC-SHA256(secret, \"<webhook-id>.<webhook-timestamp>.<body>\")>",
                webhooks.TenantKey(of),
                "Cqrsi-Signature (deprecated, sent until the next release): t=<unix seconds>,v1=<hex HMAC-SHA256(key, \"<t>.<body>\")>"))
            : TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Webhooks are off", detail: "Webhooks:SigningKey is not set.");
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(
        string id, ApiCaller caller, IDocumentSession session, VerifiedKeys verified, TimeProvider clock, CancellationToken ct)
    {
        var stored = await session.LoadAsync<ApiKey>(id, ct);
        if (stored is null || (stored.Tenant != caller.Tenant && !caller.IsOperator))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Key not found", detail: $"There is no key {Commands.Shown.Cut(id)}.");
        }

        if (stored.Roles.Contains(ApiRoles.Operator) && !caller.IsOperator)
        {
            // Granted by the platform operator only, so revoked by it only: a tenant's admin cannot
            // take the platform's key away because it was created under the tenant.
            return Http.Problems.Forbidden($"Key {id} has the operator role: only the platform operator revokes it.");
        }

        if (stored.RevokedAt is null)
        {
            session.Store(stored with { RevokedAt = clock.GetUtcNow() });
            await session.SaveChangesAsync(ct);
        }

        // At once here; other instances within Api:KeyCache:FreshFor.
        verified.Refused(stored.Id);

        return TypedResults.NoContent();
    }

    private static ProblemHttpResult OtherTenant() => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
        detail: "A tenant's admin manages its own tenant only; other tenants are the platform operator's.");

    private static ProblemHttpResult InvalidTenant() => Http.Problems.Validation("tenant", Http.Problems.TenantRule);

    private static KeyView View(ApiKey k) => new(k.Id, k.Tenant, k.Name, k.Roles, k.CreatedAt, k.RevokedAt);
}
