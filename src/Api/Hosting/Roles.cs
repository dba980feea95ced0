namespace CqrsInference.Api.Hosting;

/// <summary>
/// Which parts of the system this process runs: <c>api</c>, <c>processor</c>, <c>projections</c>
/// (setting <c>Cqrsi:Roles</c>, comma-separated). Locally one host runs all three; a deployment
/// scales them as separate processes of the same program. <c>edge</c> (alone) runs an edge site's
/// processor against the site's own nats-server.
/// </summary>
internal sealed record Roles(bool Api, bool Processor, bool Projections, bool Edge = false)
{
    public static Roles Parse(string? value)
    {
        var names = (value ?? "api,processor,projections")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(n => n.ToLowerInvariant())
            .ToHashSet();
        var unknown = names.Except(["api", "processor", "projections", "edge"]).ToList();
        if (unknown.Count > 0 || names.Count == 0)
        {
            throw new InvalidOperationException($"Cqrsi:Roles must list api, processor and/or projections, or be edge; got '{value}'.");
        }

        if (names.Contains("edge") && names.Count > 1)
        {
            // An edge processor talks only to its site's nats-server, never to the core's.
            throw new InvalidOperationException($"Cqrsi:Roles edge runs alone (it connects to the edge site's nats-server); got '{value}'.");
        }

        return new Roles(names.Contains("api"), names.Contains("processor"), names.Contains("projections"), names.Contains("edge"));
    }

    public override string ToString() =>
        string.Join(",", new[] { Api ? "api" : null, Processor ? "processor" : null, Projections ? "projections" : null, Edge ? "edge" : null }.OfType<string>());
}
