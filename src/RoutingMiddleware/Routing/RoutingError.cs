namespace ModelRouting.Routing;

/// <summary>Why a request could not be routed (seed <c>RoutingError</c>).</summary>
public enum RoutingErrorKind
{
    /// <summary>Neither an endpoint id nor an alias matches the requested model.</summary>
    ModelNotFound,

    /// <summary>The endpoint's context is smaller than the request needs.</summary>
    ContextTooLong,

    /// <summary>No model was requested and there is no default.</summary>
    NoModelsAvailable,

    /// <summary>The endpoint exists but is not Ready.</summary>
    ModelNotReady,
}

/// <summary>A routing failure as a value; the middleware maps it to an OpenAI error (SPEC §9).</summary>
/// <param name="Kind">What went wrong.</param>
/// <param name="Model">The model concerned.</param>
/// <param name="Required">The context the request needs.</param>
/// <param name="Available">The endpoint's context length.</param>
/// <param name="Status">The endpoint's status wire name, for <see cref="RoutingErrorKind.ModelNotReady"/>.</param>
/// <param name="Transient">Whether the gateway expects the endpoint to recover by itself (backend health, an adapter being loaded).</param>
public sealed record RoutingError(RoutingErrorKind Kind, string? Model, long Required = 0, long Available = 0, string? Status = null, bool Transient = false)
{
    /// <summary>Gets the seed's message for this error.</summary>
    public string Message => Kind switch
    {
        RoutingErrorKind.ModelNotFound => $"model '{Model}' not found",
        RoutingErrorKind.ContextTooLong => $"model '{Model}' cannot handle context length {Required} (max: {Available})",
        RoutingErrorKind.NoModelsAvailable => "no models are currently available",
        RoutingErrorKind.ModelNotReady => $"model '{Model}' is not ready (status: {Status})",
        _ => Kind.ToString(),
    };
}
