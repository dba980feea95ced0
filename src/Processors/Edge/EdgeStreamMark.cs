using System.Globalization;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// How far the site's stream may have gone, kept in the state directory (<c>stream-mark</c>). Before
/// the site publishes k events, the highest sequence they can land at is the last one known (the
/// stream's, or an earlier publish's bound) plus k, whether or not the earlier publishes were
/// acknowledged; the mark written on disk (the file fsync'd, renamed into place, and its directory
/// fsync'd) is never below it, so never below the stream's
/// last sequence, across any crash. It is written ahead in steps of <see cref="Step"/>, not at each
/// publish. When the site's store is lost (an empty disk, a container without its volume) and its
/// stream is made again, the new stream continues after the mark: the core's sourcing, which asks
/// for the sequences after the last one it took, then takes the new stream's events instead of
/// waiting past as many sequences as the old stream held (and never receiving those events).
/// </summary>
internal sealed class EdgeStreamMark
{
    /// <summary>How far ahead of what is needed the mark is written: one write per this many events.</summary>
    public const ulong Step = 1_000;

    private readonly string _path;
    private ulong _bound;

    private EdgeStreamMark(string path, ulong mark) => (_path, Mark) = (path, mark);

    /// <summary>No sequence of the site's stream is above this.</summary>
    public ulong Mark { get; private set; }

    /// <summary>The mark in <paramref name="stateDirectory"/>; an unreadable one stops the start (0 would give away its protection without a word).</summary>
    public static EdgeStreamMark Open(string stateDirectory)
    {
        Directory.CreateDirectory(stateDirectory);
        var path = Path.Combine(stateDirectory, "stream-mark");
        if (!File.Exists(path))
        {
            return new EdgeStreamMark(path, 0);
        }

        var text = File.ReadAllText(path).Trim();
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var mark)
            ? new EdgeStreamMark(path, mark)
            : throw new InvalidDataException($"{path} holds '{Commands.Shown.Cut(text, 40)}', not a sequence number: write the site stream's last sequence in it (or remove it if the stream was never lost).");
    }

    /// <summary>The stream said its last sequence, or a publish was acknowledged at it.</summary>
    public void Acknowledged(ulong sequence) => _bound = Math.Max(_bound, sequence);

    /// <summary>Before publishing <paramref name="events"/> events: the mark moves past where they can land.</summary>
    public void Reserve(int events)
    {
        _bound += (ulong)events;
        if (_bound > Mark)
        {
            Write(_bound + Step);
        }
    }

    private void Write(ulong mark)
    {
        var temporary = _path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(mark.ToString(CultureInfo.InvariantCulture) + "\n"));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, _path, overwrite: true);
        DirectorySync.Flush(Path.GetDirectoryName(Path.GetFullPath(_path))!);
        Mark = mark;
    }
}
