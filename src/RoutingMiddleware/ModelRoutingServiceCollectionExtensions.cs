using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelRouting.Adapters;
using ModelRouting.Admin;
using ModelRouting.Backends;
using ModelRouting.Balancing;
using ModelRouting.Configuration;
using ModelRouting.Discovery;
using ModelRouting.Failover;
using ModelRouting.Health;
using ModelRouting.Inspection;
using ModelRouting.Proxy;
using ModelRouting.Quotas;
using ModelRouting.SharedState;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds model routing to a YARP reverse proxy.</summary>
public static class ModelRoutingServiceCollectionExtensions
{
    /// <summary>
    /// Adds model routing, bound to <paramref name="configuration"/> (the <c>ModelRouting</c> section) and
    /// following its reloads. Call after <c>LoadFromConfig</c>/<c>LoadFromMemory</c>: the proxy's
    /// configuration providers are wrapped so the routes model routing needs are generated.
    /// </summary>
    public static IReverseProxyBuilder AddModelRouting(this IReverseProxyBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configuration);
        builder.Services.Configure<ModelRoutingOptions>(configuration);
        return builder.AddModelRoutingCore();
    }

    /// <summary>Adds model routing configured in code. Call after <c>LoadFromConfig</c>/<c>LoadFromMemory</c>.</summary>
    public static IReverseProxyBuilder AddModelRouting(this IReverseProxyBuilder builder, Action<ModelRoutingOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.Configure(configure);
        return builder.AddModelRoutingCore();
    }

    private static IReverseProxyBuilder AddModelRoutingCore(this IReverseProxyBuilder builder)
    {
        var services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(ModelRoutingMarker)))
        {
            return builder;
        }

        var providers = services.Where(d => d.ServiceType == typeof(IProxyConfigProvider) && !d.IsKeyedService).ToList();
        if (providers.Count == 0)
        {
            throw new InvalidOperationException(
                "AddModelRouting() found no proxy configuration: call LoadFromConfig(...) or LoadFromMemory(...) on the reverse proxy builder before AddModelRouting().");
        }

        foreach (var descriptor in providers)
        {
            services.Remove(descriptor);
        }

        services.AddSingleton<ModelRoutingMarker>();
        services.AddSingleton(sp => new ModelRoutingProxyConfigProvider(
            [.. providers.Select(d => Create(sp, d))], sp.GetRequiredService<ILogger<ModelRoutingProxyConfigProvider>>()));
        services.AddSingleton<IProxyConfigProvider>(sp => sp.GetRequiredService<ModelRoutingProxyConfigProvider>());
        services.AddSingleton<ProxyConfigAppliedSignal>();
        services.TryAddSingleton<DestinationCooldowns>();
        services.AddSingleton<IForwarderHttpClientFactory, GatewayForwarderHttpClientFactory>();
        builder.AddTransforms<FailoverTransforms>();
        services.AddSingleton<IConfigChangeListener>(sp => sp.GetRequiredService<ProxyConfigAppliedSignal>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<RedisConnection>();
        services.TryAddSingleton<SharedOverlayStore>();
        services.TryAddSingleton<IQuotaStore>(sp => sp.GetRequiredService<RedisConnection>().Enabled
            ? ActivatorUtilities.CreateInstance<RedisQuotaStore>(sp)
            : new InProcessQuotaStore(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<UsageLedger>();
        services.TryAddSingleton<SharedUsage>();
        services.TryAddSingleton<ITokenCounter>(HeuristicTokenCounter.Instance);
        services.TryAddSingleton<BackendPromptCounter>();
        services.TryAddSingleton(sp => new PromptTokenEstimator(
            sp.GetRequiredService<IOptionsMonitor<ModelRoutingOptions>>(),
            sp.GetRequiredService<ITokenCounter>(),
            sp.GetRequiredService<BackendPromptCounter>()));
        services.AddModelRoutingAdmin();
        services.TryAddSingleton(sp => new ModelRegistrySource(
            sp.GetRequiredService<IOptionsMonitor<ModelRoutingOptions>>(),
            sp.GetRequiredService<ModelRoutingProxyConfigProvider>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ModelRegistrySource>>(),
            sp.GetRequiredService<RuntimeStateStore>(),
            sp.GetRequiredService<ProxyConfigAppliedSignal>(),
            sp.GetRequiredService<SharedOverlayStore>()));
        services.TryAddSingleton<VllmAdapterManager>();
        services.AddModelAwareLoadBalancing();
        services.AddHostedService<ModelRoutingStartup>();
        services.AddHostedService<SharedOverlaySync>();
        services.AddHostedService<SharedCooldowns>();
        services.AddHostedService(sp => sp.GetRequiredService<SharedUsage>());
        services.AddHostedService<ClusterHealthMonitor>();
        services.AddHostedService<ModelDiscoveryService>();
        builder.AddModelRoutingBackends();
        return builder;
    }

    private static IProxyConfigProvider Create(IServiceProvider services, ServiceDescriptor descriptor) =>
        (IProxyConfigProvider)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));
}

/// <summary>Shows that <c>AddModelRouting()</c> was called.</summary>
internal sealed class ModelRoutingMarker;

/// <summary>Builds the registry at start-up so invalid configuration stops the host with every error listed.</summary>
internal sealed class ModelRoutingStartup(ModelRegistrySource source) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = source.Current;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
