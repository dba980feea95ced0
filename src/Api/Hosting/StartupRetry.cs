namespace CqrsInference.Api.Hosting;

/// <summary>
/// Start-up steps against NATS (creating or waiting for streams), retried while the server is not
/// there yet or its JetStream is still electing: 250 ms, doubling to 3 s, at most 60 attempts.
/// </summary>
internal static class StartupRetry
{
    public static async Task RunAsync(Func<Task> step, Action<int, string> failed, CancellationToken ct, Func<Exception, bool>? fatal = null)
    {
        var delay = TimeSpan.FromMilliseconds(250);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await step();
                return;
            }
            catch (Exception e) when (attempt < 60 && e is not OperationCanceledException && fatal?.Invoke(e) != true)
            {
                failed(attempt, e.Message);
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(3).Ticks));
            }
        }
    }
}
