using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using ModelRouting.Failover;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Health;

/// <summary>
/// Reads YARP's destination health (active and passive checks, configured per cluster) at a short interval:
/// a cluster with health checks whose every destination is unhealthy makes its Ready endpoints read as Error
/// (503 <c>model_not_ready</c> with Retry-After instead of a connect failure), Ready again on recovery. The
/// routing state is swapped only when the set of unhealthy clusters changes; the request path reads nothing new.
/// When a cluster recovers, the failover cooldowns of the destinations its active health check found healthy
/// end: the check has seen them answer.
/// </summary>
internal sealed partial class ClusterHealthMonitor(
    ModelRegistrySource source,
    IProxyStateLookup proxy,
    IOptionsMonitor<ModelRoutingOptions> options,
    DestinationCooldowns cooldowns,
    ILogger<ClusterHealthMonitor> logger) : BackgroundService
{
    private static readonly TimeSpan s_minimumInterval = TimeSpan.FromMilliseconds(20);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            Poll();
            var interval = options.CurrentValue.Health.PollInterval;
            try
            {
                await Task.Delay(interval < s_minimumInterval ? s_minimumInterval : interval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Reads every cluster's destination health once and updates the conditions if the unhealthy set changed.</summary>
    internal void Poll()
    {
        var unhealthy = new HashSet<string>(StringComparer.Ordinal);
        if (options.CurrentValue.Health.Enabled)
        {
            foreach (var cluster in proxy.GetClusters())
            {
                if (IsDown(cluster))
                {
                    unhealthy.Add(cluster.ClusterId);
                }
            }
        }

        var before = source.Conditions.UnhealthyClusters;
        if (before.SetEquals(unhealthy))
        {
            return;
        }

        source.UpdateConditions(c => c.WithUnhealthyClusters(unhealthy));
        foreach (var down in unhealthy.Where(c => !before.Contains(c)))
        {
            Log.ClusterDown(logger, down);
        }

        foreach (var up in before.Where(c => !unhealthy.Contains(c)))
        {
            Log.ClusterUp(logger, up);
            if (proxy.TryGetCluster(up, out var cluster))
            {
                foreach (var destination in cluster.Destinations.Values.Where(d => d.Health.Active == DestinationHealth.Healthy))
                {
                    cooldowns.End(up, destination);
                }
            }
        }
    }

    private static bool IsDown(ClusterState cluster)
    {
        var health = cluster.Model.Config.HealthCheck;
        if (health?.Active?.Enabled != true && health?.Passive?.Enabled != true)
        {
            return false;
        }

        var any = false;
        foreach (var destination in cluster.Destinations.Values)
        {
            any = true;
            var state = destination.Health;
            if (state.Active != DestinationHealth.Unhealthy && state.Passive != DestinationHealth.Unhealthy)
            {
                return false;
            }
        }

        return any;
    }

    private static partial class Log
    {
        [LoggerMessage(30, LogLevel.Warning, "No destination of cluster '{Cluster}' is healthy: its Ready endpoints now read as Error.", EventName = "ClusterDown")]
        public static partial void ClusterDown(ILogger logger, string cluster);

        [LoggerMessage(31, LogLevel.Information, "Cluster '{Cluster}' has a healthy destination again: its endpoints are Ready.", EventName = "ClusterUp")]
        public static partial void ClusterUp(ILogger logger, string cluster);
    }
}
