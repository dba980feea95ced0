using CqrsInference.Commands.Jobs;
using CqrsInference.Commands.Models;
using CqrsInference.Processors.Runtime;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Running;
using CqrsInference.Tests.Processors.Worker;
using Microsoft.Extensions.Logging.Abstractions;
using WorkerJobs = CqrsInference.Tests.Processors.Worker.Jobs;

namespace CqrsInference.Tests.Versions;

/// <summary>How a processor's worker sends each job of a batch to a version it serves, and what it does with the others; which versions a processor serves.</summary>
public sealed class VersionExecutorsTests
{
    // Versions 1 (default) and 2 serve; 0 is retired.
    private static readonly ModelDefinition V1 = WorkerJobs.Model() with { Default = true, Batching = new BatchingSpec(2, 0) };
    private static readonly ModelDefinition V2 = WorkerJobs.Model() with { Version = "2" };
    private static readonly ModelDefinition V0 = WorkerJobs.Model() with { Version = "0", State = ModelVersionStates.Retired };
    private static readonly ModelCatalog Catalog = new([V1, V2, V0], Path.GetTempPath());

    private static VersionExecutors Serving(params ModelDefinition[] versions) =>
        new([.. versions.Select(v => new VersionExecutor(v, v.MaxBatch, new BatchExecutor(new FakeRunner(), v.Name, TimeSpan.FromMinutes(1), TimeProvider.System, NullLogger.Instance)))], Catalog, "worker-a");

    private static CqrsInference.Processors.Worker.Gating.AdmittedJob Job(string version) => WorkerJobs.Admitted(WorkerJobs.Command() with { ModelVersion = version });

    [Fact]
    public void A_mixed_batch_runs_per_version_within_each_versions_maxBatch_and_an_unversioned_job_on_the_default()
    {
        var executors = Serving(V1, V2);
        var jobs = new[] { Job("1"), Job("2"), Job(""), Job("1"), Job("2") };

        var split = executors.Split(jobs);

        split.NotServed.ShouldBeEmpty();
        split.Runs.Select(r => (r.Executor, r.Jobs.Count)).ShouldBe([
            (executors.All[0].Executor, 2), (executors.All[0].Executor, 1), (executors.All[1].Executor, 1), (executors.All[1].Executor, 1)]);
        split.Runs.SelectMany(r => r.Jobs).ShouldAllBe(j => j.Job.ModelVersion != "", "the version that runs is on the job");
    }

    [Fact]
    public void A_job_of_a_serving_version_this_processor_does_not_serve_is_handed_back_and_one_of_a_retired_version_fails()
    {
        var split = Serving(V1).Split([Job("2"), Job("0"), Job("7")]);

        split.Runs.ShouldBeEmpty();
        split.NotServed[0].Outcome.ShouldBe(new RunOutcome.Faulted(JobErrorCodes.ModelVersionNotServed,
            "Version '2' of model 'mlp-test' is not served by processor worker-a (it serves 1); handed back for a processor that serves it."));
        split.NotServed[1].Outcome.ShouldBe(new RunOutcome.Rejected(JobErrorCodes.ModelVersionNotServed,
            "Version '0' of model 'mlp-test' is retired; the served versions are: 1, 2."));
        split.NotServed[2].Outcome.ShouldBeOfType<RunOutcome.Rejected>().Code.ShouldBe(JobErrorCodes.ModelVersionNotServed);
    }

    [Fact]
    public void A_processor_serves_every_serving_version_by_default_a_named_model_all_of_its_and_name_at_version_only_that_one()
    {
        ServedVersions.Select(Catalog, [], _ => true).ShouldHaveSingleItem().ShouldBe([V1, V2]);
        ServedVersions.Select(Catalog, ["mlp-test"], _ => false).ShouldHaveSingleItem().ShouldBe([V1, V2]);
        ServedVersions.Select(Catalog, ["mlp-test@2"], _ => true).ShouldHaveSingleItem().ShouldBe([V2]);
        Should.Throw<InvalidOperationException>(() => ServedVersions.Select(Catalog, ["mlp-test", "other"], _ => true))
            .Message.ShouldBe("Processor:Models entry 'other': the manifest has no model 'other' (its models: mlp-test).");
        Should.Throw<InvalidOperationException>(() => ServedVersions.Select(Catalog, ["mlp-test@0"], _ => true))
            .Message.ShouldBe("Processor:Models entry 'mlp-test@0': Version '0' of model 'mlp-test' is retired; the served versions are: 1, 2.");
    }
}
