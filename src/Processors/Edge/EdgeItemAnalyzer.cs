using System.Diagnostics;
using CqrsInference.Commands.Jobs;
using Microsoft.Extensions.Logging;

namespace CqrsInference.Processors.Edge;

/// <summary>What one raw item came to at the site, before anything of it is sent.</summary>
internal abstract record ItemAnalysis(string Kind, long RawBytes)
{
    /// <summary>Read: its detections (speech segments, or the line of text), after <paramref name="BusySeconds"/> of inference.</summary>
    public sealed record Read(string Kind, long RawBytes, IReadOnlyList<object> Detections, double BusySeconds) : ItemAnalysis(Kind, RawBytes);

    /// <summary>It can never be read: <paramref name="Code"/> and <paramref name="Reason"/> say why.</summary>
    public sealed record Unreadable(string Kind, long RawBytes, string Code, string Reason) : ItemAnalysis(Kind, RawBytes);
}

/// <summary>
/// Turns one raw item into its detections: WAV audio through speech detection, PNG/JPEG frames
/// through text reading. Whatever the bytes, it returns: an item that cannot be read (malformed,
/// too large, refused by the model, or one the model's run throws on) comes back
/// <see cref="ItemAnalysis.Unreadable"/>, so one bad item neither stops the site nor holds up the
/// items behind it.
/// </summary>
internal sealed partial class EdgeItemAnalyzer(SpeechDetector detector, Func<TextLineReader> openReader, EdgeSiteOptions options, ILogger logger) : IDisposable
{
    public const string Audio = "audio/wav";
    public const string UnknownKind = "application/octet-stream";
    private const int MaxReasonLength = 500;
    private TextLineReader? _reader;

    /// <summary>The media type of an item by its extension, or null for one the site does not read.</summary>
    public static string? KindOf(string extension) => extension.ToLowerInvariant() switch
    {
        ".wav" => Audio,
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        _ => null,
    };

    public static ItemAnalysis.Unreadable Unreadable(string kind, long rawBytes, string code, string reason) =>
        new(kind, rawBytes, code, reason.Length <= MaxReasonLength ? reason : string.Concat(reason.AsSpan(0, MaxReasonLength - 1), "…"));

    public ItemAnalysis.Unreadable? RefuseSize(string kind, long rawBytes) =>
        rawBytes > options.MaxItemBytes
            ? Unreadable(kind, rawBytes, EdgeErrorCodes.ItemTooLarge, $"{rawBytes} bytes; EdgeSite:MaxItemBytes is {options.MaxItemBytes}.")
            : null;

    public ItemAnalysis Analyse(string itemId, string extension, byte[] raw, DateTimeOffset now)
    {
        if (KindOf(extension) is not { } kind)
        {
            return Unreadable(UnknownKind, raw.Length, EdgeErrorCodes.UnsupportedItem, $"'{extension}' is not .wav, .png, .jpg or .jpeg.");
        }

        if (RefuseSize(kind, raw.Length) is { } tooLarge)
        {
            return tooLarge;
        }

        // Outside the catch: a text model missing from the manifest is the site's fault, not the item's.
        var reader = kind == Audio ? null : (_reader ??= openReader());
        var started = Stopwatch.GetTimestamp();
        try
        {
            var detections = reader is null ? Speech(itemId, raw, now) : Text(reader, itemId, raw, now);
            return new ItemAnalysis.Read(kind, raw.Length, detections, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        catch (UnreadableItemException e)
        {
            return Unreadable(kind, raw.Length, e.Code, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogAnalysisFailed(logger, e, itemId);
            return Unreadable(kind, raw.Length, EdgeErrorCodes.InferenceError, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private List<object> Speech(string itemId, byte[] raw, DateTimeOffset now) =>
        detector.Detect(WavFile.ReadMono16k(raw))
            .Select(object (s, i) => new V1.EdgeSpeechDetected(options.Name, itemId, i, Math.Round(s.StartSeconds, 3), Math.Round(s.EndSeconds, 3), s.MeanProbability, now))
            .ToList();

    private List<object> Text(TextLineReader reader, string itemId, byte[] raw, DateTimeOffset now)
    {
        var (text, confidence) = reader.Read(raw);
        return text.Length > 0 && confidence >= options.MinTextConfidence
            ? [new V1.EdgeTextRead(options.Name, itemId, text, Math.Round(confidence, 4), now)]
            : [];
    }

    public void Dispose()
    {
        _reader?.Dispose();
        detector.Dispose();
    }

    [LoggerMessage(LogLevel.Error, "Analysing raw item {ItemId} threw; it is recorded as failed")]
    private static partial void LogAnalysisFailed(ILogger logger, Exception exception, string itemId);
}
