using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace CqrsInference.Processors.Worker.Shadowing;

/// <summary>
/// One background thread at the lowest CPU priority a process may give itself without privileges,
/// running the work handed to it one item at a time: the shadow's model runs
/// (<see cref="ShadowRunner"/>), so that on a machine whose cores the primary's runs keep busy the
/// operating system's scheduler, not only the worker's idle check, gives the shadow what is left.
/// On Linux the thread's nice value is raised to 19 (<c>setpriority</c> on the thread's id: nice is
/// per thread there, and any thread may lower its own priority); elsewhere
/// <see cref="ThreadPriority.Lowest"/> is asked for. A model run keeps to the calling thread when
/// its session has one intra-op thread, which is how the shadow's session is loaded.
/// </summary>
internal sealed partial class LowPriorityThread : IDisposable
{
    /// <summary>The weakest nice value on Linux.</summary>
    public const int Nice = 19;

    /// <summary><c>PRIO_PROCESS</c>: on Linux, with a thread id, that one thread.</summary>
    private const int PrioProcess = 0;

    private readonly BlockingCollection<Action> _work = [];
    private bool _lowered;

    public LowPriorityThread(string name)
    {
        new Thread(Loop) { IsBackground = true, Name = name, Priority = ThreadPriority.Lowest }.Start();
    }

    /// <summary>Whether the thread's priority was lowered (false where the OS refused: the work runs all the same).</summary>
    public Task<bool> LoweredAsync() => RunAsync(() => _lowered);

    /// <summary>Runs <paramref name="work"/> on the thread, after what was handed to it before.</summary>
    public Task<T> RunAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        return done.Task;
    }

    /// <summary>Lets the thread end once what was handed to it has run.</summary>
    public void Dispose() => _work.CompleteAdding();

    private void Loop()
    {
        _lowered = Lower();
        foreach (var work in _work.GetConsumingEnumerable())
        {
            work();
        }

        _work.Dispose();
    }

    private static bool Lower() => !OperatingSystem.IsLinux() || setpriority(PrioProcess, gettid(), Nice) == 0;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, int who, int priority);

    [LibraryImport("libc")]
    private static partial int gettid();
}
