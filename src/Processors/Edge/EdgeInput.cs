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
/// are written %XX in the id.
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
    private readonly Dictionary<string, int> _generations = new(StringComparer.Ordinal);

    private EdgeInput(string input, EdgeCheckpoint checkpoint)
    {
        (_input, _done, _checkpoint) = (input, Path.Combine(input, DoneFolder), checkpoint);
    }

    /// <summary>The input folder, made ready; items an earlier version left in it once done are moved to done/ first (they are not new items).</summary>
    public static EdgeInput Open(string input, string state, EdgeCheckpoint checkpoint)
    {
        var folder = new EdgeInput(input, checkpoint);
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

    /// <summary>The raw items waiting, in name order (the order the feed wrote them).</summary>
    public List<RawItem> Pending() =>
        [.. Candidates(_input).Order(StringComparer.Ordinal).Select(f => new RawItem(f, NextId(Path.GetFileName(f))))];

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

/// <summary>A raw file waiting in the input folder, and the item id it is processed under.</summary>
internal sealed record RawItem(string Path, string ItemId);
