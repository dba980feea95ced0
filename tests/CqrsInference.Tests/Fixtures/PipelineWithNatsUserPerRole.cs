using System.Net;
using System.Text;
using CqrsInference.Messaging;
using CqrsInference.Tests.Infrastructure;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Net;

namespace CqrsInference.Tests.Fixtures;

public sealed class PipelineWithNatsUserPerRole : IAsyncLifetime
{
    public NatsServerProcess Nats { get; private set; } = null!;

    public PipelineHost Api { get; private set; } = null!;

    public PipelineHost Projections { get; private set; } = null!;

    public ProcessorProcess Processor { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Nats = await NatsServerProcess.StartWithUsersAsync();
        try
        {
            var schema = TestEnvironment.NewSchema();
            Api = new PipelineHost(Nats.Url, schema, "api", User("api"));
            Client = Api.CreateClient();
            Projections = new PipelineHost(Nats.Url, schema, "projections", User("projections"));
            _ = Projections.Server;
            Processor = await ProcessorProcess.StartAsync(Nats.Url, "proc-restricted", new Dictionary<string, string>
            {
                ["Nats:User"] = "processor",
                ["Nats:Password"] = NatsServerProcess.PasswordOf("processor"),
                ["Processor:Models:0"] = "mlp-test",
            });
        }
        catch
        {
            // xunit does not dispose a fixture whose start failed: stop the server it started.
            await Nats.DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        await Processor.DisposeAsync();
        Client.Dispose();
        await Projections.DisposeAsync();
        await Api.DisposeAsync();
        await Nats.DisposeAsync();
    }

    public async Task<NatsClient> ConnectAsAsync(string user)
    {
        var client = new NatsClient(new NatsOpts
        {
            Url = Nats.Url,
            AuthOpts = NatsAuthOpts.Default with { Username = user, Password = NatsServerProcess.PasswordOf(user) },
            RequestTimeout = TimeSpan.FromSeconds(2),
        });
        await client.ConnectAsync();
        return client;
    }

    private static Dictionary<string, string?> User(string user) => new()
    {
        ["Nats:User"] = user,
        ["Nats:Password"] = NatsServerProcess.PasswordOf(user),
    };
}
