using System.Runtime.InteropServices;

namespace CqrsInference.Processors.Edge;

/// <summary>
/// Makes a rename in a directory durable. A file written, flushed to disk and renamed over another
/// is only safe across a power loss once the directory's entry is on disk too: until then the
/// rename may be lost, and the old file comes back. .NET has no call for it (a directory cannot be
/// opened as a <see cref="FileStream"/>), so on Linux and macOS the directory is opened and
/// fsync'd through libc; elsewhere the rename is left to the file system.
/// </summary>
internal static partial class DirectorySync
{
    private const int ReadOnly = 0;

    /// <summary>Flushes <paramref name="directory"/>'s entries to disk; an <see cref="IOException"/> says why not.</summary>
    public static void Flush(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }

        var descriptor = open(directory, ReadOnly);
        if (descriptor < 0)
        {
            throw new IOException($"Cannot open {directory} to flush it: error {Marshal.GetLastPInvokeError()}.");
        }

        try
        {
            if (fsync(descriptor) != 0)
            {
                throw new IOException($"Cannot flush {directory} to disk: error {Marshal.GetLastPInvokeError()}.");
            }
        }
        finally
        {
            _ = close(descriptor);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int descriptor);

    [LibraryImport("libc")]
    private static partial int close(int descriptor);
}
