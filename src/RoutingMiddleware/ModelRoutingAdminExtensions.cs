using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Admin;
using ModelRouting.Errors;
using ModelRouting.Proxy;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the model-routing runtime admin API.</summary>
public static class ModelRoutingAdminExtensions
{
    // The keys ASP.NET Core's UseAuthentication/UseAuthorization set, which WebApplication reads before adding them itself.
    private const string AuthenticationMiddlewareSetKey = "__AuthenticationMiddlewareSet";
    private const string AuthorizationMiddlewareSetKey = "__AuthorizationMiddlewareSet";

    /// <summary>
    /// Runs authentication and authorization (the admin key) for requests on the management listener only, so
    /// proxied traffic on the public listener pays nothing for them. Without this, a <c>WebApplication</c> adds
    /// both middlewares for every request as soon as an authentication scheme is registered. Call it after
    /// <c>Build()</c>, before the host's own authentication, if any (a host that authenticates its public
    /// endpoints should call <c>UseAuthentication()</c>/<c>UseAuthorization()</c> itself instead).
    /// </summary>
    public static IApplicationBuilder UseModelRoutingAdminAuthentication(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var listener = app.ApplicationServices.GetRequiredService<ManagementListener>();
        app.UseWhen(listener.IsManagementRequest, management =>
        {
            management.UseAuthentication();
            management.UseAuthorization();
        });
        app.Properties[AuthenticationMiddlewareSetKey] = true;
        app.Properties[AuthorizationMiddlewareSetKey] = true;
        return app;
    }

    /// <summary>
    /// Maps the admin API under <paramref name="prefix"/> (default <c>/admin</c>) as ASP.NET Core endpoints:
    /// <c>GET/PUT/DELETE {prefix}/endpoints/{id}</c>, <c>GET {prefix}/endpoints</c>, <c>PUT {prefix}/status/{id}</c>,
    /// <c>GET {prefix}/aliases</c>, <c>PUT/DELETE {prefix}/aliases/{alias}</c> and <c>PUT {prefix}/default</c>.
    /// They answer only on the management listener (<c>ModelRouting:Admin:Urls</c>, see
    /// <see cref="ModelRoutingManagementListenerExtensions.RequireManagementListener{TBuilder}"/>), 404 while
    /// <c>ModelRouting:Admin:Key</c> is not set, and 401 without <c>Authorization: Bearer &lt;key&gt;</c> (the
    /// <c>ModelRoutingAdmin</c> authentication scheme and authorization policy). The host must run
    /// authentication and authorization: <see cref="UseModelRoutingAdminAuthentication"/> runs them on the management
    /// listener only (ProxyHost does this); otherwise <c>WebApplication</c> adds both for every request.
    /// </summary>
    public static IEndpointConventionBuilder MapModelRoutingAdmin(this IEndpointRouteBuilder endpoints, string prefix = "/admin")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        _ = endpoints.ServiceProvider.GetService<ModelRoutingMarker>()
            ?? throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'AddModelRouting(...)' on the reverse proxy builder "
                + "('services.AddReverseProxy().LoadFromConfig(...).AddModelRouting(...)').");

        var group = endpoints.MapGroup(prefix);
        group.MapGet("/endpoints", AdminRequestDelegate.For<EndpointHandlers>(h => h.ListAsync));
        group.MapGet("/endpoints/{**id}", AdminRequestDelegate.For<EndpointHandlers>(h => h.GetAsync));
        group.MapPut("/endpoints/{**id}", AdminRequestDelegate.For<EndpointHandlers>(h => h.PutAsync));
        group.MapDelete("/endpoints/{**id}", AdminRequestDelegate.For<EndpointHandlers>(h => h.DeleteAsync));
        group.MapPut("/status/{**id}", AdminRequestDelegate.For<EndpointHandlers>(h => h.SetStatusAsync));
        group.MapGet("/aliases", AdminRequestDelegate.For<AliasHandlers>(h => h.ListAsync));
        group.MapPut("/aliases/{**alias}", AdminRequestDelegate.For<AliasHandlers>(h => h.PutAsync));
        group.MapDelete("/aliases/{**alias}", AdminRequestDelegate.For<AliasHandlers>(h => h.DeleteAsync));
        group.MapPut("/default", AdminRequestDelegate.For<DefaultHandlers>(h => h.PutAsync));
        group.MapGet("/keys", AdminRequestDelegate.For<KeyHandlers>(h => h.ListAsync));
        group.MapPost("/keys", AdminRequestDelegate.For<KeyHandlers>(h => h.CreateAsync));
        group.MapGet("/keys/{**id}", AdminRequestDelegate.For<KeyHandlers>(h => h.GetAsync));
        group.MapMethods("/keys/{**id}", [HttpMethods.Patch], AdminRequestDelegate.For<KeyHandlers>(h => h.UpdateAsync));
        group.MapDelete("/keys/{**id}", AdminRequestDelegate.For<KeyHandlers>(h => h.DeleteAsync));
        group.MapGet("/usage", AdminRequestDelegate.For<KeyHandlers>(h => h.UsageAsync));

        // Any other path or method under the prefix: an OpenAI-shaped 404 rather than routing's bare 404/405, and
        // the prefix stays reserved (never a catch-all proxy route's) on every listener.
        group.Map("/{**path}", static context => OpenAIError.NotFound("There is no such admin call.").WriteAsync(context));
        group.RequireManagementListener();
        group.RequireAuthorization(AdminServiceCollectionExtensions.PolicyName);
        return group;
    }
}
