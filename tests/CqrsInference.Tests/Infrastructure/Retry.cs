namespace CqrsInference.Tests.Infrastructure;

/// <summary>Waits for a condition, not for a time.</summary>
public static class Retry
{
    public static async Task<T> Until<T>(string reason, Func<Task<T>> probe, Func<T, bool> condition, TimeSpan? timeout = null, TimeSpan? pollEvery = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        var last = default(T);
        while (!cts.IsCancellationRequested)
        {
            last = await probe();
            if (condition(last))
            {
                return last;
            }

            try
            {
                await Task.Delay(pollEvery ?? TimeSpan.FromMilliseconds(50), cts.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        throw new TimeoutException($"Timed out waiting for: {reason} (last seen: {last})");
    }
}
