using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker.Gating;

namespace CqrsInference.Processors.Worker.Running;

/// <summary>One served version of a worker's model: its manifest entry, its jobs per run, and the executor that runs it.</summary>
internal sealed record VersionExecutor(ModelDefinition Model, int MaxBatch, BatchExecutor Executor);

/// <summary>A run of one version: the jobs, at most its <c>maxBatch</c>, all of that version.</summary>
internal sealed record VersionRun(BatchExecutor Executor, IReadOnlyList<AdmittedJob> Jobs);

/// <summary>What a batch becomes: a run per version served here, and the jobs of versions that are not.</summary>
internal sealed record VersionSplitResult(IReadOnlyList<VersionRun> Runs, IReadOnlyList<(AdmittedJob Job, RunOutcome Outcome)> NotServed);

/// <summary>
/// The executors of a worker's versions, and the rule that sends each job of a batch to one: the
/// version its message names (empty, in jobs queued before versions: the model's default). A batch
/// collected from the model's queue may mix versions; it is split into one run per version (each
/// at most that version's <c>maxBatch</c>), so a run, its time and its batch size are one
/// version's. A job of a version not served here is handed back (an attempt failed, with
/// <see cref="JobErrorCodes.ModelVersionNotServed"/>, retried later like any fault so that a
/// processor that serves the version takes it; the delivery limit fails it for good), or, when
/// the manifest lists the version as absent or retired, fails at once.
/// </summary>
internal sealed class VersionExecutors(IReadOnlyList<VersionExecutor> versions, ModelCatalog catalog, string worker)
{
    private readonly Dictionary<string, VersionExecutor> _byVersion = versions.ToDictionary(v => v.Model.Version, StringComparer.Ordinal);

    public IReadOnlyList<VersionExecutor> All => versions;

    /// <summary>Time spent inside model runs, summed over versions and slots.</summary>
    public TimeSpan BusyTime => versions.Aggregate(TimeSpan.Zero, (sum, v) => sum + v.Executor.BusyTime);

    /// <summary>The longest of the versions' active times (they share the worker's slots).</summary>
    public TimeSpan ActiveTime => versions.Max(v => v.Executor.ActiveTime);

    public string Device => versions[0].Executor.Device;

    /// <summary>The version a job runs on: the one it names, else the model's default.</summary>
    public string VersionOf(JobCommand job) =>
        string.IsNullOrEmpty(job.ModelVersion) && catalog.TryGet(job.Model, out var fallback) ? fallback.Version : job.ModelVersion;

    public VersionSplitResult Split(IReadOnlyList<AdmittedJob> jobs)
    {
        var runs = new List<VersionRun>();
        var notServed = new List<(AdmittedJob, RunOutcome)>();
        foreach (var group in jobs.GroupBy(j => VersionOf(j.Job), StringComparer.Ordinal))
        {
            if (!_byVersion.TryGetValue(group.Key, out var served))
            {
                notServed.AddRange(group.Select(j => (j, NotServed(j.Job, group.Key))));
                continue;
            }

            // The version that runs is on the job from here on: its events' context names it.
            var resolved = group.Select(j => j.Job.ModelVersion == group.Key ? j : j with { Job = j.Job with { ModelVersion = group.Key } });
            runs.AddRange(resolved.Chunk(served.MaxBatch).Select(chunk => new VersionRun(served.Executor, chunk)));
        }

        return new VersionSplitResult(runs, notServed);
    }

    private RunOutcome NotServed(JobCommand job, string version)
    {
        var here = string.Join(", ", _byVersion.Keys);
        return catalog.Resolve(job.Model, version, job.JobId) switch
        {
            VersionResolution.Resolved => new RunOutcome.Faulted(JobErrorCodes.ModelVersionNotServed,
                $"Version '{version}' of model '{job.Model}' is not served by processor {worker} (it serves {here}); handed back for a processor that serves it."),
            VersionResolution.VersionNotServed refusal => new RunOutcome.Rejected(JobErrorCodes.ModelVersionNotServed, refusal.Detail),
            _ => new RunOutcome.Rejected(JobErrorCodes.ModelVersionNotServed, $"Model '{job.Model}' is not in this processor's manifest."),
        };
    }
}
