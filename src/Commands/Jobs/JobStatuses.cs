namespace CqrsInference.Commands.Jobs;

/// <summary>The job statuses of the public contract.</summary>
public static class JobStatuses
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    public const string Expired = "expired";

    public static bool IsTerminal(string status) =>
        status is Succeeded or Failed or Cancelled or Expired;
}
