using Microsoft.AspNetCore.Authorization;

namespace CqrsInference.Api.Security;

/// <summary>What a policy needs, in words, for the 403's detail.</summary>
internal sealed record ApiPolicyDescription(string Needs);

/// <summary>
/// Who may call what. Two kinds of principal: the platform operator (role <c>operator</c>: every
/// tenant's keys, global replay and verify, platform analytics, metrics) and a tenant's roles
/// (submit, read, analyst, auditor, and admin for the tenant's own keys), which see only their own
/// tenant. Every endpoint declares its policy with <see cref="RequirePolicy{TBuilder}"/> (or is
/// explicitly anonymous); an endpoint that declares nothing needs a valid caller, and the matrix
/// test fails on it.
/// </summary>
internal static class ApiPolicies
{
    public const string Submit = "submit";
    public const string Read = "read";
    public const string Analyst = "analyst";
    public const string Auditor = "auditor";
    public const string TenantAdmin = "tenant-admin";
    public const string Operator = "operator";
    public const string AnyCaller = "any-caller";

    private static readonly Dictionary<string, (string[] Roles, string Needs)> Definitions = new()
    {
        [Submit] = ([ApiRoles.Submit], "the role submit"),
        [Read] = ([ApiRoles.Read, ApiRoles.Auditor], "the role read or auditor"),
        [Analyst] = ([ApiRoles.Analyst], "the role analyst"),
        [Auditor] = ([ApiRoles.Auditor], "the role auditor"),
        [TenantAdmin] = ([ApiRoles.Admin], "the role admin"),
        [Operator] = ([], "the platform operator's role (operator)"),
    };

    public static IServiceCollection AddApiAuthorization(this IServiceCollection services)
    {
        Hosting.Settings.AddSetting<KeyCacheOptions>(services, "Api:KeyCache");
        Hosting.Settings.AddSetting<ApiOptions>(services, "Api");
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<ApiOptions>, OperatorKeyRule>();
        services.AddSingleton<VerifiedKeys>();
        services.AddSingleton<StreamKeys>();
        services.AddAuthentication(ApiKeyAuthentication.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyAuthentication>(ApiKeyAuthentication.SchemeName, null);
        services.AddAuthorization(options =>
        {
            foreach (var (name, (roles, _)) in Definitions)
            {
                // The operator holds every role.
                options.AddPolicy(name, policy => policy.RequireRole([.. roles, ApiRoles.Operator]));
            }

            options.AddPolicy(AnyCaller, policy => policy.RequireAuthenticatedUser());
            // An endpoint that declares nothing (routing's own 405/415 answers, say) needs a valid
            // caller; every endpoint of ours declares its policy (EndpointPolicyTests checks).
            options.FallbackPolicy = options.GetPolicy(AnyCaller);
        });
        return services;
    }

    /// <summary>The roles any one of which admits a caller to the policy (the operator's among them); none for <see cref="AnyCaller"/>.</summary>
    public static IReadOnlyList<string> RolesOf(string policy) =>
        Definitions.TryGetValue(policy, out var d) ? [.. d.Roles, ApiRoles.Operator] : [];

    /// <summary>What the policy needs, in words; null when any valid caller may (no 403 is possible).</summary>
    public static string? NeedsOf(string policy) => Definitions.TryGetValue(policy, out var d) ? d.Needs : null;

    /// <summary>Declares the endpoint's policy (one of this class's names).</summary>
    public static TBuilder RequirePolicy<TBuilder>(this TBuilder builder, string policy)
        where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(policy)
            .WithMetadata(new ApiPolicyDescription(NeedsOf(policy) ?? "a valid key"));
}
