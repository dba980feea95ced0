using CqrsInference.Commands.Jobs;
using Marten;
using Npgsql;

namespace CqrsInference.Projections.Recording.JobLog;

/// <summary>
/// What a partition's recorder knows of its jobs' streams: the jobs not yet ended that it recorded
/// lately, kept in memory (it is their only writer, so what it wrote is what is stored), and for the
/// others one query per run. An ended job leaves the cache: later events of it are rare (a
/// redelivered result) and read from PostgreSQL. Cleared whenever recording starts again from the
/// checkpoint or a write fails, since then what it remembers may not be what was stored.
/// </summary>
internal sealed class JobStreams(IDocumentStore store, NpgsqlDataSource db, string schema, int capacity)
{
    private readonly Dictionary<Guid, JobStream> _cache = [];
    private readonly Queue<Guid> _order = new();

    public int Cached => _cache.Count;

    public void Clear()
    {
        _cache.Clear();
        _order.Clear();
    }

    /// <summary>
    /// The streams of <paramref name="jobs"/> that exist: from memory, the rest from PostgreSQL in one
    /// query, except the jobs <paramref name="surelyNew"/> (whose streams cannot exist yet).
    /// </summary>
    public async Task<Dictionary<Guid, JobStream>> FindAsync(IReadOnlyCollection<Guid> jobs, IReadOnlySet<Guid> surelyNew, CancellationToken ct)
    {
        var found = new Dictionary<Guid, JobStream>(jobs.Count);
        var missing = new List<Guid>();
        foreach (var job in jobs)
        {
            if (_cache.TryGetValue(job, out var stream))
            {
                found[job] = stream;
            }
            else if (!surelyNew.Contains(job))
            {
                missing.Add(job);
            }
        }

        if (missing.Count > 0)
        {
            await LoadAsync(missing, found, ct);
        }

        return found;
    }

    /// <summary>Remembers what a run left, once it is stored.</summary>
    public void Remember(IReadOnlyDictionary<Guid, JobStream> touched)
    {
        foreach (var (job, stream) in touched)
        {
            if (JobLifecycle.IsTerminal(stream.Status.Status))
            {
                _cache.Remove(job);
                continue;
            }

            if (_cache.TryAdd(job, stream))
            {
                _order.Enqueue(job);
            }
            else
            {
                _cache[job] = stream;
            }
        }

        while (_cache.Count > capacity && _order.TryDequeue(out var oldest))
        {
            _cache.Remove(oldest);
        }

        // Ids of jobs that ended stay in the order queue until it is twice the capacity.
        if (_order.Count > 2 * capacity)
        {
            var live = _order.Where(_cache.ContainsKey).Distinct().ToList();
            _order.Clear();
            live.ForEach(_order.Enqueue);
        }
    }

    private async Task LoadAsync(List<Guid> jobs, Dictionary<Guid, JobStream> found, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            $"""
            select s.id, s.version, d.data::text, array(select e.id from {schema}.mt_events e where e.stream_id = s.id)
            from {schema}.mt_streams s left join {schema}.mt_doc_jobstatus d on d.id = s.id
            where s.id = any($1)
            """);
        command.Parameters.AddWithValue(jobs.ToArray());
        var withoutStatus = new List<(Guid Id, long Version, Guid[] Events)>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            var serializer = store.Options.Serializer();
            while (await reader.ReadAsync(ct))
            {
                var (id, version, events) = (reader.GetGuid(0), reader.GetInt64(1), await reader.GetFieldValueAsync<Guid[]>(3, ct));
                if (await reader.IsDBNullAsync(2, ct))
                {
                    withoutStatus.Add((id, version, events));
                    continue;
                }

                await using var json = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(reader.GetString(2)));
                found[id] = new JobStream(version, await serializer.FromJsonAsync<JobStatus.JobStatus>(json, ct), events.ToHashSet());
            }
        }

        // A stream without its status document (removed by hand, say): fold its events again.
        await using var session = store.QuerySession();
        foreach (var (id, version, events) in withoutStatus)
        {
            if (await session.Events.AggregateStreamAsync<JobStatus.JobStatus>(id, token: ct) is { } status)
            {
                found[id] = new JobStream(version, status, events.ToHashSet());
            }
        }
    }
}
