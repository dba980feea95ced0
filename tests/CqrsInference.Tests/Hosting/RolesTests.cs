using CqrsInference.Api.Hosting;

namespace CqrsInference.Tests.Hosting;

public sealed class RolesTests
{
    [Fact]
    public void No_setting_runs_all_three_roles()
    {
        Roles.Parse(null).ShouldBe(new Roles(Api: true, Processor: true, Projections: true));
    }

    [Fact]
    public void A_single_role_runs_only_that_role()
    {
        Roles.Parse("processor").ShouldBe(new Roles(Api: false, Processor: true, Projections: false));
    }

    [Theory]
    [InlineData("api, projections")]
    [InlineData(" projections ,api,")]
    [InlineData("API,Projections")]
    [InlineData("api,api,projections")]
    public void A_list_of_roles_tolerates_spaces_case_and_repeats(string value)
    {
        var roles = Roles.Parse(value);
        roles.ShouldBe(new Roles(Api: true, Processor: false, Projections: true));
        roles.ToString().ShouldBe("api,projections");
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("api,gpu")]
    public void An_unknown_role_is_refused_with_a_message_naming_it(string value)
    {
        var error = Should.Throw<InvalidOperationException>(() => Roles.Parse(value));
        error.Message.ShouldContain("gpu");
    }

    [Theory]
    [InlineData("")]
    [InlineData(" , ")]
    public void An_empty_role_list_is_refused(string value)
    {
        Should.Throw<InvalidOperationException>(() => Roles.Parse(value));
    }
}
