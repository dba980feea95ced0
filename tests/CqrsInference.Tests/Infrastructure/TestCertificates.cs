using System.Diagnostics;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>
/// A certificate authority of the test's own and what it signs, made with <c>openssl</c> in a
/// temporary directory (EC P-256, valid two days): a server certificate for 127.0.0.1 and a client
/// certificate, as PEM files.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private TestCertificates(string directory) => Directory = directory;

    public string Directory { get; }

    public string CaFile => Path.Combine(Directory, "ca.pem");

    public string ServerCertFile => Path.Combine(Directory, "server.pem");

    public string ServerKeyFile => Path.Combine(Directory, "server-key.pem");

    public string ClientCertFile => Path.Combine(Directory, "client.pem");

    public string ClientKeyFile => Path.Combine(Directory, "client-key.pem");

    public static async Task<TestCertificates> CreateAsync()
    {
        var certificates = new TestCertificates(System.IO.Directory.CreateTempSubdirectory("cqrsi-tls-").FullName);
        const string script = """
            set -euo pipefail
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
            key ca-key.pem
            openssl req -x509 -new -key ca-key.pem -out ca.pem -days 2 -subj "/CN=cqrsi test CA"
            sign() { # name, subject, extensions
              key "$1-key.pem"
              openssl req -new -key "$1-key.pem" -out "$1.csr" -subj "$2"
              printf '%s\n' "$3" > "$1.ext"
              openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
            }
            sign server "/CN=127.0.0.1" "subjectAltName=IP:127.0.0.1,DNS:localhost
            extendedKeyUsage=serverAuth"
            sign client "/CN=cqrsi test client" "extendedKeyUsage=clientAuth"
            """;
        var info = new ProcessStartInfo("bash", ["-c", script])
        {
            WorkingDirectory = certificates.Directory,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var openssl = Process.Start(info) ?? throw new InvalidOperationException("bash did not start");
        var errors = await openssl.StandardError.ReadToEndAsync();
        await openssl.WaitForExitAsync();
        if (openssl.ExitCode != 0)
        {
            certificates.Dispose();
            throw new InvalidOperationException($"openssl failed ({openssl.ExitCode}): {errors}");
        }

        return certificates;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
