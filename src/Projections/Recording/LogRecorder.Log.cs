using Microsoft.Extensions.Logging;

namespace CqrsInference.Projections.Recording;

/// <summary>What the recorder loop logs.</summary>
internal abstract partial class LogRecorder
{
    [LoggerMessage(LogLevel.Information, "Recording {Consumer} after sequence {Sequence}")]
    private static partial void LogStarted(ILogger logger, string consumer, ulong sequence);

    [LoggerMessage(LogLevel.Warning, "Consuming {Consumer} failed: {Reason}")]
    private static partial void LogConsumeError(ILogger logger, string consumer, string reason);

    [LoggerMessage(LogLevel.Error, "Leading {Consumer} failed; trying again in 2 s: {Reason}")]
    private static partial void LogLeadFailed(ILogger logger, string consumer, string reason);

    [LoggerMessage(LogLevel.Warning, "Recording {Consumer} stopped: another recorder took over (this one's term {Term} is past)")]
    private static partial void LogFenced(ILogger logger, string consumer, long term);

    [LoggerMessage(LogLevel.Warning, "Recording {Consumer} paused, restarting from the checkpoint: {Reason}")]
    private static partial void LogRestarting(ILogger logger, string consumer, string reason);

    [LoggerMessage(LogLevel.Error, "{Stream} messages {From} to {To} left the stream (its maximum age) before {Consumer} had seen them: those on {Subjects} among them were never recorded")]
    private static partial void LogExpired(ILogger logger, string stream, ulong from, ulong to, string consumer, string subjects);
}
