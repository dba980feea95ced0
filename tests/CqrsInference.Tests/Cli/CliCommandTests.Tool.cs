using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using CqrsInference.Cli;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Cli;

/// <summary>The CLI as users install it: a dotnet tool, packed from the source and installed from a local feed.</summary>
public sealed partial class CliCommandTests
{
    [Fact]
    public async Task The_cli_packs_as_a_dotnet_tool_that_installs_from_a_local_feed_and_runs()
    {
        var root = Directory.CreateTempSubdirectory("cqrsi-tool-").FullName;
        try
        {
            // A version of its own, so that no package cached by an earlier run can stand in for this one.
            var version = $"1.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmssfff}";
            var (feed, tools) = (Path.Combine(root, "feed"), Path.Combine(root, "tools"));
            var configuration = typeof(CliCommandTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;
            await DotnetAsync(TestEnvironment.RepositoryRoot, "pack", "src/Cli/Cli.csproj", "-c", configuration, "--no-build", "-o", feed, $"-p:PackageVersion={version}");

            // Only the local feed: the install needs no registry.
            var config = Path.Combine(root, "nuget.config");
            await File.WriteAllTextAsync(config, """<configuration><packageSources><clear /></packageSources></configuration>""");
            await DotnetAsync(root, "tool", "install", "CqrsInference.Cli", "--version", version, "--tool-path", tools, "--add-source", feed, "--configfile", config);

            var info = new ProcessStartInfo(Path.Combine(tools, "cqrsi")) { Environment = { ["DOTNET_ROOT"] = DotnetRoot() } };
            using var installed = RunningCli.Start(info, pipeline.BaseUrl, ["models", "--output", "json"]);
            var run = await installed.ExitAsync();
            run.Code.ShouldBe(ExitCodes.Ok, run.ToString());
            run.Json().EnumerateArray().Select(m => m.GetProperty("name").GetString()).ShouldContain("mlp-test");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The dotnet installation running the tests (…/shared/Microsoft.NETCore.App/&lt;version&gt;/ is its runtime).</summary>
    private static string DotnetRoot() => Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));

    private static async Task DotnetAsync(string directory, params string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        process.ExitCode.ShouldBe(0, $"dotnet {string.Join(' ', arguments)}:\n{await output}\n{await error}");
    }
}
