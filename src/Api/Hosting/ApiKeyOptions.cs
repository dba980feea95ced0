using System.Security.Cryptography;
using System.Text;

namespace CqrsInference.Api.Hosting;

/// <summary>
/// Local development authentication: when <c>CQRSI_API_KEY</c> is set, requests must carry
/// <c>Authorization: Bearer &lt;key&gt;</c> and act for tenant <c>default</c>; unset, requests are
/// anonymous and also act for <c>default</c>. Multi-tenant keys are a later step (issue 4).
/// </summary>
public sealed class ApiKeyOptions
{
    public const string DefaultTenant = "default";

    public byte[]? KeyHash { get; init; }

    public static ApiKeyOptions From(IConfiguration configuration)
    {
        var key = configuration["CQRSI_API_KEY"];
        return new ApiKeyOptions { KeyHash = string.IsNullOrEmpty(key) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(key)) };
    }

    /// <summary>The tenant the request acts for, or null when its credentials are missing or wrong.</summary>
    public string? Authenticate(HttpRequest request)
    {
        if (KeyHash is null)
        {
            return DefaultTenant;
        }

        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return null;
        }

        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, KeyHash) ? DefaultTenant : null;
    }
}
