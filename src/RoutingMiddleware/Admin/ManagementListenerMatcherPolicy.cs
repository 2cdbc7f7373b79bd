using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Matching;
using ModelRouting.Errors;
using ModelRouting.Proxy;

namespace ModelRouting.Admin;

/// <summary>
/// Keeps the management listener and the public listener apart while routing selects an endpoint, by the
/// port the connection was accepted on (<see cref="ConnectionInfo.LocalPort"/>), never by the Host header:
/// on a public port, a path a management endpoint matches answers 404 (OpenAI-shaped) and goes nowhere else
/// (not to a catch-all proxy route either: an admin key must never reach a backend); on a management port,
/// only management endpoints and the health endpoints (<c>/healthz</c>, <c>/readyz</c>, served on both) are
/// candidates: no proxy route, no client endpoint.
/// </summary>
/// <remarks>
/// A matcher policy rather than an endpoint filter: it runs before authentication and authorization, so a
/// call on the wrong listener gets the same 404 with or without a key and never a 401 that reveals the API.
/// ASP.NET Core's own <c>HttpMethodMatcherPolicy</c> answers 405 the same way, with an endpoint of its own.
/// </remarks>
internal sealed class ManagementListenerMatcherPolicy(ManagementListener listener) : MatcherPolicy, IEndpointSelectorPolicy
{
    private static readonly Endpoint s_notOnPublicListener = new(
        context => OpenAIError.NotFound("Not found. The management API answers only on the management listener (ModelRouting:Admin:Urls).").WriteAsync(context),
        EndpointMetadataCollection.Empty,
        "404 Management endpoint on the public listener");

    private static readonly Endpoint s_notOnManagementListener = new(
        context => OpenAIError.NotFound("Not found. This is the management listener: the gateway's models are served on its public listener.").WriteAsync(context),
        EndpointMetadataCollection.Empty,
        "404 Proxy route on the management listener");

    /// <inheritdoc />
    public override int Order => -500;

    /// <inheritdoc />
    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) =>
        endpoints.Any(e => !IsHealth(e));

    /// <inheritdoc />
    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        var onManagement = listener.IsManagementRequest(httpContext);
        var rejected = false;
        var anyValid = false;
        for (var i = 0; i < candidates.Count; i++)
        {
            if (!candidates.IsValidCandidate(i))
            {
                continue;
            }

            var endpoint = candidates[i].Endpoint;
            if (!onManagement && IsManagement(endpoint))
            {
                // A management path on the public listener: 404, whatever else matches.
                httpContext.SetEndpoint(s_notOnPublicListener);
                return Task.CompletedTask;
            }

            if (onManagement && !IsManagement(endpoint) && !IsHealth(endpoint))
            {
                candidates.SetValidity(i, false);
                rejected = true;
                continue;
            }

            anyValid = true;
        }

        if (rejected && !anyValid)
        {
            httpContext.SetEndpoint(s_notOnManagementListener);
        }

        return Task.CompletedTask;
    }

    private static bool IsManagement(Endpoint endpoint) => endpoint.Metadata.GetMetadata<ManagementListenerMetadata>() is not null;

    private static bool IsHealth(Endpoint endpoint) => endpoint.Metadata.GetMetadata<HealthEndpointMetadata>() is not null;
}
