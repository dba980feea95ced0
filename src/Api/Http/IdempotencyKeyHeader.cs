using Microsoft.AspNetCore.Http.HttpResults;

namespace CqrsInference.Api.Http;

/// <summary>
/// The <c>Idempotency-Key</c> header of a submit, a batch or a retry: one value of 1 to
/// <see cref="MaxLength"/> characters, or none. Two headers are refused rather than joined (the
/// framework would read <c>x</c> and <c>y</c> as the key <c>x,y</c>, neither caller's), and an empty
/// one rather than taken as none (a caller whose key came out empty would get a new job each time).
/// </summary>
internal static class IdempotencyKeyHeader
{
    public const string Name = "Idempotency-Key";

    public const int MaxLength = 256;

    public static (string? Key, ProblemHttpResult? Problem) Read(HttpRequest request)
    {
        var values = request.Headers[Name];
        return values.Count switch
        {
            0 => (null, null),
            > 1 => (null, Problems.Validation(Name, $"Send one {Name} header, not {values.Count}.")),
            _ when string.IsNullOrWhiteSpace(values[0]) => (null, Problems.Validation(Name, $"The {Name} header is empty; leave it out, or give a key of 1 to {MaxLength} characters.")),
            _ when values[0]!.Length > MaxLength => (null, Problems.Validation(Name, $"The {Name} header is at most {MaxLength} characters.")),
            _ => (values[0], null),
        };
    }
}
