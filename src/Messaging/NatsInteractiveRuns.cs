using System.Diagnostics;
using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Jobs.Submitting;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace CqrsInference.Messaging;

/// <summary>
/// The interactive path on core NATS request/reply: the job goes to <c>cqrsi.infer.&lt;region&gt;.&lt;model&gt;</c>,
/// served by a queue group of the region's processors; first the job's own region, then the other
/// regions in their configured order (the seeds' geo-affinity with overflow; a super-cluster's
/// gateways carry the request). A region with no processor of the model answers "no responders" at
/// once, a busy processor answers 503 at once (the region is asked again, up to
/// <see cref="AsksPerRegion"/> times: the queue group may pick another of its processors), and one
/// that does not answer within <see cref="SubmitOptions.InteractiveAnswerWithin"/> is passed over.
/// </summary>
public sealed partial class NatsInteractiveRuns(INatsConnection nats, SubmitOptions options, TimeProvider clock, ILogger<NatsInteractiveRuns> logger) : IInteractiveRuns
{
    /// <summary>The header a processor's answer names the region it ran the job in with.</summary>
    public const string RanInHeader = "Cqrsi-Ran-In";

    /// <summary>The header of a processor's answer that says another run of the job claimed it first (the request was a retry).</summary>
    public const string TakenHeader = "Cqrsi-Taken";

    /// <summary>How many times a region whose processors answer "busy" is asked before the next region.</summary>
    public const int AsksPerRegion = 3;

    /// <summary>The subject a region's processors of a model serve interactive jobs on (also their queue group).</summary>
    public static string Subject(string region, string model) => $"cqrsi.infer.{region}.{model}";

    public async Task<InteractiveOutcome?> RunAsync(JobCommand job, TimeSpan within, CancellationToken ct)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(job, WireJson.Default.JobCommand);
        var until = clock.GetTimestamp() + (long)(within.TotalSeconds * clock.TimestampFrequency);
        var passed = new HashSet<string>();
        foreach (var region in RegionsFor(job).SelectMany(r => Enumerable.Repeat(r, AsksPerRegion)).Where(r => !passed.Contains(r)))
        {
            var left = TimeSpan.FromSeconds((until - clock.GetTimestamp()) / (double)clock.TimestampFrequency);
            if (left <= TimeSpan.Zero)
            {
                break;
            }

            switch (await AskAsync(region, job, payload, left < options.InteractiveAnswerWithin ? left : options.InteractiveAnswerWithin, ct))
            {
                case Answer.Ran ran:
                    return new InteractiveOutcome.Served(ran.Region);
                case Answer.Taken:
                    return new InteractiveOutcome.Taken();
                case Answer.QueueIt:
                    return null;
                case Answer.NotHere:
                    passed.Add(region);
                    break;
            }
        }

        return null;
    }

    /// <summary>The job's own region first, then every other region served here.</summary>
    private IEnumerable<string> RegionsFor(JobCommand job) => options.ServedRegions.Where(r => r != job.Region).Prepend(job.Region);

    /// <summary>What a region's processors said: ran it, busy (ask again), not here (next region), or queue it.</summary>
    private async Task<Answer> AskAsync(string region, JobCommand job, byte[] payload, TimeSpan budget, CancellationToken ct)
    {
        var headers = new NatsHeaders();
        TraceHeaders.Inject(Activity.Current, headers);
        try
        {
            var answer = await nats.RequestAsync<byte[], byte[]>(
                Subject(region, job.Model), payload, headers, replyOpts: new NatsSubOpts { Timeout = budget }, cancellationToken: ct);
            if (answer.Headers is { } answered && answered.TryGetValue(RanInHeader, out var ranIn))
            {
                return new Answer.Ran(ranIn.ToString());
            }

            if (answer.Headers?.ContainsKey(TakenHeader) == true)
            {
                return new Answer.Taken();
            }

            var code = answer.Headers?.TryGetValue("Nats-Service-Error-Code", out var c) == true ? c.ToString() : "";
            LogPassedOver(logger, job.JobId, region, answer.Headers?.TryGetValue("Nats-Service-Error", out var error) == true ? $"{code} {error}" : "no answer");
            return code == BusyCode.ToString(System.Globalization.CultureInfo.InvariantCulture) ? new Answer.Busy() : new Answer.QueueIt();
        }
        catch (NatsNoRespondersException)
        {
            LogPassedOver(logger, job.JobId, region, "no processor of the model there");
            return new Answer.NotHere();
        }
        catch (NatsNoReplyException)
        {
            LogPassedOver(logger, job.JobId, region, $"no answer within {budget.TotalMilliseconds:0} ms");
            return new Answer.NotHere();
        }
    }

    /// <summary>The service error code of a processor with no free place: the caller asks again or elsewhere.</summary>
    public const int BusyCode = 503;

    private abstract record Answer
    {
        public sealed record Ran(string Region) : Answer;

        public sealed record Busy : Answer;

        public sealed record Taken : Answer;

        public sealed record NotHere : Answer;

        public sealed record QueueIt : Answer;
    }

    [LoggerMessage(LogLevel.Debug, "Interactive job {JobId} not served in {Region}: {Reason}")]
    private static partial void LogPassedOver(ILogger logger, Guid jobId, string region, string reason);
}
