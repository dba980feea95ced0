using CqrsInference.Api.Hosting;
using Microsoft.Extensions.Configuration;

namespace CqrsInference.Tests.Deployment;

/// <summary>Secrets from files (AppBuilder.AddSecretFiles): which directory, how files become settings, what wins.</summary>
public sealed class SecretFilesTests : IDisposable
{
    private readonly DirectoryInfo _secrets = Directory.CreateTempSubdirectory("cqrsi-secrets-");

    public void Dispose() => _secrets.Delete(recursive: true);

    [Fact]
    public void Each_file_is_a_setting_named_with_double_underscores_and_wins_over_earlier_sources()
    {
        File.WriteAllText(Path.Combine(_secrets.FullName, "Nats__Password"), "from-the-file\n");
        File.WriteAllText(Path.Combine(_secrets.FullName, "Api__Keys__Operator"), "two words");
        var configuration = Configuration(new()
        {
            [AppBuilder.SecretsDirectorySetting] = _secrets.FullName,
            ["Nats:Password"] = "from-the-environment",
            ["Nats:User"] = "api",
        });

        configuration.AddSecretFiles();

        configuration["Nats:Password"].ShouldBe("from-the-file");
        configuration["Api:Keys:Operator"].ShouldBe("two words");
        configuration["Nats:User"].ShouldBe("api");
    }

    [Fact]
    public void Systemd_credentials_directory_is_read_when_no_secrets_directory_is_named()
    {
        File.WriteAllText(Path.Combine(_secrets.FullName, "ConnectionStrings__Postgres"), "Host=db-1,db-2;Target Session Attributes=primary");
        var configuration = Configuration(new() { [AppBuilder.SystemdCredentialsSetting] = _secrets.FullName });

        configuration.AddSecretFiles();

        configuration.GetConnectionString("Postgres").ShouldBe("Host=db-1,db-2;Target Session Attributes=primary");
    }

    [Fact]
    public void Without_a_directory_nothing_is_added()
    {
        var configuration = Configuration(new() { ["Nats:Password"] = "from-the-environment" });

        configuration.AddSecretFiles();

        configuration["Nats:Password"].ShouldBe("from-the-environment");
    }

    [Fact]
    public void A_secrets_directory_that_does_not_exist_stops_the_start_naming_the_setting()
    {
        var configuration = Configuration(new() { [AppBuilder.SecretsDirectorySetting] = Path.Combine(_secrets.FullName, "missing") });

        Should.Throw<InvalidOperationException>(() => configuration.AddSecretFiles())
            .Message.ShouldContain(AppBuilder.SecretsDirectorySetting);
    }

    private static ConfigurationManager Configuration(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection(settings);
        return configuration;
    }
}
