namespace CqrsInference.Api.Hosting;

/// <summary>
/// Where every entry of the program (the host, <c>migrate</c>, <c>replay</c>, <c>verify</c>) reads its
/// settings from: appsettings.json and appsettings.{environment}.json (a host started without
/// <c>ASPNETCORE_ENVIRONMENT</c> is Production: appsettings.Production.json), environment variables,
/// the command line, then secrets from files, which win over all of these.
/// </summary>
internal static class AppBuilder
{
    /// <summary>A directory with one file per secret setting, named like its environment variable (<c>ConnectionStrings__Postgres</c>).</summary>
    public const string SecretsDirectorySetting = "CQRSI_SECRETS_DIR";

    /// <summary>Where systemd puts the credentials of a unit's <c>LoadCredential=</c>; read when <see cref="SecretsDirectorySetting"/> is unset.</summary>
    public const string SystemdCredentialsSetting = "CREDENTIALS_DIRECTORY";

    public static WebApplicationBuilder Create(string[] args)
    {
        // appsettings.json ships beside the program; use it when started from elsewhere (./run.sh runs the
        // program from the repository root).
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = File.Exists(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json")) ? null : AppContext.BaseDirectory,
        });
        builder.Configuration.AddSecretFiles();
        return builder;
    }

    /// <summary>
    /// Secrets from files (Microsoft.Extensions.Configuration.KeyPerFile, part of ASP.NET Core): each
    /// file in the directory <see cref="SecretsDirectorySetting"/> names (or systemd's credentials
    /// directory) is one setting, its name the key with <c>__</c> for <c>:</c>, its content the value
    /// (a final newline dropped), so that secrets need not be in the environment, where every child
    /// process and <c>/proc/&lt;pid&gt;/environ</c> sees them. Added last: a file wins over the
    /// environment and appsettings.
    /// </summary>
    public static ConfigurationManager AddSecretFiles(this ConfigurationManager configuration)
    {
        var directory = configuration[SecretsDirectorySetting] is { Length: > 0 } named ? named : configuration[SystemdCredentialsSetting];
        if (string.IsNullOrEmpty(directory))
        {
            return configuration;
        }

        if (!Directory.Exists(directory))
        {
            throw new SecretsDirectoryException($"{SecretsDirectorySetting} names '{directory}', which is not a directory this process can see.");
        }

        configuration.AddKeyPerFile(Path.GetFullPath(directory), optional: false);
        return configuration;
    }
}

/// <summary>The secrets directory named is not one this process can see: the start is refused (<see cref="HostExit.Misconfigured"/>).</summary>
internal sealed class SecretsDirectoryException(string message) : InvalidOperationException(message);
