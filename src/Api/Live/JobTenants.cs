namespace CqrsInference.Api.Live;

/// <summary>
/// Whose job is whose, as the live feed learns it from submissions (their subject names the tenant),
/// so that a lifecycle event (whose subject does not) reaches only its tenant's streams. Bounded:
/// past <see cref="Capacity"/> the oldest entry goes; a job it no longer holds (or never saw: submitted
/// before this API started) is looked up in the store once (<see cref="LiveFeed"/>).
/// Used by the feed's single loop only: not thread-safe.
/// </summary>
internal sealed class JobTenants(int capacity = JobTenants.DefaultCapacity)
{
    public const int DefaultCapacity = 50_000;

    private readonly Dictionary<Guid, string> _tenants = [];
    private readonly Queue<Guid> _order = new();

    public int Capacity => capacity;

    public int Count => _tenants.Count;

    public void Remember(Guid job, string tenant)
    {
        if (_tenants.TryAdd(job, tenant))
        {
            _order.Enqueue(job);
            while (_order.Count > capacity)
            {
                _tenants.Remove(_order.Dequeue());
            }
        }
    }

    public string? Of(Guid job) => _tenants.GetValueOrDefault(job);
}
