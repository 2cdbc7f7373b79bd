using System.Collections.Frozen;
using System.Collections.Immutable;
using ModelRouting.Registry;

namespace ModelRouting.Health;

/// <summary>
/// What the gateway observed about backends, layered over the administered registry to give the effective
/// status the request path reads: a cluster with no healthy destination, an adapter being loaded, what
/// discovery found. Only a Ready endpoint is affected: a configured or administered status (Disabled,
/// Loading, Error) always wins. Immutable; changes return a new instance (or this one when nothing changed).
/// </summary>
internal sealed record EndpointConditions(
    FrozenSet<string> UnhealthyClusters,
    ImmutableDictionary<string, AdapterLoadState> AdapterLoads,
    ImmutableDictionary<string, DiscoveredModels> Discovered)
{
    public static EndpointConditions Empty { get; } = new(
        FrozenSet<string>.Empty,
        ImmutableDictionary<string, AdapterLoadState>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableDictionary<string, DiscoveredModels>.Empty.WithComparers(StringComparer.Ordinal));

    public EndpointConditions WithUnhealthyClusters(IReadOnlySet<string> clusters) =>
        UnhealthyClusters.SetEquals(clusters) ? this : this with { UnhealthyClusters = clusters.ToFrozenSet(StringComparer.Ordinal) };

    public EndpointConditions WithAdapterLoad(string id, AdapterLoadState? state)
    {
        if (state is null)
        {
            return AdapterLoads.ContainsKey(id) ? this with { AdapterLoads = AdapterLoads.Remove(id) } : this;
        }

        return this with { AdapterLoads = AdapterLoads.SetItem(id, state) };
    }

    public EndpointConditions WithDiscovered(string cluster, DiscoveredModels? models)
    {
        if (models is null)
        {
            return Discovered.ContainsKey(cluster) ? this with { Discovered = Discovered.Remove(cluster) } : this;
        }

        return Discovered.TryGetValue(cluster, out var old) && old.Signature == models.Signature
            ? this
            : this with { Discovered = Discovered.SetItem(cluster, models) };
    }

    /// <summary>Applies the conditions to <paramref name="administered"/>; returns it unchanged when none apply.</summary>
    public ModelRegistry ApplyTo(ModelRegistry administered)
    {
        if (UnhealthyClusters.Count == 0 && AdapterLoads.IsEmpty && Discovered.IsEmpty)
        {
            return administered;
        }

        return administered.Map(Apply);
    }

    private ModelEndpoint Apply(ModelEndpoint endpoint)
    {
        if (Discovered.TryGetValue(endpoint.Cluster, out var discovered)
            && discovered.TryGetContextLength(endpoint.UpstreamModel, out var context)
            && context != endpoint.MaxContextLength)
        {
            endpoint = endpoint with { MaxContextLength = context };
        }

        if (endpoint.Status != EndpointStatus.Ready)
        {
            return endpoint;
        }

        if (UnhealthyClusters.Contains(endpoint.Cluster))
        {
            return endpoint with { Status = EndpointStatus.Error, StatusReason = $"no destination of cluster '{endpoint.Cluster}' is healthy" };
        }

        if (AdapterLoads.TryGetValue(endpoint.Id.Value, out var load))
        {
            // Ready: the gateway saw the adapter loaded on a destination (requests go only to those, AdapterPlacement).
            return load.Status == EndpointStatus.Ready ? endpoint : endpoint with { Status = load.Status, StatusReason = load.Reason };
        }

        if (discovered is not null && endpoint.HasAdapter && !discovered.Lists(endpoint.UpstreamModel))
        {
            return endpoint with { Status = EndpointStatus.Loading, StatusReason = $"no backend of cluster '{endpoint.Cluster}' lists '{endpoint.UpstreamModel}' yet" };
        }

        return endpoint;
    }
}

/// <summary>
/// The state of a dynamic adapter load; <paramref name="Attempt"/> tells a stale completion from the current one.
/// <paramref name="LoadedOn"/> holds the addresses of the destinations the adapter is loaded on (null: not tracked
/// per destination); the endpoint is Ready while that is not empty and requests go only to those destinations.
/// </summary>
internal sealed record AdapterLoadState(EndpointStatus Status, string Reason, long Attempt, IReadOnlySet<string>? LoadedOn = null)
{
    /// <summary>Returns whether <paramref name="other"/> says the same (status, reason, destinations) for the same attempt.</summary>
    public bool SameAs(AdapterLoadState other) =>
        Status == other.Status && Reason == other.Reason && Attempt == other.Attempt
        && (ReferenceEquals(LoadedOn, other.LoadedOn) || (LoadedOn is not null && other.LoadedOn is not null && LoadedOn.SetEquals(other.LoadedOn)));
}

/// <summary>The models a cluster's backends list on <c>GET /v1/models</c> (vLLM's shape).</summary>
internal sealed class DiscoveredModels
{
    private readonly Dictionary<string, (string? Parent, int? MaxModelLength)> _models;

    public DiscoveredModels(IEnumerable<(string Id, string? Parent, int? MaxModelLength)> models)
    {
        _models = new Dictionary<string, (string?, int?)>(StringComparer.Ordinal);
        foreach (var (id, parent, length) in models)
        {
            if (!_models.TryGetValue(id, out var known) || known.MaxModelLength is null)
            {
                _models[id] = (parent, length);
            }
        }

        Signature = string.Join("\n", _models.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => $"{m.Key}|{m.Value.Parent}|{m.Value.MaxModelLength}"));
    }

    /// <summary>Gets a canonical text of the content, to tell whether anything changed.</summary>
    public string Signature { get; }

    public bool Lists(string model) => _models.ContainsKey(model);

    /// <summary>Gets the model's context length; an adapter (vLLM reports null) inherits its parent's.</summary>
    public bool TryGetContextLength(string model, out int length)
    {
        length = 0;
        for (var (current, hops) = (model, 0); hops < 4 && _models.TryGetValue(current, out var entry); hops++)
        {
            if (entry.MaxModelLength is { } known and > 0)
            {
                length = known;
                return true;
            }

            if (entry.Parent is null)
            {
                return false;
            }

            current = entry.Parent;
        }

        return false;
    }
}
