using System.Security.Cryptography;
using System.Text;

namespace CqrsInference.Api.Security;

/// <summary>The roles a key can hold.</summary>
internal static class ApiRoles
{
    public const string Submit = "submit";
    public const string Read = "read";
    public const string Analyst = "analyst";
    public const string Auditor = "auditor";
    public const string Admin = "admin";
    public const string Operator = "operator";

    /// <summary>The roles of a tenant; an admin of a tenant grants only these.</summary>
    public static readonly IReadOnlyList<string> OfTenant = [Submit, Read, Analyst, Auditor, Admin];

    public static readonly IReadOnlyList<string> All = [.. OfTenant, Operator];
}

/// <summary>
/// A stored API key. The secret itself is never stored: only its SHA-256. The key a client sends is
/// <c>cqrsi_&lt;id&gt;_&lt;secret&gt;</c>; the id finds the document, the hash proves the secret.
/// </summary>
public sealed record ApiKey(
    string Id,
    string Tenant,
    string Name,
    string[] Roles,
    string SecretHash,
    DateTimeOffset CreatedAt,
    DateTimeOffset? RevokedAt = null);

/// <summary>Who is calling: the tenant every query is filtered by, and what they may do.</summary>
internal sealed record ApiCaller(string Tenant, IReadOnlySet<string> Roles, string KeyId)
{
    public bool Has(string role) => Roles.Contains(role);

    /// <summary>The platform operator, who alone crosses tenants.</summary>
    public bool IsOperator => Roles.Contains(ApiRoles.Operator);

    /// <summary>Whether this caller may see and act on a job of <paramref name="tenant"/>: its own tenant's, or any for the platform's operator.</summary>
    public bool Sees(string tenant) => IsOperator || tenant == Tenant;

    /// <summary>Lets handlers take the caller as a parameter (authentication ran before binding).</summary>
    public static ValueTask<ApiCaller?> BindAsync(HttpContext context) =>
        ValueTask.FromResult(From(context.User));

    public static ApiCaller? From(System.Security.Claims.ClaimsPrincipal user) =>
        user.FindFirst(ApiKeyAuthentication.TenantClaim)?.Value is { } tenant
            ? new ApiCaller(tenant, user.FindAll(System.Security.Claims.ClaimTypes.Role).Select(c => c.Value).ToHashSet(),
                user.FindFirst(ApiKeyAuthentication.KeyClaim)?.Value ?? "")
            : null;
}

internal static class ApiKeySecrets
{
    public const string Prefix = "cqrsi_";

    public static (string Id, string Key, string Hash) Create()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_').TrimEnd('=');
        return (id, $"{Prefix}{id}_{secret}", Hash(secret));
    }

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Splits a presented key into id and secret; false if it is not of our form.</summary>
    public static bool TryParse(string key, out string id, out string secret)
    {
        id = secret = "";
        if (!key.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = key[Prefix.Length..];
        var separator = rest.IndexOf('_', StringComparison.Ordinal);
        if (separator <= 0 || separator == rest.Length - 1)
        {
            return false;
        }

        (id, secret) = (rest[..separator], rest[(separator + 1)..]);
        return true;
    }

    public static bool Matches(string secret, string storedHash) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(secret)), Encoding.ASCII.GetBytes(storedHash));
}
