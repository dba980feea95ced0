using System.CommandLine;
using System.Text.Json;
using CqrsInference.Cli.Output;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary><c>cqrsi models</c>: the models the API serves, with their input and output tensors (<c>GET /v1/models</c>).</summary>
internal static class ModelsCommand
{
    public static Command Create(Cqrsi cqrsi)
    {
        var models = new Command("models", "The models served: versions, input and output tensors (-1: a dynamic dimension), batching, timeout");
        return cqrsi.Handle(models, async (context, ct) =>
        {
            var body = await context.Api.GetAsync("/v1/models", ct);
            context.Output.Write(body, Table);
            return ExitCodes.Ok;
        });
    }

    private static Table Table(JsonElement body)
    {
        var table = new Table().AddColumns("model", "versions", "inputs", "outputs", "max batch", "timeout ms", "description");
        foreach (var model in Views.Rows(body))
        {
            table.AddRow(
                Views.Cell(model, "name"),
                Views.Cell(model, "versions"),
                Markup.Escape(Tensors(model, "inputs")),
                Markup.Escape(Tensors(model, "outputs")),
                model.TryGetProperty("batching", out var batching) && batching.ValueKind == JsonValueKind.Object ? Views.Cell(batching, "maxBatch") : "",
                Views.Cell(model, "timeoutMs"),
                Views.Cell(model, "description"));
        }

        return table;
    }

    /// <summary>"x FP32 [-1,4]", one a line.</summary>
    private static string Tensors(JsonElement model, string name) =>
        string.Join("\n", Views.Rows(model.TryGetProperty(name, out var tensors) ? tensors : default)
            .Select(t => $"{Views.Text(t, "name")} {Views.Text(t, "datatype")} {(t.TryGetProperty("shape", out var shape) ? shape.GetRawText() : "")}".TrimEnd()));
}
