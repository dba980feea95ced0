using System.CommandLine;
using System.Text.Json;
using CqrsInference.Cli.Output;
using Spectre.Console;

namespace CqrsInference.Cli.Commands;

/// <summary>
/// <c>cqrsi keys list|create|revoke</c>: a tenant admin's API keys (<c>/v1/admin/keys</c>); the
/// platform operator's key reaches every tenant with <c>--tenant</c>. A new key's secret is shown
/// once, in the answer to <c>create</c>.
/// </summary>
internal static class KeysCommand
{
    private static readonly (string Field, string Header)[] Columns =
        [("id", "id"), ("tenant", "tenant"), ("name", "name"), ("roles", "roles"), ("createdAt", "created"), ("revokedAt", "revoked")];

    public static Command Create(Cqrsi cqrsi) => new("keys", "API keys of a tenant (a tenant admin's, or any tenant's for the platform operator)")
    {
        List(cqrsi), New(cqrsi), Revoke(cqrsi),
    };

    private static Command List(Cqrsi cqrsi)
    {
        var tenant = new Option<string?>("--tenant") { Description = "The tenant (the operator's choice; a tenant admin sees its own)" };
        var list = new Command("list", "The tenant's keys, without their secrets") { tenant };
        return cqrsi.Handle(list, async (context, ct) =>
        {
            var query = context.Parse.GetValue(tenant) is { } t ? $"?tenant={Uri.EscapeDataString(t)}" : "";
            var keys = await context.Api.GetAsync($"/v1/admin/keys{query}", ct);
            context.Output.Write(keys, body => Views.Table(Views.Rows(body), Columns));
            return ExitCodes.Ok;
        });
    }

    private static Command New(Cqrsi cqrsi)
    {
        var roles = new Option<string[]>("--roles")
        {
            Description = "Roles, comma-separated or repeated: submit, read, analyst, auditor, admin (operator: the operator's only)",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
            CustomParser = result => result.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray(),
        };
        var name = new Option<string?>("--name") { Description = "What the key is for" };
        var tenant = new Option<string?>("--tenant") { Description = "The tenant (another than the caller's: the operator only)" };
        var create = new Command("create", "Create a key; its secret is shown only in this answer") { roles, name, tenant };
        return cqrsi.Handle(create, async (context, ct) =>
        {
            var request = new { tenant = context.Parse.GetValue(tenant), name = context.Parse.GetValue(name), roles = context.Value(roles) };
            var key = await context.Api.SendAsync(HttpMethod.Post, "/v1/admin/keys", request, ct);
            context.Output.Write(key, Created);
            return ExitCodes.Ok;
        });
    }

    private static Command Revoke(Cqrsi cqrsi)
    {
        var id = new Argument<string>("id") { Description = "The key's id (as keys list shows it)" };
        var revoke = new Command("revoke", "Revoke a key: it stops working at once") { id };
        return cqrsi.Handle(revoke, async (context, ct) =>
        {
            await context.Api.SendAsync(HttpMethod.Delete, $"/v1/admin/keys/{Uri.EscapeDataString(context.Value(id))}", null, ct);
            var revoked = JsonSerializer.SerializeToElement(new { id = context.Value(id), revoked = true });
            context.Output.Write(revoked, _ => new Markup($"Key {Markup.Escape(context.Value(id))} revoked.\n"));
            return ExitCodes.Ok;
        });
    }

    private static Table Created(JsonElement key) => Views.Table([key], [.. Columns, ("key", "key (shown once)")]);
}
