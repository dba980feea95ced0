using CqrsInference.Processors.Runtime;

namespace CqrsInference.Tests.Processors.Runtime;

public sealed class ThreadsPerRunTests
{
    [Theory]
    [InlineData(1, 2, 2)]   // one slot: the batch uses every core
    [InlineData(2, 2, 1)]   // a slot per core: one thread each
    [InlineData(3, 2, 1)]   // more slots than cores: never less than one thread
    [InlineData(2, 16, 8)]
    [InlineData(0, 4, 4)]
    public void Auto_shares_the_cores_among_the_models_slots(int slots, int cores, int threads) =>
        new RuntimeOptions().ThreadsPerRun(slots, cores).ShouldBe(threads);

    [Fact]
    public void A_configured_thread_count_is_used_as_it_is() =>
        new RuntimeOptions { IntraOpThreads = 3 }.ThreadsPerRun(slots: 1, cores: 16).ShouldBe(3);
}
