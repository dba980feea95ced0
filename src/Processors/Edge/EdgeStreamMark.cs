using System.Globalization;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// How far the site's stream has gone, kept in the state directory (<c>stream-mark</c>): before the
/// site publishes k events it writes down the last sequence it knows plus k (fsync'd), so the mark
/// is never below the stream's last sequence, even across a crash in the middle. When the site's
/// store is lost (an empty disk, a container without its volume) and its stream is made again, the
/// new stream continues after the mark: the core's sourcing, which asks for the sequences after
/// the last one it took, then takes the new stream's events instead of waiting past as many
/// sequences as the old stream held (and never receiving those events).
/// </summary>
internal sealed class EdgeStreamMark
{
    private readonly string _path;
    private ulong _acknowledged;

    private EdgeStreamMark(string path, ulong mark) => (_path, Mark, _acknowledged) = (path, mark, mark);

    /// <summary>No sequence of the site's stream so far is above this.</summary>
    public ulong Mark { get; private set; }

    public static EdgeStreamMark Open(string stateDirectory)
    {
        var path = Path.Combine(stateDirectory, "stream-mark");
        var mark = File.Exists(path) && ulong.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var read) ? read : 0;
        return new EdgeStreamMark(path, mark);
    }

    /// <summary>The stream said its last sequence (or a publish was acknowledged at it).</summary>
    public void Acknowledged(ulong sequence) => _acknowledged = Math.Max(_acknowledged, sequence);

    /// <summary>Before publishing <paramref name="events"/> events: the mark moves past where they can land.</summary>
    public void Reserve(int events)
    {
        var upTo = _acknowledged + (ulong)events;
        if (upTo <= Mark)
        {
            return;
        }

        var temporary = _path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(upTo.ToString(CultureInfo.InvariantCulture) + "\n"));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, _path, overwrite: true);
        Mark = upTo;
    }
}
