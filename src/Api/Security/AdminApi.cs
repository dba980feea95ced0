using System.Text.Json.Serialization;
using Marten;
using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Security;

internal static class AdminApi
{
    public sealed record CreateKeyRequest(string? Tenant, string? Name, string[]? Roles);

    public sealed record KeyView(string Id, string Tenant, string Name, string[] Roles, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key = null);

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin/keys").WithTags("Admin").RequireRole(ApiRoles.Admin);
        admin.MapPost("", CreateAsync).WithName("CreateApiKey")
            .WithSummary("Create an API key for a tenant with roles (submit, read, analyst, auditor, admin); the key is shown only in this answer");
        admin.MapGet("", ListAsync).WithName("ListApiKeys").WithSummary("The keys of a tenant (without secrets)");
        app.MapGet("/v1/admin/webhook-key", (string tenant, Projections.Webhooks.WebhookOptions webhooks) =>
                webhooks.Enabled
                    ? Results.Ok(new { tenant, key = webhooks.TenantKey(tenant), signature = "Cqrsi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, \"<t>.<body>\")>" })
                    : Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Webhooks are off", detail: "Webhooks:SigningKey is not set."))
            .WithTags("Admin").WithName("GetWebhookKey").WithSummary("The key a tenant verifies its webhook signatures with")
            .RequireRole(ApiRoles.Admin);
        admin.MapDelete("/{id}", RevokeAsync).WithName("RevokeApiKey").WithSummary("Revoke a key; it stops working at once");
        return app;
    }

    public static async Task<Results<Created<KeyView>, ProblemHttpResult>> CreateAsync(
        CreateKeyRequest request, IDocumentSession session, TimeProvider clock, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (!Commands.Models.Naming.IsToken(request.Tenant))
        {
            errors["tenant"] = [$"Tenant must match {Commands.Models.Naming.TokenPattern}."];
        }

        var roles = request.Roles ?? [];
        if (roles.Length == 0 || roles.Any(r => !ApiRoles.All.Contains(r)))
        {
            errors["roles"] = [$"Roles must be a non-empty list of: {string.Join(", ", ApiRoles.All)}."];
        }

        if (errors.Count > 0)
        {
            return Http.Problems.Validation(errors);
        }

        var (id, key, hash) = ApiKeySecrets.Create();
        var stored = new ApiKey(id, request.Tenant!, request.Name ?? "", roles.Distinct().ToArray(), hash, clock.GetUtcNow());
        session.Insert(stored);
        await session.SaveChangesAsync(ct);
        return TypedResults.Created($"/v1/admin/keys/{id}", View(stored) with { Key = key });
    }

    public static async Task<Ok<List<KeyView>>> ListAsync(string? tenant, IQuerySession session, CancellationToken ct)
    {
        var keys = await session.Query<ApiKey>().Where(k => tenant == null || k.Tenant == tenant).ToListAsync(ct);
        return TypedResults.Ok(keys.OrderBy(k => k.CreatedAt).Select(View).ToList());
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(string id, IDocumentSession session, TimeProvider clock, CancellationToken ct)
    {
        var stored = await session.LoadAsync<ApiKey>(id, ct);
        if (stored is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Key not found", detail: $"There is no key {id}.");
        }

        if (stored.RevokedAt is null)
        {
            session.Store(stored with { RevokedAt = clock.GetUtcNow() });
            await session.SaveChangesAsync(ct);
        }

        return TypedResults.NoContent();
    }

    private static KeyView View(ApiKey k) => new(k.Id, k.Tenant, k.Name, k.Roles, k.CreatedAt, k.RevokedAt);
}
