using System.Threading.Channels;
using CqrsInference.Messaging;
using CqrsInference.Processors.Worker;
using CqrsInference.Processors.Worker.Fetching;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace CqrsInference.Tests.Processors.Worker;

public sealed class QueueFetcherTests
{
    private static readonly JobQueue Home = new("local", "mlp-test", "interactive", "acme");
    private readonly FakeJobSource _source = new();
    private readonly Channel<JobDelivery> _deliveries = Channel.CreateUnbounded<JobDelivery>();

    private static ProcessorOptions Options() => new() { Region = "local", Scheduling = new SchedulingOptions { IdleScan = TimeSpan.FromMilliseconds(20) } };

    private async Task<Task> StartAsync(WorkerCapacity capacity, CancellationToken ct)
    {
        var fetcher = new QueueFetcher("mlp-test", _source, capacity, Options(), TimeProvider.System, NullLogger.Instance);
        var running = fetcher.RunAsync(_deliveries.Writer, ct);
        await Task.Yield();
        return running;
    }

    /// <summary>A fetcher on the real clock with an idle scan of <paramref name="idleScan"/>, until <paramref name="ct"/>.</summary>
    private Task RunFetcher(WorkerCapacity capacity, TimeSpan idleScan, CancellationToken ct) =>
        new QueueFetcher("mlp-test", _source, capacity,
            new ProcessorOptions { Region = "local", Scheduling = new SchedulingOptions { IdleScan = idleScan } }, TimeProvider.System, NullLogger.Instance)
            .RunAsync(_deliveries.Writer, ct);

