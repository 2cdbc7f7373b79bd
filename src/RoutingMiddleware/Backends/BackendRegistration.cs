using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ModelRouting.Backends;

/// <summary>Registers how the gateway talks to backends: credentials and header transforms.</summary>
internal static class BackendRegistration
{
    public static IReverseProxyBuilder AddModelRoutingBackends(this IReverseProxyBuilder builder)
    {
        var services = builder.Services;
        services.TryAddSingleton<BackendCredentials>();
        builder.AddTransforms<BackendHeaderTransforms>();
        return builder;
    }
}
