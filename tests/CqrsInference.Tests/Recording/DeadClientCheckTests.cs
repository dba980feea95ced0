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
}
