namespace CqrsInference.Commands.Jobs;

/// <summary>Why an edge site could not read a raw item: the <c>ErrorCode</c> of <see cref="V1.EdgeItemFailed"/>.</summary>
public static class EdgeErrorCodes
{
    /// <summary>Not a RIFF/WAVE file at all (empty, random bytes, another format).</summary>
    public const string NotWav = "not_wav";

    /// <summary>A chunk claims more bytes than the file holds (a truncated file, or a lying header).</summary>
    public const string WavChunkTruncated = "wav_chunk_truncated";

    /// <summary>The <c>fmt </c> chunk is shorter than the 16 bytes of a PCM format.</summary>
    public const string WavFormatInvalid = "wav_fmt_invalid";

    /// <summary>The data comes before any <c>fmt </c> chunk.</summary>
    public const string WavFormatMissing = "wav_fmt_missing";

    /// <summary>Not PCM, or not 16 bits per sample.</summary>
    public const string WavUnsupportedEncoding = "wav_unsupported_encoding";

    /// <summary>No channels, or more than the site mixes down.</summary>
    public const string WavChannels = "wav_channels";

    /// <summary>A sample rate outside what the site resamples from.</summary>
    public const string WavSampleRate = "wav_sample_rate";

    /// <summary>The data is not a whole number of sample frames (an odd byte count, say).</summary>
    public const string WavDataMisaligned = "wav_data_misaligned";

    /// <summary>No data chunk.</summary>
    public const string WavDataMissing = "wav_data_missing";

    /// <summary>Larger than <c>EdgeSite:MaxItemBytes</c>: not read at all.</summary>
    public const string ItemTooLarge = "item_too_large";

    /// <summary>Not an item kind the site reads (an MQTT topic other than <c>…/raw/&lt;wav|png|jpg|jpeg&gt;/&lt;item&gt;</c>).</summary>
    public const string UnsupportedItem = "unsupported_item";

    /// <summary>The site's process may not read the file.</summary>
    public const string FileUnreadable = "file_unreadable";

    /// <summary>A model's run on the item failed.</summary>
    public const string InferenceError = "inference_error";
}
