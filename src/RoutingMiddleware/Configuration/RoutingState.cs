using System.Collections.Frozen;
using ModelRouting.Keys;
using ModelRouting.Proxy;
using ModelRouting.Quotas;
using ModelRouting.Routing;

namespace ModelRouting.Configuration;

/// <summary>
/// Everything the request path reads, swapped as one immutable snapshot: the router (over its registry)
/// and the request-path settings that came with it.
/// </summary>
public sealed class RoutingState
{
    internal RoutingState(ModelRouter router, ModelRoutingOptions options, ClientKeySet? keys = null, IEnumerable<ModelEndpointOptions>? runtimeEndpoints = null)
    {
        Keys = keys ?? ClientKeySet.Empty;
        DefaultOutputTokens = Math.Max(0, options.Limits?.DefaultOutputTokens ?? 256);
        var scopes = new Dictionary<string, QuotaScope>(StringComparer.Ordinal);
        foreach (var entry in (options.Endpoints ?? []).Concat(runtimeEndpoints ?? []))
        {
            if (entry.Id is { } id && RateLimits.From(entry.Limits) is { } limits)
            {
                scopes[id] = new QuotaScope("endpoint:" + id, limits);
            }
        }

        EndpointScopes = scopes.ToFrozenDictionary(StringComparer.Ordinal);
        Router = router;
        MaxRequestBodyBytes = options.MaxRequestBodyBytes;
        RetryAfterSeconds = options.RetryAfterSeconds;
        InspectedPaths = (options.InspectedPaths is { Length: > 0 } paths ? paths : ModelRoutingOptions.DefaultInspectedPaths)
            .Select(p => p.TrimEnd('/'))
            .ToFrozenSet(StringComparer.OrdinalIgnoreCase);
        TokenEstimation = options.TokenEstimation;
        var failover = options.Failover ?? new FailoverOptions();
        MaxAttempts = Math.Max(1, failover.MaxAttempts);
        Cooldown = failover.Cooldown > TimeSpan.Zero ? failover.Cooldown : TimeSpan.Zero;
        RetryOn = (failover.RetryOn ?? FailoverOptions.DefaultRetryOn).ToFrozenSet();
        Surface = options.PassThroughPaths is { Length: > 0 } passThrough ? new ClientSurface(passThrough) : ClientSurface.Empty;
    }

    /// <summary>Gets the router over the current registry.</summary>
    public ModelRouter Router { get; }

    /// <summary>Gets the body size limit in bytes.</summary>
    public long MaxRequestBodyBytes { get; }

    /// <summary>Gets the Retry-After seconds for Loading endpoints.</summary>
    public int RetryAfterSeconds { get; }

    /// <summary>Gets the POST paths whose bodies are inspected.</summary>
    public FrozenSet<string> InspectedPaths { get; }

    /// <summary>Gets how many attempts a request gets at most (SPEC §13).</summary>
    public int MaxAttempts { get; }

    /// <summary>Gets how long a failed destination is skipped.</summary>
    public TimeSpan Cooldown { get; }

    /// <summary>Gets the backend statuses that are retried.</summary>
    public FrozenSet<int> RetryOn { get; }

    /// <summary>Gets what clients may reach besides the inspected paths.</summary>
    internal ClientSurface Surface { get; }

    /// <summary>Gets the client keys in force (empty: the gateway is open).</summary>
    internal ClientKeySet Keys { get; }

    /// <summary>Gets each limited endpoint's quota scope (endpoint id → scope).</summary>
    internal FrozenDictionary<string, QuotaScope> EndpointScopes { get; }

    /// <summary>Gets the output tokens reserved for a request that names no budget.</summary>
    public int DefaultOutputTokens { get; }

    /// <summary>Gets the token estimation settings.</summary>
    public TokenEstimationOptions TokenEstimation { get; }
}
