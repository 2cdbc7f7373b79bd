using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Proxy;

/// <summary>
/// Tells the routing state when YARP has applied a new proxy configuration, so the registry is checked
/// against the clusters requests can really be sent to, not ones YARP has yet to apply.
/// </summary>
internal sealed class ProxyConfigAppliedSignal : IConfigChangeListener
{
    /// <summary>Raised with the cluster ids in force after YARP applied a configuration.</summary>
    public event Action<IReadOnlySet<string>>? Applied;

    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs) =>
        Applied?.Invoke(proxyConfigs.SelectMany(c => c.Clusters).Select(c => c.ClusterId).ToHashSet(StringComparer.Ordinal));

    public void ConfigurationApplyingFailed(IReadOnlyList<IProxyConfig> proxyConfigs, Exception exception)
    {
    }

    public void ConfigurationLoaded(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
    }

    public void ConfigurationLoadingFailed(IProxyConfigProvider configProvider, Exception exception)
    {
    }
}
