using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CqrsInference.Bench;

/// <summary>
/// The baseline: the same models behind a plain HTTP endpoint that runs them inline, one request
/// one ONNX call, with no queue, no events and no event store. Same runners, same session options
/// as the processors, so the difference is the pipeline.
/// </summary>
internal sealed class InlineBaseline : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Dictionary<string, IModelRunner> _runners;

    private InlineBaseline(WebApplication app, Dictionary<string, IModelRunner> runners) => (_app, _runners) = (app, runners);

    public string Url { get; private init; } = "";

    public static async Task<InlineBaseline> StartAsync(BenchSettings settings, int port, params string[] models)
    {
        var catalog = ModelCatalog.Load(settings.Manifest, settings.ModelsDirectory);
        var factory = new RunnerFactory(catalog, new SessionFactory(new RuntimeOptions { ExecutionProvider = "cpu" }, NullLogger<SessionFactory>.Instance));
        var runners = models.ToDictionary(m => m, m =>
        {
            catalog.TryGet(m, out var model);
            // Concurrent callers, one thread each: the baseline's best use of the cores for many small calls.
            var runner = factory.Create(model, slots: Environment.ProcessorCount);
            runner.WarmUp();
            return runner;
        });
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var baseline = new InlineBaseline(app, runners) { Url = $"http://127.0.0.1:{port}" };
        app.MapPost("/infer", baseline.InferAsync);
        await app.StartAsync();
        return baseline;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        foreach (var runner in _runners.Values)
        {
            runner.Dispose();
        }
    }

    private async Task<IResult> InferAsync(HttpRequest request)
    {
        using var document = await JsonDocument.ParseAsync(request.Body);
        var root = document.RootElement;
        var model = root.GetProperty("model").GetString()!;
        var inputs = root.GetProperty("inputs").EnumerateArray()
            .Select(t => new Tensor(t.GetProperty("name").GetString()!, t.GetProperty("datatype").GetString()!,
                t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(), t.GetProperty("data").Clone()))
            .ToList();
        var job = new JobCommand(Guid.NewGuid(), "bench", model, "1", "local", "interactive", DateTimeOffset.UtcNow, "", inputs, null);
        var runner = _runners[model];
        // An ONNX session runs concurrent calls safely: Kestrel's threads call it directly.
        var outcome = runner.Run([job], CancellationToken.None)[0];

        return outcome is RunOutcome.Succeeded s ? Results.Ok(new { outputs = s.Outputs }) : Results.UnprocessableEntity(outcome.ToString());
    }
}
