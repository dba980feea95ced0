using System.Text.Json;
using System.Text.Json.Nodes;

namespace CqrsInference.Cli;

/// <summary>
/// What the CLI changes in a job's JSON before it sends it. Public so that the tests can name the
/// body the CLI sent (the CLI's internals are not visible to them: its top-level <c>Program</c>
/// would clash with the API's).
/// </summary>
public static class JobBody
{
    /// <summary>The mode that runs a job on the interactive path (NATS request/reply to a processor).</summary>
    public const string Interactive = "interactive";

    /// <summary>
    /// The job with its <c>mode</c> set (replacing one it names). A body that is not a JSON object
    /// is sent as it is, so that the API names what is wrong with it.
    /// </summary>
    public static string WithMode(string json, string mode)
    {
        try
        {
            if (JsonNode.Parse(json) is not JsonObject job)
            {
                return json;
            }

            job["mode"] = mode;
            return job.ToJsonString();
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            // Not JSON, or a duplicate key: the API answers 400 with the reason.
            return json;
        }
    }
}
