using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>The tests' nats-server starter: a taken port fails fast and says so, and a cluster start tries fresh ports.</summary>
public sealed class NatsServerProcessTests
{
    [Fact]
    public async Task A_server_whose_port_is_taken_fails_at_once_with_what_it_logged()
    {
        await using var server = new NatsServerProcess();
        using var squatter = new TcpListener(IPAddress.Loopback, server.Port);
        squatter.Start();

        var clock = Stopwatch.StartNew();
        var failure = await Should.ThrowAsync<NatsServerStartException>(server.StartProcessAsync());
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10), "an exited server is not waited for");
        failure.PortTaken.ShouldBeTrue();
        failure.Message.ShouldContain("address already in use");
    }

    [Fact]
    public async Task A_start_that_found_its_port_taken_is_tried_again_and_other_failures_are_not()
    {
        var tries = 0;
        (await NatsServerProcess.WithFreshPortsAsync(() => ++tries == 1
            ? throw new NatsServerStartException("taken", "bind: address already in use")
            : Task.FromResult(tries))).ShouldBe(2);

        tries = 0;
        await Should.ThrowAsync<NatsServerStartException>(NatsServerProcess.WithFreshPortsAsync<int>(() =>
        {
            tries++;
            throw new NatsServerStartException("no JetStream", "some other fatal error");
        }));
        tries.ShouldBe(1);
    }
}
