using CqrsInference.Processors.Worker.Shadowing;
using Microsoft.Extensions.Time.Testing;

namespace CqrsInference.Tests.Shadows;

/// <summary>The shadow's check of the host's CPU: idle share between readings, one reading per window.</summary>
public sealed class SpareCpuTests
{
    [Fact]
    public void The_idle_share_between_two_readings_decides_and_a_reading_stands_for_a_window()
    {
        var clock = new FakeTimeProvider();
        var readings = new Queue<CpuTimes>([new(100, 1000), new(130, 1100), new(200, 1200)]);
        var reads = 0;
        var cpu = new SpareCpu(0.2, () => { reads++; return readings.Dequeue(); }, clock);

        cpu.HasRoom().ShouldBeFalse("one reading measures no share: no room is assumed");
        clock.Advance(SpareCpu.Window);
        cpu.HasRoom().ShouldBeTrue("30 of 100 idle");
        cpu.IdleShare.ShouldBe(0.3, 1e-9);

        clock.Advance(SpareCpu.Window / 2);
        cpu.HasRoom().ShouldBeTrue();
        reads.ShouldBe(2, "within a window the reading stands");

        clock.Advance(SpareCpu.Window);
        readings.Enqueue(new(205, 1300));
        cpu.HasRoom().ShouldBeTrue("70 of 100 idle");
        clock.Advance(SpareCpu.Window);
        cpu.HasRoom().ShouldBeFalse("5 of 100 idle: busy");
        cpu.IdleShare.ShouldBe(0.05, 1e-9);
    }

    [Fact]
    public void No_reading_or_no_minimum_means_room()
    {
        new SpareCpu(0.5, () => null, new FakeTimeProvider()).HasRoom().ShouldBeTrue();
        new SpareCpu(0, () => throw new InvalidOperationException("not read"), new FakeTimeProvider()).HasRoom().ShouldBeTrue();
    }

    [Theory]
    [InlineData("cpu  4705 356 584 3699 23 0 16 7 0 0", 3722, 9390)]
    [InlineData("cpu 10 0 10 80 0", 80, 100)]
    public void The_first_line_of_proc_stat_gives_idle_and_total(string line, long idle, long total) =>
        CpuTimes.Parse(line).ShouldBe(new CpuTimes(idle, total));

    [Theory]
    [InlineData("cpu0 1 2 3 4 5")]
    [InlineData("cpu 1 2")]
    [InlineData("cpu 1 x 3 4 5")]
    public void Other_lines_give_nothing(string line) => CpuTimes.Parse(line).ShouldBeNull();

    [Fact]
    public void The_host_is_read_on_Linux()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var host = CpuTimes.ReadHost().ShouldNotBeNull();
        host.Total.ShouldBeGreaterThan(host.Idle);
        host.Idle.ShouldBeGreaterThan(0);
    }
}
