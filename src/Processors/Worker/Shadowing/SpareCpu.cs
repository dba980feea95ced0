using System.Globalization;

namespace CqrsInference.Processors.Worker.Shadowing;

/// <summary>
/// Whether the host's CPU has room for a shadow batch: the share of all its cores' time that was
/// idle (idle and waiting for I/O, from Linux's <c>/proc/stat</c>) since the reading before, taken
/// at most every <see cref="Window"/>, is at least <c>Processor:ShadowMinIdleCpu</c>. A shadow's
/// cost is more than its model run (nice 19 reaches only that): its results are published,
/// recorded and rolled up by the API's, NATS's, the recorder's and PostgreSQL's processes at their
/// usual priority, on the same cores when they share the host; on a host already busy, a shadow
/// would take that time from the primary's jobs, so it waits (and what does not fit in its queue
/// is dropped, counted). Where <c>/proc/stat</c> cannot be read, or with a minimum of 0, there is
/// always room.
/// </summary>
internal sealed class SpareCpu(double minIdleShare, Func<CpuTimes?> read, TimeProvider clock)
{
    /// <summary>How long a reading stands before the next: long enough for a share, short enough to follow the load.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMilliseconds(250);

    private readonly Lock _gate = new();
    private CpuTimes? _last;
    private long _lastAt;
    private double _idleShare;

    /// <summary>Always room: no check.</summary>
    public static SpareCpu Unchecked { get; } = new(0, () => null, TimeProvider.System);

    /// <summary>The host's CPU from <c>/proc/stat</c>.</summary>
    public static SpareCpu OfHost(double minIdleShare, TimeProvider clock) => new(minIdleShare, CpuTimes.ReadHost, clock);

    /// <summary>The idle share measured last (0 until two readings have measured one: no room is assumed before).</summary>
    public double IdleShare
    {
        get
        {
            lock (_gate)
            {
                return _idleShare;
            }
        }
    }

    public bool HasRoom()
    {
        if (minIdleShare <= 0)
        {
            return true;
        }

        lock (_gate)
        {
            if (_last is null || clock.GetElapsedTime(_lastAt) >= Window)
            {
                var now = read();
                if (now is null)
                {
                    return true;
                }

                if (_last is { } before && now.Value.Total > before.Total)
                {
                    _idleShare = (double)(now.Value.Idle - before.Idle) / (now.Value.Total - before.Total);
                }

                (_last, _lastAt) = (now, clock.GetTimestamp());
            }

            return _idleShare >= minIdleShare;
        }
    }
}

/// <summary>Cumulative CPU time of all cores (any unit): idle (idle + iowait) and total.</summary>
internal readonly record struct CpuTimes(long Idle, long Total)
{
    private const string HostStat = "/proc/stat";

    /// <summary>The first line of <c>/proc/stat</c> (<c>cpu  user nice system idle iowait irq softirq steal …</c>), or null.</summary>
    public static CpuTimes? Parse(string line)
    {
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 5 || fields[0] != "cpu")
        {
            return null;
        }

        long total = 0, idle = 0;
        // user nice system idle iowait irq softirq steal: guest time is counted in user already.
        for (var i = 1; i < Math.Min(fields.Length, 9); i++)
        {
            if (!long.TryParse(fields[i], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                return null;
            }

            total += value;
            if (i is 4 or 5)
            {
                idle += value;
            }
        }

        return new CpuTimes(idle, total);
    }

    public static CpuTimes? ReadHost()
    {
        try
        {
            using var reader = new StreamReader(HostStat);
            return reader.ReadLine() is { } line ? Parse(line) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
