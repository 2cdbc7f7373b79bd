using System.Diagnostics.CodeAnalysis;
using ModelRouting.Registry;

namespace ModelRouting.Routing;

/// <summary>The outcome of routing: an endpoint (possibly a context fallback) or an error.</summary>
public readonly record struct RouteResult(ModelEndpoint? Endpoint, RoutingError? Error, bool IsContextFallback = false)
{
    /// <summary>Gets whether an endpoint was chosen.</summary>
    [MemberNotNullWhen(true, nameof(Endpoint))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Succeeded => Endpoint is not null;

    internal static RouteResult Fail(RoutingError error) => new(null, error);
}
