using System.Diagnostics;
using NATS.Client.Core;

namespace CqrsInference.Messaging;

/// <summary>
/// The W3C trace context in NATS headers: a job's trace starts at the submit and travels with its
/// messages through the processor to the recorder.
/// </summary>
public static class TraceHeaders
{
    /// <summary>Writes the current trace context into NATS headers.</summary>
    public static void Inject(Activity? activity, NatsHeaders headers)
    {
        if (activity is not null)
        {
            DistributedContextPropagator.Current.Inject(activity, headers, static (carrier, key, value) => ((NatsHeaders)carrier!)[key] = value);
        }
    }

    /// <summary>Reads a trace context from NATS headers (default when there is none).</summary>
    public static ActivityContext Extract(NatsHeaders? headers)
    {
        if (headers is null)
        {
            return default;
        }

        DistributedContextPropagator.Current.ExtractTraceIdAndState(
            headers,
            static (object? carrier, string name, out string? value, out IEnumerable<string>? values) =>
            {
                values = null;
                value = ((NatsHeaders)carrier!).TryGetValue(name, out var v) ? v.ToString() : null;
            },
            out var traceParent,
            out var traceState);
        return ActivityContext.TryParse(traceParent, traceState, out var context) ? context : default;
    }
}
