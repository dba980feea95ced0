using CqrsInference.Commands.Jobs;

namespace CqrsInference.Tests.Jobs.Lifecycle;

public sealed class DeterministicGuidTests
{
    private static readonly Guid DnsNamespace = new("6ba7b810-9dad-11d1-80b4-00c04fd430c8");

    private static void ShouldBeVersion5(Guid id)
    {
        var bytes = id.ToByteArray(bigEndian: true);
        (bytes[6] >> 4).ShouldBe(5);
        (bytes[8] & 0xC0).ShouldBe(0x80);
        id.Version.ShouldBe(5);
    }

    [Fact]
    public void Matches_the_RFC_9562_example_for_www_example_com_in_the_DNS_namespace()
    {
        DeterministicGuid.Create(DnsNamespace, "www.example.com").ShouldBe(new Guid("2ed6657d-e927-568b-95e1-2665a8aea6a2"));
    }

    [Fact]
    public void Same_tenant_and_key_give_the_same_id()
    {
        DeterministicGuid.ForIdempotencyKey("acme", "order-1").ShouldBe(DeterministicGuid.ForIdempotencyKey("acme", "order-1"));
    }

    [Fact]
    public void Different_tenant_or_key_gives_a_different_id()
    {
        var id = DeterministicGuid.ForIdempotencyKey("acme", "order-1");
        DeterministicGuid.ForIdempotencyKey("globex", "order-1").ShouldNotBe(id);
        DeterministicGuid.ForIdempotencyKey("acme", "order-2").ShouldNotBe(id);
        DeterministicGuid.ForIdempotencyKey("Acme", "order-1").ShouldNotBe(id);
    }

    [Fact]
    public void Tenant_and_key_are_separated_so_they_cannot_be_shifted_into_each_other()
    {
        DeterministicGuid.ForIdempotencyKey("ab", "c").ShouldNotBe(DeterministicGuid.ForIdempotencyKey("a", "bc"));
    }

    [Theory]
    [InlineData("acme", "order-1")]
    [InlineData("", "")]
    [InlineData("tenant", "ключ-ü-🙂")]
    public void Ids_are_version_5_with_the_RFC_variant(string tenant, string key)
    {
        ShouldBeVersion5(DeterministicGuid.ForIdempotencyKey(tenant, key));
    }

    [Fact]
    public void Event_ids_are_stable_and_differ_per_event_name_and_attempt()
    {
        var job = DeterministicGuid.ForIdempotencyKey("acme", "order-1");
        var started1 = DeterministicGuid.ForEvent(job, EventNames.JobStarted, 1);

        DeterministicGuid.ForEvent(job, EventNames.JobStarted, 1).ShouldBe(started1);
        DeterministicGuid.ForEvent(job, EventNames.JobStarted, 2).ShouldNotBe(started1);
        DeterministicGuid.ForEvent(job, EventNames.JobSucceeded, 1).ShouldNotBe(started1);
        DeterministicGuid.ForEvent(DeterministicGuid.ForIdempotencyKey("acme", "order-2"), EventNames.JobStarted, 1).ShouldNotBe(started1);
        ShouldBeVersion5(started1);
    }

    [Fact]
    public void Event_ids_of_all_events_and_attempts_of_a_job_are_distinct()
    {
        var job = DeterministicGuid.ForIdempotencyKey("acme", "order-1");
        var ids = EventNames.Types.Keys
            .SelectMany(name => Enumerable.Range(1, 5).Select(attempt => DeterministicGuid.ForEvent(job, name, attempt)))
            .ToList();
        ids.Distinct().Count().ShouldBe(ids.Count);
        ids.ShouldNotContain(job);
    }
}
