using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Admin;

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
        var api = endpoints.ServiceProvider.GetService<AdminApi>()
            ?? throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'AddModelRouting(...)' on the reverse proxy builder "
                + "('services.AddReverseProxy().LoadFromConfig(...).AddModelRouting(...)').");

        var group = endpoints.MapGroup(prefix);
        group.MapGet("/endpoints", api.Guard(api.ListAsync));
        group.MapGet("/endpoints/{**id}", api.Guard(api.GetAsync));
        group.MapPut("/endpoints/{**id}", api.Guard(api.PutAsync));
        group.MapDelete("/endpoints/{**id}", api.Guard(api.DeleteAsync));
        group.MapPut("/status/{**id}", api.Guard(api.SetStatusAsync));
        group.MapGet("/aliases", api.Guard(api.ListAliasesAsync));
        group.MapPut("/aliases/{**alias}", api.Guard(api.PutAliasAsync));
        group.MapDelete("/aliases/{**alias}", api.Guard(api.DeleteAliasAsync));
        group.MapPut("/default", api.Guard(api.PutDefaultAsync));
        return group;
    }
}
