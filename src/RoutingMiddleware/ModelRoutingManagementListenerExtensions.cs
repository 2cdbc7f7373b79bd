using ModelRouting.Admin;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Restricts endpoints to the model-routing management listener.</summary>
public static class ModelRoutingManagementListenerExtensions
{
    /// <summary>
    /// Makes the endpoints answer only on the management listener (<c>ModelRouting:Admin:Urls</c>, default
    /// <c>http://127.0.0.1:9090</c>; empty turns it off): on any other local port their paths answer 404
    /// (OpenAI-shaped) before authentication runs. The check uses the port the connection was accepted on,
    /// not the Host header. Needs <c>AddModelRouting(...)</c>, which registers the check.
    /// </summary>
    /// <typeparam name="TBuilder">The endpoint convention builder.</typeparam>
    /// <param name="builder">The endpoints to restrict.</param>
    /// <returns>The same builder.</returns>
    public static TBuilder RequireManagementListener<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Add(endpoint => endpoint.Metadata.Add(ManagementListenerMetadata.Instance));
        return builder;
    }
}
