using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Hosting;

/// <summary>
/// <c>./run.sh processor</c> and <c>./run.sh projections</c> serve <c>/metrics</c> on a port of
/// the role's own range (scripts/lib.sh <c>cqrsi_metrics_port</c>), the first one free, and print it.
/// </summary>
public sealed class MetricsPortTests
{
    [Fact]
    public async Task Each_role_takes_the_first_free_port_of_its_own_range()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var busy = ((IPEndPoint)taken.LocalEndpoint).Port;

        var (rc, output) = await LibAsync($"CQRSI_PROCESSOR_METRICS_PORT={busy} cqrsi_metrics_port processor");

        rc.ShouldBe(0);
        var port = int.Parse(output, System.Globalization.CultureInfo.InvariantCulture);
        port.ShouldBeGreaterThan(busy);
        port.ShouldBeLessThan(busy + 99);
        using var free = new TcpListener(IPAddress.Loopback, port);
        free.Start(); // it was free
    }

    [Fact]
    public async Task Processors_and_projections_have_ranges_of_their_own_and_the_api_none()
    {
        var (_, processor) = await LibAsync("cqrsi_metrics_port processor");
        var (_, projections) = await LibAsync("cqrsi_metrics_port projections");
        var (api, _) = await LibAsync("cqrsi_metrics_port api");

        int.Parse(processor, System.Globalization.CultureInfo.InvariantCulture).ShouldBeInRange(9101, 9199);
        int.Parse(projections, System.Globalization.CultureInfo.InvariantCulture).ShouldBeInRange(9201, 9299);
        api.ShouldBe(2); // the API serves /metrics on its own HTTP port
    }

    [Fact]
    public async Task Run_sh_listens_there_and_says_where()
    {
        var script = await File.ReadAllTextAsync(Path.Combine(TestEnvironment.RepositoryRoot, "run.sh"));

        script.ShouldContain("metrics_port=$(cqrsi_metrics_port \"$role\")");
        script.ShouldContain("export Urls=\"http://127.0.0.1:$metrics_port\"");
        script.ShouldContain("metrics: http://127.0.0.1:$metrics_port/metrics");
    }

    private static async Task<(int ExitCode, string Output)> LibAsync(string command)
    {
        var info = new ProcessStartInfo("bash", ["-c", $"source scripts/lib.sh && {command}"])
        {
            WorkingDirectory = TestEnvironment.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output.Trim());
    }
}
