using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Admin;
using ModelRouting.Proxy;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the model-routing runtime admin API.</summary>
public static class ModelRoutingAdminExtensions
{
    /// <summary>
    /// Maps the admin API under <paramref name="prefix"/> (default <c>/admin</c>) as ASP.NET Core endpoints:
    /// <c>GET/PUT/DELETE {prefix}/endpoints/{id}</c>, <c>GET {prefix}/endpoints</c>, <c>PUT {prefix}/status/{id}</c>,
    /// <c>GET {prefix}/aliases</c>, <c>PUT/DELETE {prefix}/aliases/{alias}</c> and <c>PUT {prefix}/default</c>.
    /// Every call answers 404 unless <c>ModelRouting:Admin:Key</c> is set, and 401 without
    /// <c>Authorization: Bearer &lt;key&gt;</c>; with <c>ModelRouting:Admin:Urls</c> only on those ports.
    /// </summary>
    public static IEndpointConventionBuilder MapModelRoutingAdmin(this IEndpointRouteBuilder endpoints, string prefix = "/admin")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        _ = endpoints.ServiceProvider.GetService<ModelRoutingMarker>()
            ?? throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'AddModelRouting(...)' on the reverse proxy builder "
                + "('services.AddReverseProxy().LoadFromConfig(...).AddModelRouting(...)').");

        var group = endpoints.MapGroup(prefix);
        group.MapGet("/endpoints", AdminApi.Guard(a => a.ListAsync));
        group.MapGet("/endpoints/{**id}", AdminApi.Guard(a => a.GetAsync));
        group.MapPut("/endpoints/{**id}", AdminApi.Guard(a => a.PutAsync));
        group.MapDelete("/endpoints/{**id}", AdminApi.Guard(a => a.DeleteAsync));
        group.MapPut("/status/{**id}", AdminApi.Guard(a => a.SetStatusAsync));
        group.MapGet("/aliases", AdminApi.Guard(a => a.ListAliasesAsync));
        group.MapPut("/aliases/{**alias}", AdminApi.Guard(a => a.PutAliasAsync));
        group.MapDelete("/aliases/{**alias}", AdminApi.Guard(a => a.DeleteAliasAsync));
        group.MapPut("/default", AdminApi.Guard(a => a.PutDefaultAsync));
        return group;
    }
}
