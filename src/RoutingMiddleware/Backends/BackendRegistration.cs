using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ModelRouting.Adapters;

namespace ModelRouting.Backends;

/// <summary>Registers how the gateway talks to backends: credentials, header transforms, its own client, adapter reconciliation.</summary>
internal static class BackendRegistration
{
    public static IReverseProxyBuilder AddModelRoutingBackends(this IReverseProxyBuilder builder)
    {
        var services = builder.Services;
        services.TryAddSingleton<BackendCredentials>();
        services.TryAddSingleton<BackendClient>();
        builder.AddTransforms<BackendHeaderTransforms>();
        services.TryAddSingleton<AdapterReconciler>();
        services.AddHostedService(sp => sp.GetRequiredService<AdapterReconciler>());
        return builder;
    }
}
