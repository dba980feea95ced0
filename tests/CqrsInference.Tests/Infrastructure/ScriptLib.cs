using System.Diagnostics;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>The functions of scripts/lib.sh, called as the scripts call them: what a test's servers are configured with comes from the same place as ./edge.sh's and the docs'.</summary>
public static class ScriptLib
{
    /// <summary>The standard output of <paramref name="call"/> (a lib.sh function and its arguments), which must succeed.</summary>
    public static async Task<string> RunAsync(string call)
    {
        var info = new ProcessStartInfo("bash", ["-c", $"source scripts/lib.sh && {call}"])
        {
            WorkingDirectory = TestEnvironment.RepositoryRoot,
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.ShouldBe(0, call);
        return output;
    }
}
