namespace CqrsInference.Api.Hosting;

/// <summary>
/// Which parts of the system this process runs: <c>api</c>, <c>processor</c>, <c>projections</c>
/// (setting <c>Cqrsi:Roles</c>, comma-separated). Locally one host runs all three; a deployment
/// scales them as separate processes of the same program.
/// </summary>
public sealed record Roles(bool Api, bool Processor, bool Projections)
{
    public static Roles Parse(string? value)
    {
        var names = (value ?? "api,processor,projections")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(n => n.ToLowerInvariant())
            .ToHashSet();
        var unknown = names.Except(["api", "processor", "projections"]).ToList();
        if (unknown.Count > 0 || names.Count == 0)
        {
            throw new InvalidOperationException($"Cqrsi:Roles must list api, processor and/or projections; got '{value}'.");
        }

        return new Roles(names.Contains("api"), names.Contains("processor"), names.Contains("projections"));
    }

    public override string ToString() =>
        string.Join(",", new[] { Api ? "api" : null, Processor ? "processor" : null, Projections ? "projections" : null }.OfType<string>());
}
