using System.Collections.Frozen;
using ModelRouting.Configuration;
using ModelRouting.Quotas;
using ModelRouting.Registry;

namespace ModelRouting.Keys;

/// <summary>A client key as the request path uses it (SPEC §14): who, which models, which limits.</summary>
internal sealed class ClientKey
{
    public ClientKey(string id, byte[] hash, ModelGrant grant, RateLimits? limits, bool enabled, DateTimeOffset? expiresAt, bool fromConfiguration, DateTimeOffset created, IReadOnlyList<string> models)
    {
        Id = id;
        Hash = hash;
        Grant = grant;
        Limits = limits;
        Enabled = enabled;
        ExpiresAt = expiresAt;
        FromConfiguration = fromConfiguration;
        Created = created;
        Models = models;
        Scope = limits is null ? null : new QuotaScope("key:" + id, limits);
    }

    public string Id { get; }

    /// <summary>Gets the SHA-256 of the secret.</summary>
    public byte[] Hash { get; }

    public ModelGrant Grant { get; }

    public RateLimits? Limits { get; }

    public bool Enabled { get; }

    public DateTimeOffset? ExpiresAt { get; }

    /// <summary>Gets whether the key is defined in configuration (changed there) rather than through the admin API.</summary>
    public bool FromConfiguration { get; }

    public DateTimeOffset Created { get; }

    /// <summary>Gets the model entries as given (ids, aliases, patterns).</summary>
    public IReadOnlyList<string> Models { get; }

    /// <summary>Gets the key's quota scope, or null when it has no limits.</summary>
    public QuotaScope? Scope { get; }
}

/// <summary>
/// The models a key may use, compiled from its entries: endpoint ids, aliases (resolved to their endpoint),
/// <c>base:*</c> (the base endpoint and every endpoint whose id starts with <c>base:</c>) and <c>*</c>.
/// </summary>
internal sealed class ModelGrant
{
    private readonly FrozenSet<string> _ids;
    private readonly string[] _prefixes;

    private ModelGrant(bool all, FrozenSet<string> ids, string[] prefixes)
    {
        All = all;
        _ids = ids;
        _prefixes = prefixes;
    }

    /// <summary>Gets whether the key may use every model.</summary>
    public bool All { get; }

    public static ModelGrant Compile(IEnumerable<string> entries, ModelRegistry registry)
    {
        var all = false;
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var prefixes = new List<string>();
        foreach (var entry in entries)
        {
            if (entry == "*")
            {
                all = true;
            }
            else if (entry.EndsWith(":*", StringComparison.Ordinal))
            {
                var baseId = entry[..^2];
                ids.Add(baseId);
                prefixes.Add(baseId + ":");
            }
            else
            {
                // An alias grants its endpoint; it is resolved against the registry in force, so a moved alias follows.
                ids.Add(registry.Aliases.TryGetValue(entry, out var target) ? target : entry);
            }
        }

        return new ModelGrant(all, ids.ToFrozenSet(StringComparer.Ordinal), [.. prefixes]);
    }

    public bool Allows(ModelEndpoint endpoint)
    {
        if (All || _ids.Contains(endpoint.Id.Value))
        {
            return true;
        }

        foreach (var prefix in _prefixes)
        {
            if (endpoint.Id.Value.StartsWith(prefix, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
