using NATS.Client.Core;

namespace CqrsInference.Api.Hosting;

/// <summary>
/// How this process reaches NATS, from the <c>Nats</c> section: <c>Url</c> (several servers
/// comma-separated), who it is (<c>User</c>/<c>Password</c>; or <c>CredsFile</c>, a user JWT with its
/// NKey seed as <c>nsc</c> writes it; or <c>NKeyFile</c>, an NKey seed alone), and TLS
/// (<c>Tls:CaFile</c>, the CA that signed the servers' certificates; <c>Tls:CertFile</c> and
/// <c>Tls:KeyFile</c>, a client certificate for servers that verify clients; <c>Tls:Mode</c>).
/// A file that is named but cannot be read stops the start with the setting's name, rather than
/// a TLS or authorization error on the first connection.
/// </summary>
internal static class NatsConnectionSettings
{
    public static NatsOpts Apply(NatsOpts opts, IConfiguration configuration)
    {
        var nats = configuration.GetSection("Nats");
        return opts with
        {
            Url = nats["Url"] ?? "nats://127.0.0.1:4222",
            AuthOpts = Auth(nats),
            TlsOpts = Tls(nats.GetSection("Tls")),
        };
    }

    private static NatsAuthOpts Auth(IConfigurationSection nats)
    {
        var auth = NatsAuthOpts.Default;
        if (nats["User"] is { Length: > 0 } user)
        {
            auth = auth with { Username = user, Password = nats["Password"] };
        }

        if (ReadableFile(nats, "CredsFile") is { } creds)
        {
            auth = auth with { CredsFile = creds };
        }

        if (ReadableFile(nats, "NKeyFile") is { } seed)
        {
            auth = auth with { NKeyFile = seed };
        }

        return auth;
    }

    private static NatsTlsOpts Tls(IConfigurationSection tls)
    {
        var ca = ReadableFile(tls, "CaFile");
        var cert = ReadableFile(tls, "CertFile");
        var key = ReadableFile(tls, "KeyFile");
        if ((cert is null) != (key is null))
        {
            throw new InvalidOperationException($"{tls.Path}:CertFile and {tls.Path}:KeyFile go together: a client certificate needs its private key.");
        }

        // A CA or a client certificate means TLS is meant: require it rather than let a server
        // that offers none talk in plain text (Auto would). Tls:Mode overrides, e.g. Implicit.
        var mode = tls["Mode"] is { Length: > 0 } named
            ? Enum.TryParse<TlsMode>(named, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed)
                ? parsed
                : throw new InvalidOperationException($"{tls.Path}:Mode '{named}' is not one of {string.Join(", ", Enum.GetNames<TlsMode>())}.")
            : ca is null && cert is null ? TlsMode.Auto : TlsMode.Require;
        return NatsTlsOpts.Default with { CaFile = ca, CertFile = cert, KeyFile = key, Mode = mode };
    }

    private static string? ReadableFile(IConfigurationSection section, string key)
    {
        if (section[key] is not { Length: > 0 } path)
        {
            return null;
        }

        try
        {
            using var probe = File.OpenRead(path);
            return Path.GetFullPath(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{section.Path}:{key} names '{path}', which this process cannot read: {e.Message}", e);
        }
    }
}