    [Fact]
    public async Task It_pulls_only_what_free_capacity_can_hold_and_more_as_jobs_are_settled()
    {
        _source.Add(Home, Enumerable.Range(0, 10).Select(_ => Jobs.Delivery(Jobs.Command())).ToArray());
        var capacity = new WorkerCapacity(capacity: 3, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = await StartAsync(capacity, stop.Token);

        await Retry.Until("three jobs delivered", () => Task.FromResult(_deliveries.Reader.Count), n => n >= 3);
        await Task.Delay(100);
        _deliveries.Reader.Count.ShouldBe(3);
        capacity.Free.ShouldBe(0);

        _deliveries.Reader.TryRead(out _).ShouldBeTrue();
        _deliveries.Reader.TryRead(out _).ShouldBeTrue();
        capacity.Settled(2, 0);
        await Retry.Until("two more delivered", () => Task.FromResult(_deliveries.Reader.Count), n => n == 3);

        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_wake_up_for_a_job_the_counts_do_not_show_yet_waits_for_it_at_the_server()
    {
        var capacity = new WorkerCapacity(capacity: 4, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = await StartAsync(capacity, stop.Token);

        _source.WakeUp(Home);

        await Retry.Until("a pull that waits at the server", () => Task.FromResult(_source.Pulls.Any(p => p.Queue == Home && p.Wait is not null)), found => found);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task Capacity_that_changes_all_the_time_does_not_list_the_queues_each_time()
    {
        // Interactive jobs take and free places at their own rate; with nothing queued, that alone
        // is no reason to ask the server for its consumers again (it was, once per change).
        var capacity = new WorkerCapacity(capacity: 4, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = RunFetcher(capacity, TimeSpan.FromSeconds(1), stop.Token);

        var churn = System.Diagnostics.Stopwatch.StartNew();
        const int Changes = 300;
        for (var i = 0; i < Changes; i++)
        {
            capacity.TryTake(remote: false).ShouldBeTrue();
            Thread.Sleep(1);
            capacity.Settled(1, 0);
            await Task.Yield();
        }

        // About one listing per FreshFor (100 ms) of changes; once per change it would be ~300.
        var listings = _source.Listings;
        listings.ShouldBeLessThanOrEqualTo((int)(churn.ElapsedMilliseconds / 100) + 8, $"{listings} listings in {churn.ElapsedMilliseconds} ms");
        listings.ShouldBeLessThan(Changes / 4);

        // A job queued now is still found at once: its wake-up reads the queues again.
        _source.Add(Home, Jobs.Delivery(Jobs.Command()));
        _source.WakeUp(Home);
        await Retry.Until("the woken job delivered", () => Task.FromResult(_deliveries.Reader.Count), n => n == 1, TimeSpan.FromSeconds(2));
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task Wake_ups_under_load_read_the_woken_queue_not_every_queue_and_every_job_is_taken()
    {
        // A job queued every few milliseconds: each wake-up listed every queue of the model (every
        // tenant's), 200 CONSUMER.LIST requests a second at 400 jobs/s. Now a wake-up reads its own
        // queue's counts while the last listing is fresh (FreshFor, 100 ms).
        var capacity = new WorkerCapacity(capacity: 500, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = RunFetcher(capacity, TimeSpan.FromSeconds(5), stop.Token);
        await Retry.Until("the first listing", () => Task.FromResult(_source.Listings), n => n >= 1);

        var load = System.Diagnostics.Stopwatch.StartNew();
        const int Queued = 100;
        for (var i = 0; i < Queued; i++)
        {
            _source.Add(Home, Jobs.Delivery(Jobs.Command()));
            _source.WakeUp(Home);
            Thread.Sleep(3);
        }

        await Retry.Until("every job taken", () => Task.FromResult(_deliveries.Reader.Count), n => n == Queued, TimeSpan.FromSeconds(5));
        var listings = _source.Listings;
        listings.ShouldBeLessThanOrEqualTo((int)(load.ElapsedMilliseconds / 100) + 6, $"{listings} listings for {Queued} wake-ups in {load.ElapsedMilliseconds} ms");
        _source.StateReads.ShouldBeGreaterThan(0);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_slow_listing_many_tenants_make_is_not_repeated_back_to_back_while_wake_ups_are_served()
    {
        // Every queue listed takes 200 ms (hundreds of tenants' queues): listing again each 100 ms
        // under load kept the loop listing; now a listing stays fresh four times as long as it took.
        _source.ListingTakes = TimeSpan.FromMilliseconds(200);
        var capacity = new WorkerCapacity(capacity: 500, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = RunFetcher(capacity, TimeSpan.FromSeconds(5), stop.Token);
        await Retry.Until("the first listing", () => Task.FromResult(_source.Listings), n => n >= 1);

        var before = _source.Listings;
        var load = System.Diagnostics.Stopwatch.StartNew();
        var queued = 0;
        while (load.Elapsed < TimeSpan.FromSeconds(2))
        {
            _source.Add(Home, Jobs.Delivery(Jobs.Command()));
            _source.WakeUp(Home);
            queued++;
            Thread.Sleep(5);
        }

        // Counted while the wake-ups came (the wait for the last jobs below can take seconds on a
        // loaded machine, with a listing each second): about one listing a second, against one
        // every 200 ms, back to back, when each wake-up forced a listing.
        var listings = _source.Listings - before;
        var allowed = (int)Math.Ceiling(load.Elapsed / TimeSpan.FromSeconds(1)) + 1;
        await Retry.Until("every job taken", () => Task.FromResult(_deliveries.Reader.Count), n => n == queued, TimeSpan.FromSeconds(5));
        listings.ShouldBeLessThanOrEqualTo(allowed, $"{listings} listings of 200 ms in {load.ElapsedMilliseconds} ms of wake-ups");
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_wake_up_right_after_a_reading_of_the_queues_is_not_lost()
    {
        // The clock stands still: every reading is younger than the 2 ms a wake-up waits for. The
        // wake-up must be kept until the reading is old enough, not dropped until the idle scan (5 s).
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var capacity = new WorkerCapacity(capacity: 4, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var fetcher = new QueueFetcher("mlp-test", _source, capacity,
            new ProcessorOptions { Region = "local", Scheduling = new SchedulingOptions { IdleScan = TimeSpan.FromSeconds(5) } }, clock, NullLogger.Instance);
        var running = fetcher.RunAsync(_deliveries.Writer, stop.Token);
        await Retry.Until("the first reading", () => Task.FromResult(_source.Listings), n => n >= 1);

        _source.Add(Home, Jobs.Delivery(Jobs.Command()));
        _source.WakeUp(Home);
        await Task.Delay(200);
        clock.Advance(TimeSpan.FromMilliseconds(3));

        await Retry.Until("the woken job delivered", () => Task.FromResult(_deliveries.Reader.Count), n => n == 1, TimeSpan.FromSeconds(3));
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_listing_that_fails_is_tried_again_and_pulling_goes_on()
    {
        _source.FailListings = 2;
        _source.Add(Home, Jobs.Delivery(Jobs.Command()));
        var capacity = new WorkerCapacity(capacity: 2, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = await StartAsync(capacity, stop.Token);

        await Retry.Until("the job after the failures", () => Task.FromResult(_deliveries.Reader.Count), n => n == 1, TimeSpan.FromSeconds(10));
        _source.FailListings.ShouldBe(0);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task Other_regions_jobs_are_taken_only_within_the_remote_allowance()
    {
        var east = new JobQueue("east", "mlp-test", "interactive", "acme");
        _source.Add(east, Enumerable.Range(0, 30).Select(_ => Jobs.Delivery(Jobs.Command(region: "east"))).ToArray());
        var capacity = new WorkerCapacity(capacity: 8, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = await StartAsync(capacity, stop.Token);

        await Retry.Until("one remote job", () => Task.FromResult(_deliveries.Reader.Count), n => n >= 1);
        await Task.Delay(150);
        _deliveries.Reader.Count.ShouldBe(1);
        capacity.RemoteAllowance.ShouldBe(0);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task What_arrives_after_the_executors_stopped_taking_is_handed_back_at_once()
    {
        var ack = new FakeAck();
        _source.Add(Home, Jobs.Delivery(Jobs.Command(), ack: ack));
        _deliveries.Writer.TryComplete();
        var capacity = new WorkerCapacity(capacity: 2, remoteSlots: 1);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var running = await StartAsync(capacity, stop.Token);

        await Retry.Until("the job handed back", () => Task.FromResult(ack.Calls), calls => calls.SequenceEqual(["retry 0s"]));
        await stop.CancelAsync();
        await running;
        capacity.InFlight.ShouldBe(0);
    }
}
