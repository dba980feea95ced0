namespace CqrsInference.Processors.Edge;

/// <summary>
/// The site's input folder: the raw items waiting (WAV, PNG, JPEG; name order), each with the item
/// id it is processed under, and where an item goes once done: <c>input/done/</c>, under its item
/// id. So the folder a poll reads holds only what waits (it grew with every item, and every poll
/// read it all), and a file that arrives under a name already done is a new item: the camera that
/// names every frame <c>frame.png</c>, a counter reset by a reboot. Its id is the name with the
/// next generation (<c>frame~2.png</c>, <c>frame~3.png</c>), so its events are not dropped as
/// copies of the first's. The order that keeps a crash from losing or doubling an item: its events
/// stored, then the file moved, then the checkpoint written; a crash before the move redoes the
/// item under the same id (dropped as copies), one after it finds nothing left to do. Control
/// characters in a name (a message id header cannot carry them, nor a line of the checkpoint)
/// are written %XX in the id. A file is taken only once it has settled: seen unchanged (length and
/// write time) at two looks, and last written at least <see cref="EdgeSiteOptions.SettleTime"/>
/// ago or seen unchanged that long by this process (a write time in the future: a clock ahead);
/// files are taken in name order, so one still being written holds back the names after it.
/// </summary>
internal sealed class EdgeInput
{
    public const string DoneFolder = "done";

    /// <summary>In the state folder once the items done before this layout were moved out of the input folder.</summary>
    private const string LayoutMarker = "input-done-folder";

    private static readonly string[] Extensions = [".wav", ".png", ".jpg", ".jpeg"];

    private readonly string _input;
    private readonly string _done;
    private readonly EdgeCheckpoint _checkpoint;
    private readonly TimeSpan _settle;
    private readonly Dictionary<string, int> _generations = new(StringComparer.Ordinal);
    private Dictionary<string, Sighting> _seen = new(StringComparer.Ordinal);

    private EdgeInput(string input, EdgeCheckpoint checkpoint, TimeSpan settle)
    {
        (_input, _done, _checkpoint, _settle) = (input, Path.Combine(input, DoneFolder), checkpoint, settle);
    }

    /// <summary>The input folder, made ready; items an earlier version left in it once done are moved to done/ first (they are not new items).</summary>
    public static EdgeInput Open(string input, string state, EdgeCheckpoint checkpoint, TimeSpan settle)
    {
        var folder = new EdgeInput(input, checkpoint, settle);
        Directory.CreateDirectory(folder._done);
        var marker = Path.Combine(state, LayoutMarker);
        if (!File.Exists(marker))
        {
            foreach (var file in Candidates(input).Where(f => checkpoint.IsDone(ItemIdOf(Path.GetFileName(f)))))
            {
                File.Move(file, Path.Combine(folder._done, ItemIdOf(Path.GetFileName(file))), overwrite: true);
            }

            File.WriteAllText(marker, "Items done are moved to input/done.\n");
        }

        return folder;
    }

    /// <summary>The first file in name order that has not settled at the last look (it holds back the names after it), or null.</summary>
    public Unsettled? HeldBack { get; private set; }

    /// <summary>
    /// The raw items waiting that have settled, in name order (the order the feed wrote them), up to
    /// the first that has not; <paramref name="waiting"/> counts every file waiting, settled or not.
    /// </summary>
    public List<RawItem> Pending(DateTimeOffset now, out int waiting)
    {
        var seen = new Dictionary<string, Sighting>(StringComparer.Ordinal);
        var ready = new List<RawItem>();
        HeldBack = null;
        foreach (var file in Candidates(_input).Order(StringComparer.Ordinal))
        {
            var info = new FileInfo(file);
            var sighting = new Sighting(info.Exists ? info.Length : 0, info.LastWriteTimeUtc, now, now);
            if (_seen.TryGetValue(file, out var before))
            {
                sighting = before.Length == sighting.Length && before.Written == sighting.Written ? before : sighting with { FirstSeen = before.FirstSeen };
            }

            seen[file] = sighting;
            if (ready.Count == seen.Count - 1 && Settled(sighting, now))
            {
                ready.Add(new RawItem(file, NextId(Path.GetFileName(file))));
            }
            else if (HeldBack is null)
            {
                HeldBack = new Unsettled(Path.GetFileName(file), sighting.FirstSeen);
            }
        }

        _seen = seen;
        waiting = seen.Count;
        return ready;
    }

    /// <summary>
    /// Seen unchanged at an earlier look (so not being written between the two: a file on a share
    /// whose clock is behind reads as written long ago), and last written, or first seen as it is,
    /// at least the settle time ago; with a settle time of 0, at once.
    /// </summary>
    private bool Settled(Sighting sighting, DateTimeOffset now) =>
        _settle == TimeSpan.Zero
        || (sighting.Since < now && (now - new DateTimeOffset(sighting.Written, TimeSpan.Zero) >= _settle || now - sighting.Since >= _settle));

    /// <summary>The item's events are stored: its file leaves the input folder, then it is done.</summary>
    public void Done(RawItem item)
    {
        if (File.Exists(item.Path) || new FileInfo(item.Path).LinkTarget is not null)
        {
            File.Move(item.Path, Path.Combine(_done, item.ItemId), overwrite: true);
        }

        _checkpoint.MarkDone(item.ItemId);
    }

    /// <summary>The item id of a file name: the name, with control characters written %XX.</summary>
    public static string ItemIdOf(string name) =>
        name.Any(char.IsControl) ? string.Concat(name.Select(c => char.IsControl(c) ? $"%{(int)c:X2}" : c.ToString())) : name;

    private static IEnumerable<string> Candidates(string input) =>
        Directory.EnumerateFiles(input).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()));

    /// <summary>The name's id, or its next generation's when an item of that name is done.</summary>
    private string NextId(string name)
    {
        var id = ItemIdOf(name);
        if (!_checkpoint.IsDone(id))
        {
            return id;
        }

        var (stem, extension) = (Path.GetFileNameWithoutExtension(id), Path.GetExtension(id));
        var generation = _generations.GetValueOrDefault(id, 1);
        string next;
        do
        {
            next = $"{stem}~{++generation}{extension}";
        }
        while (_checkpoint.IsDone(next));

        _generations[id] = generation - 1;
        return next;
    }
}

/// <summary>A file's length and write time, since when this process has seen them unchanged, and when it first saw the file.</summary>
internal sealed record Sighting(long Length, DateTime Written, DateTimeOffset Since, DateTimeOffset FirstSeen);

/// <summary>A file not settled yet, and when it was first seen.</summary>
internal sealed record Unsettled(string Name, DateTimeOffset FirstSeen);

/// <summary>A raw file waiting in the input folder, and the item id it is processed under.</summary>
internal sealed record RawItem(string Path, string ItemId);
