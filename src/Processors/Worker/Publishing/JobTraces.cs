using System.Diagnostics;
using CqrsInference.Commands;
using CqrsInference.Processors.Worker.Gating;

namespace CqrsInference.Processors.Worker.Publishing;

/// <summary>One <c>job.run</c> span per job of a batch, each continuing the trace the API started.</summary>
internal sealed class JobTraces : IDisposable
{
    private readonly Dictionary<Guid, Activity?> _spans;

    public JobTraces(IReadOnlyList<AdmittedJob> jobs)
    {
        _spans = jobs.ToDictionary(j => j.Job.JobId, j =>
        {
            var span = Telemetry.Source.StartActivity("job.run", ActivityKind.Consumer, j.Delivery.Trace);
            span?.SetTag(Telemetry.JobIdTag, j.Job.JobId.ToString());
            span?.SetTag("cqrsi.attempt", j.Attempt);
            return span;
        });
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
