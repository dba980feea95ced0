using System.Text.Json.Serialization;
using CqrsInference.Commands.Models;

namespace CqrsInference.Commands.Jobs;

public static partial class V1
{
    /// <summary>
    /// A succeeded job was run again on its model's shadow version (<see cref="ModelVersionStates.Shadow"/>)
    /// by <paramref name="Worker"/>, on spare capacity, after its ending: <paramref name="Outputs"/> are
    /// the shadow's answer (empty when the shadow run failed: <paramref name="Error"/>),
    /// <paramref name="Agreement"/> how each output compared with the primary's answer (by the
    /// shadow version's comparison rules). <paramref name="PrimaryRunMs"/> is the primary's run (its
    /// batch, as <see cref="JobSucceeded.RunMs"/>, of <paramref name="PrimaryBatchSize"/> jobs);
    /// <paramref name="ShadowRunMs"/> the shadow's run of the batch it ran this job in, of
    /// <paramref name="ShadowBatchSize"/> jobs (null, left out of the JSON: one job alone, as before
    /// shadows ran in batches).
    /// </summary>
    /// <remarks>
    /// Never a job state change (<see cref="JobLifecycle.IsShadow"/>): it does not change the job's
    /// status, is not returned to callers, not billed, and is recorded after the job's ending
    /// (<see cref="JobLifecycle.Changes"/> is false for it; the recorder takes it while the job's
    /// stream exists). One per job, series and shadow version: a repeated run publishes it under the
    /// same message id and record id.
    /// </remarks>
    public sealed record JobShadowResult(
        Guid JobId,
        string Model,
        string PrimaryVersion,
        string ShadowVersion,
        IReadOnlyList<Tensor> Outputs,
        IReadOnlyList<OutputAgreement> Agreement,
        double PrimaryRunMs,
        int PrimaryBatchSize,
        double ShadowRunMs,
        string Worker,
        string Device,
        DateTimeOffset At,
        string? Error = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Series = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? ShadowBatchSize = null);
}
