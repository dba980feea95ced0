namespace CqrsInference.Tests.Infrastructure;

/// <summary>What ./test.sh set up: PostgreSQL, the model files, the manifest.</summary>
public static class TestEnvironment
{
    public static string Postgres =>
        Environment.GetEnvironmentVariable("CQRSI_TEST_PG")
        ?? "Host=127.0.0.1;Port=55433;Database=cqrsi;Username=postgres;Maximum Pool Size=100";

    public static string RepositoryRoot
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "CqrsInference.sln")))
            {
                directory = directory.Parent;
            }

            return directory?.FullName ?? throw new InvalidOperationException("Cannot find the repository root above " + AppContext.BaseDirectory);
        }
    }

    public static string ModelsDirectory =>
        Environment.GetEnvironmentVariable("CQRSI_MODELS") ?? Path.Combine(RepositoryRoot, ".models");

    public static string Manifest =>
        Environment.GetEnvironmentVariable("CQRSI_MANIFEST") ?? Path.Combine(RepositoryRoot, "models", "manifest.json");

    /// <summary>A schema of its own for each test class, so classes cannot see each other's events.</summary>
    /// <summary>The platform operator's key (CQRSI_API_KEY) every test host is given.</summary>
    public const string OperatorKey = "test-operator-key";

    public static string NewSchema() => "t_" + Guid.NewGuid().ToString("N")[..12];
}
