using Microsoft.AspNetCore.Http;
using ModelRouting.Errors;
using ModelRouting.Health;
using ModelRouting.Registry;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Adapters;

/// <summary>
/// Sends a request for a reconciled runtime adapter only to destinations the adapter is loaded on
/// (<see cref="AdapterReconciler"/>): narrows the proxy feature's available destinations after the request was
/// reassigned to the endpoint's cluster and before load balancing. Other endpoints are left alone.
/// </summary>
internal static class AdapterPlacement
{
    /// <summary>
    /// Narrows the available destinations to those <paramref name="endpoint"/>'s adapter is loaded on; returns false
    /// when none of the available destinations has it (answer <see cref="NotPlaced"/>).
    /// </summary>
    public static bool TryNarrow(HttpContext context, ModelEndpoint endpoint, EndpointConditions conditions)
    {
        var loads = conditions.AdapterLoads;
        if (loads.IsEmpty || !loads.TryGetValue(endpoint.Id.Value, out var load) || load.LoadedOn is not { } loadedOn)
        {
            return true;
        }

        var feature = context.GetReverseProxyFeature();
        var available = feature.AvailableDestinations;
        var matching = 0;
        foreach (var destination in available)
        {
            matching += loadedOn.Contains(destination.Model.Config.Address) ? 1 : 0;
        }

        if (matching == available.Count)
        {
            // Every available destination has it (or none is available: YARP answers that as for any endpoint).
            return true;
        }

        if (matching == 0)
        {
            return false;
        }

        var narrowed = new List<DestinationState>(matching);
        foreach (var destination in available)
        {
            if (loadedOn.Contains(destination.Model.Config.Address))
            {
                narrowed.Add(destination);
            }
        }

        feature.AvailableDestinations = narrowed;
        return true;
    }

    /// <summary>The error for a request whose adapter is loaded on no available destination.</summary>
    public static OpenAIError NotPlaced(ModelEndpoint endpoint, int retryAfterSeconds) =>
        OpenAIError.UpstreamUnavailable(StatusCodes.Status503ServiceUnavailable,
            $"No available backend of cluster '{endpoint.Cluster}' has the adapter of model `{endpoint.Id}` loaded yet.")
        with { RetryAfterSeconds = retryAfterSeconds };
}
