using CqrsInference.Projections;
using CqrsInference.Projections.Audit;
using Marten;
using Npgsql;

namespace CqrsInference.Api.Hosting;

/// <summary>
/// Command-line verbs of the same program, for auditors and operators:
/// <c>replay [projection]</c> rebuilds a projection into fresh tables and compares it with the live
/// read model; <c>verify</c> recomputes the hash chains. Exit code 0: identical / intact; 1: not;
/// 2: another replay (or verify) of the same schema is running.
/// </summary>
internal static class AuditCommands
{
    public static bool Handles(string[] args) => args is ["replay" or "verify", ..];

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            return await RunVerbAsync(args);
        }
        catch (AuditRunBusyException busy)
        {
            await Console.Error.WriteLineAsync(busy.Message);
            return 2;
        }
    }

    private static async Task<int> RunVerbAsync(string[] args)
    {
        var configuration = AppBuilder.Create(args[1..].Where(a => a.StartsWith("--", StringComparison.Ordinal)).ToArray()).Configuration;
        var connectionString = Projections.DeadClientCheck.AddTo(configuration.GetConnectionString("Postgres")
            ?? throw new InvalidOperationException("ConnectionStrings:Postgres is not set."));
        var options = new AuditOptions { ConnectionString = connectionString, Schema = configuration["Cqrsi:Schema"] ?? "cqrsi" };
        await using var db = NpgsqlDataSource.Create(connectionString);
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        if (args[0] == "verify")
        {
            Console.WriteLine($"Verifying the audit chains of schema '{options.Schema}'…");
            var report = await new AuditVerifier(db, options).VerifyAsync(cancel.Token);
            Console.WriteLine($"seals checked: {report.SealsChecked}; events not yet sealed: {report.UnsealedEvents}; chain head: {report.ChainHead}");
            Console.WriteLine(report.Intact
                ? "INTACT: every sealed event matches its seal and the chains link up."
                : $"BROKEN at seal {report.FirstBroken!.SealIndex}: {report.FirstBroken.Problem}");
            return report.Intact ? 0 : 1;
        }

        var projection = args.Skip(1).FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "job-status";
        using var store = DocumentStore.For(o => o.Configure(db, options.Schema));
        Console.WriteLine($"Replaying '{projection}' from the event log of schema '{options.Schema}' into '{options.Schema}_replay'…");
        var progress = new Progress<long>(n => Console.Write($"\r  {n:N0} events read"));
        var result = await new ProjectionReplay(store, db, options).RunAsync(projection, progress, cancel.Token);
        Console.WriteLine();
        Console.WriteLine($"{result.Events:N0} events → {result.Documents:N0} documents in {result.Seconds:F2} s ({result.EventsPerSecond:N0} events/s)");
        foreach (var difference in result.Differences)
        {
            Console.WriteLine($"  {difference.Id}: {difference.Problem}");
        }

        Console.WriteLine(result.Identical
            ? "IDENTICAL: the rebuilt read model equals the live one."
            : $"DIFFERENT: {result.DifferenceCount} documents differ (first {result.Differences.Count} above, {result.UnlistedDifferences} more not listed).");
        return result.Identical ? 0 : 1;
    }
}
