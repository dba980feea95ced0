using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Xunit.Abstractions;

namespace CqrsInference.Tests.Jobs.Cancelling;

/// <summary>
/// Cancel against completion: 200 jobs, each cancelled at a random moment around its expected end
/// (queued, running, finishing, just finished and not yet recorded, recorded). Whatever the timing,
/// each job's recorded history holds exactly one ending, and the answer to the cancel agrees with it.
/// </summary>
public sealed class CancelRaceTests(PipelineWithFaultInjection pipeline, ITestOutputHelper output) : IClassFixture<PipelineWithFaultInjection>
{
    private const int Races = 200;

    private readonly HttpClient _client = pipeline.Client;

    [Fact]
    public async Task Every_race_of_cancel_against_completion_leaves_one_ending_that_agrees_with_the_answer()
    {
        var answers = new ConcurrentBag<(Guid Job, HttpStatusCode Answer)>();
        var random = new Random(20);
        var plans = Enumerable.Range(0, Races).Select(i => (Index: i, Sleep: random.Next(10, 80), Delay: random.Next(0, 160))).ToList();

        await Parallel.ForEachAsync(plans, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (plan, ct) =>
        {
            var job = await _client.SubmitAsync(Scenarios.MlpJob([plan.Index, 1, 2, 3], $$"""{"cqrsi-test-fault":"sleep:{{plan.Sleep}}"}"""));
            job.Status.ShouldBe(HttpStatusCode.Accepted);
            await Task.Delay(plan.Delay, ct);
            using var cancel = await _client.DeleteAsync($"/v1/jobs/{job.Id}", ct);
            answers.Add((job.Id, cancel.StatusCode));
        });

        var byAnswer = answers.GroupBy(a => a.Answer).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine(string.Join(", ", byAnswer.Select(p => $"{(int)p.Key}: {p.Value}")));
        byAnswer.Keys.ShouldBeSubsetOf([HttpStatusCode.OK, HttpStatusCode.Accepted, HttpStatusCode.Conflict]);

        foreach (var (job, answer) in answers)
        {
            // The API reads a job it cancelled as cancelled before the recorder has it: wait for the
            // recorded ending, then read the job as it stands.
            var endings = await Retry.Until($"job {job}'s ending to be recorded", () => EndingsAsync(job), e => e.Count > 0, TimeSpan.FromSeconds(30));
            var ended = await Retry.Until($"job {job} to read as ended", () => _client.GetJobAsync(job),
                j => j.GetProperty("status").GetString() is "succeeded" or "cancelled" or "failed" or "expired", TimeSpan.FromSeconds(30));

            endings.Count.ShouldBe(1, $"job {job} (answered {(int)answer}) has endings {string.Join(", ", endings)}");
            var expected = answer == HttpStatusCode.Conflict ? ("succeeded", "v1.job_succeeded") : ("cancelled", "v1.job_cancelled");
            (ended.GetProperty("status").GetString(), endings[0]).ShouldBe(expected, $"job {job} answered {(int)answer}");
        }

        // The races must have happened: cancels of jobs a processor held (202) and cancels that lost to
        // the ending (409) both, or this test proved nothing about the race.
        byAnswer.GetValueOrDefault(HttpStatusCode.Accepted).ShouldBeGreaterThanOrEqualTo(10);
        byAnswer.GetValueOrDefault(HttpStatusCode.Conflict).ShouldBeGreaterThanOrEqualTo(10);
    }

    private async Task<List<string?>> EndingsAsync(Guid id) =>
        (await _client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}/events")).EnumerateArray()
            .Select(e => e.GetProperty("type").GetString())
            .Where(t => t is "v1.job_succeeded" or "v1.job_failed" or "v1.job_expired" or "v1.job_cancelled")
            .ToList();
}
