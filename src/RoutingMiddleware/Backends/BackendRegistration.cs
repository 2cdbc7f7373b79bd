using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ModelRouting.Backends;

/// <summary>Registers how the gateway talks to backends: credentials, header transforms and its own client.</summary>
internal static class BackendRegistration
{
    public static IReverseProxyBuilder AddModelRoutingBackends(this IReverseProxyBuilder builder)
    {
        var services = builder.Services;
        services.TryAddSingleton<BackendCredentials>();
        services.TryAddSingleton<BackendClient>();
        builder.AddTransforms<BackendHeaderTransforms>();
        return builder;
    }
}
