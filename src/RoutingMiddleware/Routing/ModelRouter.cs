using ModelRouting.Registry;

namespace ModelRouting.Routing;

/// <summary>
/// Selects the endpoint for a request (seed <c>ModelRouter</c>): resolution with default fallback,
/// context-length awareness, and the OpenAI models list.
/// </summary>
/// <remarks>Thread-safe: it reads one immutable <see cref="ModelRegistry"/>.</remarks>
public sealed class ModelRouter(ModelRegistry registry)
{
    /// <summary>The <c>owned_by</c> value of the models list.</summary>
    public const string OwnedBy = "model-gateway";

    /// <summary>Gets the registry this router reads.</summary>
    public ModelRegistry Registry { get; } = registry;

    /// <summary>
    /// Resolves <paramref name="requestedModel"/> (id, then alias), or the default when it is null.
    /// The endpoint must be Ready.
    /// </summary>
    public RouteResult Route(string? requestedModel) => Route(requestedModel.AsSpan(), requestedModel is not null);

    /// <summary>Span form of <see cref="Route(string?)"/>; <paramref name="named"/> says whether a model was given.</summary>
    public RouteResult Route(ReadOnlySpan<char> requestedModel, bool named)
    {
        ModelEndpoint? endpoint;
        if (named)
        {
            endpoint = Registry.Resolve(requestedModel);
            if (endpoint is null)
            {
                return RouteResult.Fail(new RoutingError(RoutingErrorKind.ModelNotFound, requestedModel.ToString()));
            }
        }
        else
        {
            endpoint = Registry.DefaultEndpoint;
            if (endpoint is null)
            {
                return RouteResult.Fail(new RoutingError(RoutingErrorKind.NoModelsAvailable, null));
            }
        }

        if (!endpoint.Status.IsAvailable())
        {
            return RouteResult.Fail(new RoutingError(RoutingErrorKind.ModelNotReady, endpoint.Id.Value, Status: endpoint.Status.ToWireName(), Transient: endpoint.StatusReason is not null));
        }

        return new RouteResult(endpoint, null);
    }

    /// <summary>
    /// Routes with context awareness (SPEC §5). A named model that is too small is an error (no silent
    /// switch). With no model named and a default that is too small, the Ready endpoint with the largest
    /// context that fits is chosen; ties go to the first registered, so the choice is deterministic.
    /// </summary>
    public RouteResult RouteForContext(string? requestedModel, long requiredContext) =>
        RouteForContext(requestedModel.AsSpan(), requestedModel is not null, requiredContext);

    /// <summary>Span form of <see cref="RouteForContext(string?, long)"/>.</summary>
    public RouteResult RouteForContext(ReadOnlySpan<char> requestedModel, bool named, long requiredContext)
    {
        var result = Route(requestedModel, named);
        if (!result.Succeeded)
        {
            return result;
        }

        var endpoint = result.Endpoint;
        if (endpoint.MaxContextLength >= requiredContext)
        {
            return result;
        }

        var tooLong = new RoutingError(RoutingErrorKind.ContextTooLong, endpoint.Id.Value, requiredContext, endpoint.MaxContextLength);
        if (named)
        {
            return RouteResult.Fail(tooLong);
        }

        var fallback = FindLargestThatFits(requiredContext);
        return fallback is null ? RouteResult.Fail(tooLong) : new RouteResult(fallback, null, IsContextFallback: true);
    }

    /// <summary>Builds the OpenAI models list: one entry per Ready endpoint, in registration order.</summary>
    public IReadOnlyList<ModelListEntry> ModelsList() => [.. Registry.AvailableEndpoints.Select(ToListEntry)];

    /// <summary>Builds the models-list entry of one endpoint.</summary>
    public ModelListEntry ToListEntry(ModelEndpoint endpoint) => new(
        endpoint.Id.Value,
        endpoint.RegisteredAt.ToUnixTimeSeconds(),
        OwnedBy,
        endpoint.BaseModel,
        endpoint.HasAdapter ? FindParent(endpoint) : null,
        endpoint.MaxContextLength);

    private string FindParent(ModelEndpoint adapter)
    {
        foreach (var e in Registry.AllEndpoints)
        {
            if (!e.HasAdapter && e.BaseModel == adapter.BaseModel)
            {
                return e.Id.Value;
            }
        }

        return adapter.BaseModel;
    }

    private ModelEndpoint? FindLargestThatFits(long requiredContext)
    {
        ModelEndpoint? best = null;
        foreach (var e in Registry.AllEndpoints)
        {
            if (e.Status.IsAvailable() && e.MaxContextLength >= requiredContext && (best is null || e.MaxContextLength > best.MaxContextLength))
            {
                best = e;
            }
        }

        return best;
    }
}
