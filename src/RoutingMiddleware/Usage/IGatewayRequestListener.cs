using Microsoft.AspNetCore.Http;

namespace ModelRouting.Usage;

/// <summary>
/// Told when the gateway is done with a request it routed or refused on the request path (SPEC §14, §15): after
/// the response was written or the request ended. Register implementations in DI; they run on the request's
/// thread, so they must be quick and must not throw.
/// </summary>
public interface IGatewayRequestListener
{
    /// <summary>Called once per request that reached the routing step, with what the gateway decided and saw.</summary>
    void OnRequestCompleted(HttpContext context, GatewayRequest request);
}
