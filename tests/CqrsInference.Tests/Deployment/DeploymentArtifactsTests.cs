using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Deployment;

/// <summary>The deployment files are checked by the tools that read them: systemd, bash, MSBuild's container targets.</summary>
public sealed class DeploymentArtifactsTests
{
    /// <summary>Where docs/DEPLOY.md installs the published program, as the units name it.</summary>
    private const string InstalledProgram = "/opt/cqrsi/CqrsInference.Api";

    private static readonly string[] Roles = ["api", "processor", "projections", "edge"];

    [Fact]
    public async Task Every_systemd_unit_passes_systemd_analyze_verify_without_a_warning()
    {
        // systemd-analyze verify checks that ExecStart's program exists and is executable, so each
        // unit's /opt/cqrsi/CqrsInference.Api is replaced by the same program as built for this run
        // (its apphost); nothing else changes. verify exits 0 even on an unknown key or a value it
        // cannot parse ("…, ignoring"), so any output at all fails the test too. The template is
        // verified as each instance (instance = role).
        var program = Path.Combine(AppContext.BaseDirectory, "CqrsInference.Api");
        File.Exists(program).ShouldBeTrue(program);
        var units = Directory.GetFiles(Path.Combine(TestEnvironment.RepositoryRoot, "deploy", "systemd"), "*.service");
        units.Select(Path.GetFileName).ShouldBe(["cqrsi-migrate.service", "cqrsi@.service"], ignoreOrder: true);
        var directory = Directory.CreateTempSubdirectory("cqrsi-units-");
        try
        {
            var files = new List<string>();
            foreach (var unit in units)
            {
                var text = await File.ReadAllTextAsync(unit);
                text.ShouldContain($"ExecStart={InstalledProgram}");
                var name = Path.GetFileName(unit);
                foreach (var instance in name.Contains("@.", StringComparison.Ordinal) ? Roles.Select(r => name.Replace("@.", $"@{r}.", StringComparison.Ordinal)) : [name])
                {
                    files.Add(Path.Combine(directory.FullName, instance));
                    await File.WriteAllTextAsync(files[^1], text.Replace(InstalledProgram, program, StringComparison.Ordinal));
                }
            }

            var (code, output) = await RunAsync("systemd-analyze", ["verify", "--man=no", .. files]);

            code.ShouldBe(0, output);
            output.ShouldBeEmpty();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Under_systemd_the_program_reports_ready_on_the_notify_socket()
    {
        // Microsoft.Extensions.Hosting.Systemd notifies only a child of systemd (it reads its parent's
        // /proc/<pid>/comm): the parent here is bash under the name systemd, and the socket is ours.
        await using var nats = await NatsServerProcess.StartAsync();
        var directory = Directory.CreateTempSubdirectory("cqrsi-notify-");
        var socketPath = Path.Combine(directory.FullName, "notify");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        File.Copy("/bin/bash", Path.Combine(directory.FullName, "systemd"));
        var info = new ProcessStartInfo(Path.Combine(directory.FullName, "systemd"), ["-c", $"dotnet '{Path.Combine(AppContext.BaseDirectory, "CqrsInference.Api.dll")}'; true"])
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["NOTIFY_SOCKET"] = socketPath;
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        // The API role: it creates the streams the other roles wait for, so it is ready on its own.
        info.Environment["Cqrsi__Roles"] = "api";
        info.Environment["Nats__Url"] = nats.Url;
        info.Environment["ConnectionStrings__Postgres"] = TestEnvironment.Postgres;
        info.Environment["Cqrsi__Schema"] = TestEnvironment.NewSchema();
        info.Environment["Models__Directory"] = TestEnvironment.ModelsDirectory;
        info.Environment["Models__Manifest"] = TestEnvironment.Manifest;
        info.Environment["Urls"] = "http://127.0.0.1:0";
        using var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var buffer = new byte[256];
            var received = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);

            Encoding.UTF8.GetString(buffer, 0, received).ShouldContain("READY=1");
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task The_container_settings_compute_a_chiseled_aspnet_image_serving_port_8080_in_production()
    {
        // What `dotnet publish -t:PublishContainer` computes before it fetches the base image (which
        // needs a container registry this machine cannot reach: docs/DEPLOY.md).
        var (code, output) = await RunAsync("dotnet", [
            "msbuild", Path.Combine(TestEnvironment.RepositoryRoot, "src", "Api", "Api.csproj"), "-nologo", "-nodeReuse:false",
            "-t:ComputeContainerConfig", "-getProperty:ContainerBaseImage", "-getProperty:ContainerRepository", "-getProperty:ContainerArchiveOutputPath",
            "-getItem:ContainerImageTags", "-getItem:ContainerPort", "-getItem:ContainerEnvironmentVariables"]);
        code.ShouldBe(0, output);

        using var config = JsonDocument.Parse(output);
        var properties = config.RootElement.GetProperty("Properties");
        var items = config.RootElement.GetProperty("Items");
        properties.GetProperty("ContainerBaseImage").GetString().ShouldBe("mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled");
        properties.GetProperty("ContainerRepository").GetString().ShouldBe("cqrsinference");
        properties.GetProperty("ContainerArchiveOutputPath").GetString().ShouldEndWith("cqrsinference-image.tar.gz");
        Identities(items, "ContainerImageTags").ShouldBe(["latest"]);
        Identities(items, "ContainerPort").ShouldBe(["8080"]);
        items.GetProperty("ContainerEnvironmentVariables").EnumerateArray()
            .ShouldContain(v => v.GetProperty("Identity").GetString() == "ASPNETCORE_ENVIRONMENT" && v.GetProperty("Value").GetString() == "Production");
    }

    [Fact]
    public async Task Every_script_parses()
    {
        var root = TestEnvironment.RepositoryRoot;
        var scripts = Directory.GetFiles(root, "*.sh").Concat(Directory.GetFiles(Path.Combine(root, "scripts"), "*.sh")).ToList();
        scripts.ShouldContain(s => s.EndsWith("cluster.sh", StringComparison.Ordinal));
        foreach (var script in scripts)
        {
            var (code, output) = await RunAsync("bash", ["-n", script]);
            code.ShouldBe(0, $"{script}: {output}");
        }
    }

    private static List<string?> Identities(JsonElement items, string name) =>
        items.GetProperty(name).EnumerateArray().Select(i => i.GetProperty("Identity").GetString()).ToList();

    private static async Task<(int Code, string Output)> RunAsync(string program, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(program, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = TestEnvironment.RepositoryRoot,
        };
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, (await output + await errors).Trim());
    }
}
