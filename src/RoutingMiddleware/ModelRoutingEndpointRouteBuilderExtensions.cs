using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Proxy;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the gateway's own client endpoints.</summary>
public static class ModelRoutingEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>GET /v1/models</c>, <c>GET /v1/models/{id}</c> (ids and aliases may hold <c>:</c> and <c>/</c>),
    /// <c>/healthz</c> and <c>/readyz</c> as ordinary endpoints, ahead of any proxy route on the same paths, and an
    /// OpenAI-shaped 404 (<c>unknown_path</c>) for every path that no endpoint or proxy route serves. Returns a
    /// builder for the group, so a host can add its own policies (authorization, CORS, rate limiting).
    /// </summary>
    public static IEndpointConventionBuilder MapModelRouting(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        _ = endpoints.ServiceProvider.GetService<ModelRoutingMarker>()
            ?? throw new InvalidOperationException(
                "Unable to find the required services. Add them by calling 'AddModelRouting(...)' on the reverse proxy builder "
                + "('services.AddReverseProxy().LoadFromConfig(...).AddModelRouting(...)').");

        var group = endpoints.MapGroup("");
        string[] get = [HttpMethods.Get, HttpMethods.Head];

        // Order -1: these paths are the gateway's, even where a proxy route's pattern covers them too.
        group.MapMethods("/v1/models", get, GatewayEndpoints.ListModels).WithOrder(-1).WithDisplayName("Model routing: models list");
        group.MapMethods("/v1/models/{**id}", get, GatewayEndpoints.GetModel).WithOrder(-1).WithDisplayName("Model routing: model");
        group.MapMethods("/healthz", get, GatewayEndpoints.Health).WithOrder(-1).WithDisplayName("Model routing: health").WithMetadata(HealthEndpointMetadata.Instance);
        group.MapMethods("/readyz", get, GatewayEndpoints.Ready).WithOrder(-1).WithDisplayName("Model routing: readiness").WithMetadata(HealthEndpointMetadata.Instance);
        group.MapFallback("{**path}", GatewayEndpoints.UnknownPath).WithDisplayName("Model routing: unknown path");
        return group;
    }
}
