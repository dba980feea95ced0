using CqrsInference.Projections;
using Npgsql;

namespace CqrsInference.Tests.Recording;

public sealed class DeadClientCheckTests
{
    [Theory]
    [InlineData("Host=db;Username=u", "-c client_connection_check_interval=2000")]
    [InlineData("Host=db;Options=-c statement_timeout=5000", "-c statement_timeout=5000 -c client_connection_check_interval=2000")]
    [InlineData("Host=db;Options=-c client_connection_check_interval=500", "-c client_connection_check_interval=500")]
    public void The_check_joins_the_start_up_options_unless_the_connection_string_sets_it(string connectionString, string options)
    {
        var built = new NpgsqlConnectionStringBuilder(DeadClientCheck.AddTo(connectionString));
        built.Options.ShouldBe(options);
        built.Host.ShouldBe("db");
    }

    [Theory]
    [InlineData("Host=db;Username=u", 5)]
    [InlineData("Host=db;Timeout=30", 30)]
    [InlineData("Host=db;timeout=1", 1)]
    public void Connections_wait_five_seconds_to_be_established_unless_the_connection_string_says(string connectionString, int seconds)
    {
        var built = new NpgsqlConnectionStringBuilder(ConnectTimeout.AddTo(connectionString));
        built.Timeout.ShouldBe(seconds);
        built.Host.ShouldBe("db");
        built.CommandTimeout.ShouldBe(30);
    }
}
