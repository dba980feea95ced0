namespace CqrsInference.Processors.Edge;

/// <summary>
/// The items an edge processor has done, as an append-only file of item ids, flushed to disk
/// (fsync) after each: a restart, even after SIGKILL or a power cut, redoes at most the item that
/// was in flight, never skips one.
/// </summary>
internal sealed class EdgeCheckpoint
{
    private readonly string _path;
    private readonly HashSet<string> _done;

    private EdgeCheckpoint(string path, HashSet<string> done) => (_path, _done) = (path, done);

    public int Count => _done.Count;

    public static EdgeCheckpoint Open(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);

        // A line cut short by a crash has no newline yet: it is not done.
        var text = File.Exists(path) ? File.ReadAllText(path) : "";
        var complete = text.LastIndexOf('\n') + 1;
        var done = text[..complete].Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        if (complete < text.Length)
        {
            File.WriteAllText(path, text[..complete]);
        }

        return new EdgeCheckpoint(path, done);
    }

    public bool IsDone(string itemId) => _done.Contains(itemId);

    public void MarkDone(string itemId)
    {
        if (itemId.Contains('\n', StringComparison.Ordinal) || !_done.Add(itemId))
        {
            return;
        }

        using var stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(System.Text.Encoding.UTF8.GetBytes(itemId + "\n"));
        stream.Flush(flushToDisk: true);
    }
}
