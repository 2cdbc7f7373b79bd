using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;

namespace ModelRouting.Admin;

/// <summary>
/// Checks the management listener's URLs at start-up (a port 0 or a non-TCP address stops the host with a
/// message naming it) and logs where the admin API answers and where runtime state is kept.
/// </summary>
internal sealed class AdminStartup(
    ManagementListener listener,
    IOptions<ModelRoutingOptions> options,
    RuntimeStateStore store,
    ILogger<AdminStartup> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var key = !string.IsNullOrEmpty(options.Value.Admin.Key);
        AdminLog.Listener(
            logger,
            listener.IsEnabled ? listener.Urls : "off",
            !listener.IsEnabled ? "off (no management listener)" : key ? "on" : "off (no ModelRouting:Admin:Key)");
        if (store.Path is null)
        {
            AdminLog.StateInMemory(logger);
        }
        else
        {
            AdminLog.StateFile(logger, store.Path);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
