using CqrsInference.Api.Jobs;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.JobStatus;
using CqrsInference.Tests.Fixtures;
using Marten;
using Microsoft.Extensions.DependencyInjection;

namespace CqrsInference.Tests.Jobs.Reading;

/// <summary>Which status a job reads as while the recorder catches up with what the API already saw.</summary>
public sealed class JobReaderTests(PipelineWithoutProcessors pipeline) : IClassFixture<PipelineWithoutProcessors>
{
    private IDocumentStore Store => pipeline.Host.Services.GetRequiredService<IDocumentStore>();

    [Fact]
    public async Task A_job_the_api_saw_end_reads_as_ended_while_only_its_start_is_recorded()
    {
        var reader = new JobReader(Store, TimeProvider.System);
        var recorded = await RecordAsync(JobStatuses.Queued);

        reader.Ended(recorded with { Status = JobStatuses.Succeeded });

        (await FindAsync(reader, recorded)).ShouldBe(JobStatuses.Succeeded);
    }

    [Fact]
    public async Task A_recorded_status_wins_over_one_the_api_holds_that_has_not_ended()
    {
        var reader = new JobReader(Store, TimeProvider.System);
        var recorded = await RecordAsync(JobStatuses.Running);

        reader.Accepted(new V1.JobSubmitted(recorded.Id, recorded.Tenant, recorded.Model, recorded.ModelVersion, recorded.Region,
            recorded.Priority, recorded.SubmittedAt, recorded.RequestDigest, 0, null));

        (await FindAsync(reader, recorded)).ShouldBe(JobStatuses.Running);
    }

    [Fact]
    public async Task A_recorded_ending_wins_over_everything()
    {
        var reader = new JobReader(Store, TimeProvider.System);
        var recorded = await RecordAsync(JobStatuses.Failed);

        reader.Ended(recorded with { Status = JobStatuses.Succeeded });

        (await FindAsync(reader, recorded)).ShouldBe(JobStatuses.Failed);
    }

    private async Task<JobStatus> RecordAsync(string status)
    {
        var job = new JobStatus(Guid.CreateVersion7(), "reader-tenant", status, "mlp-test", "1", "local", "interactive",
            DateTimeOffset.UtcNow, "digest", null);
        await using var session = Store.LightweightSession();
        session.Store(job);
        await session.SaveChangesAsync();
        return job;
    }

    private async Task<string?> FindAsync(JobReader reader, JobStatus job)
    {
        await using var session = Store.QuerySession();
        return (await reader.FindAsync(session, job.Id, job.Tenant, CancellationToken.None))?.Status;
    }
}
