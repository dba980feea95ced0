using System.Runtime.CompilerServices;
using CqrsInference.Api.Hosting;

namespace CqrsInference.Tests.Infrastructure;

/// <summary>
/// The application hosted in this process (WebApplicationFactory) must fail its start with the
/// exception itself, which the tests read: as a process of its own it ends with one line and an
/// exit code instead (<see cref="HostExit"/>). The child processes the tests start are processes of
/// their own, and AppContext switches are not inherited.
/// </summary>
internal static class InProcessHosting
{
    [ModuleInitializer]
    internal static void RethrowStartFailures() => AppContext.SetSwitch(HostExit.RethrowSwitch, true);
}
