using System.Diagnostics;
using CqrsInference.Commands;
using CqrsInference.Processors.Worker.Gating;

namespace CqrsInference.Processors.Worker.Publishing;

/// <summary>
/// One <c>job.run</c> span per job of a batch, each continuing the trace the API started. A job can
/// be in a batch twice (a redelivery that overtook its first delivery, an interactive job queued
/// again after its answer was lost): it gets one span.
/// </summary>
internal sealed class JobTraces : IDisposable
{
    private readonly Dictionary<Guid, Activity?> _spans = [];

    public JobTraces(IReadOnlyList<AdmittedJob> jobs)
    {
        foreach (var job in jobs.Where(j => !_spans.ContainsKey(j.Job.JobId)))
        {
            var span = Telemetry.Source.StartActivity("job.run", ActivityKind.Consumer, job.Delivery.Trace);
            span?.SetTag(Telemetry.JobIdTag, job.Job.JobId.ToString());
            span?.SetTag("cqrsi.attempt", job.Attempt);
            _spans[job.Job.JobId] = span;
        }
    }

    /// <summary>The span of a job, or null (no listener, or not one of this batch's jobs).</summary>
    public Activity? Of(Guid jobId) => _spans.GetValueOrDefault(jobId);

    public void Dispose()
    {
        foreach (var span in _spans.Values)
        {
            span?.Dispose();
        }
    }
}
