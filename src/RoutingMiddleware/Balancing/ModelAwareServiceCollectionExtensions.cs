using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Yarp.ReverseProxy.LoadBalancing;

namespace ModelRouting.Balancing;

internal static class ModelAwareServiceCollectionExtensions
{
    /// <summary>Registers the <c>ModelAware</c> policy (chosen per cluster by name), its state and its metrics scraper.</summary>
    public static IServiceCollection AddModelAwareLoadBalancing(this IServiceCollection services)
    {
        services.TryAddSingleton<ModelAwareState>();
        services.AddSingleton<ILoadBalancingPolicy, ModelAwarePolicy>();
        services.AddHostedService<MetricsScraper>();
        return services;
    }
}
