using Microsoft.Extensions.Options;

namespace CqrsInference.Api.Security;

/// <summary>
/// The operator's key (<c>CQRSI_API_KEY</c>) opens every tenant, every role's <c>/metrics</c> and the
/// operator's endpoints, so outside Development it must not be guessable: at least
/// <see cref="MinimumLength"/> characters. A shorter one stops the start, naming the rule, instead
/// of serving with a key a few thousand guesses find; so does, in any environment, one that is not
/// printable ASCII without spaces (a line end a file or variable carried along, a space, a
/// non-ASCII character), which no caller could send as it is.
/// </summary>
internal sealed class OperatorKeyRule(IConfiguration configuration, IHostEnvironment environment) : IValidateOptions<ApiOptions>
{
    public const int MinimumLength = 16;

    public ValidateOptionsResult Validate(string? name, ApiOptions options) =>
        Problem(configuration["CQRSI_API_KEY"], environment.IsDevelopment()) is { } problem ? ValidateOptionsResult.Fail(problem) : ValidateOptionsResult.Success;

    /// <summary>What is wrong with the operator's key, or null (none set is allowed: then only stored keys, or anonymous callers, get in).</summary>
    public static string? Problem(string? key, bool development)
    {
        if (string.IsNullOrEmpty(key))
        {
            return null;
        }

        if (key.Any(c => c is < '!' or > '~'))
        {
            return "CQRSI_API_KEY must be printable ASCII without spaces: it holds a space, a line end, another control character or a non-ASCII one, which an Authorization header does not carry as it is (and cqrsi refuses), so no caller could send it.";
        }

        return key.Length < MinimumLength && !development
            ? $"CQRSI_API_KEY is {key.Length} characters: the operator's key opens every tenant, so outside Development it must have at least {MinimumLength} (e.g. openssl rand -hex 32)."
            : null;
    }
}
