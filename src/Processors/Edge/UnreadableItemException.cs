namespace CqrsInference.Processors.Edge;

/// <summary>A raw item that can never be read, whatever the retry: <see cref="Code"/> says why (<see cref="Commands.Jobs.EdgeErrorCodes"/>).</summary>
internal sealed class UnreadableItemException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
