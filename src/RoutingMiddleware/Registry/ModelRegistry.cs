using System.Diagnostics.CodeAnalysis;

namespace ModelRouting.Registry;

/// <summary>
/// An immutable snapshot of the model registry: endpoints by id, aliases and the default (seed
/// <c>ModelRegistry</c>). Every change returns a new registry and leaves this one untouched, so readers
/// never lock and never see a half-applied change.
/// </summary>
/// <remarks>Thread-safe: instances never change after construction.</remarks>
public sealed class ModelRegistry
{
    private readonly Dictionary<string, ModelEndpoint> _endpoints;
    private readonly Dictionary<string, string> _aliases;
    private readonly Dictionary<string, ModelEndpoint>.AlternateLookup<ReadOnlySpan<char>> _endpointsBySpan;
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _aliasesBySpan;
    private readonly ModelEndpoint[] _ordered;
    private readonly TimeProvider _time;

    /// <summary>An empty registry using the system clock.</summary>
    public static ModelRegistry Empty { get; } = new(TimeProvider.System);

    /// <summary>Creates an empty registry whose registration times come from <paramref name="time"/>.</summary>
    public ModelRegistry(TimeProvider time)
        : this([], new Dictionary<string, string>(StringComparer.Ordinal), null, time)
    {
    }

    private ModelRegistry(ModelEndpoint[] ordered, Dictionary<string, string> aliases, string? defaultId, TimeProvider time)
    {
        _ordered = ordered;
        _endpoints = new Dictionary<string, ModelEndpoint>(ordered.Length, StringComparer.Ordinal);
        foreach (var e in ordered)
        {
            _endpoints.Add(e.Id.Value, e);
        }

        _aliases = aliases;
        _endpointsBySpan = _endpoints.GetAlternateLookup<ReadOnlySpan<char>>();
        _aliasesBySpan = _aliases.GetAlternateLookup<ReadOnlySpan<char>>();
        DefaultId = defaultId;
        _time = time;
    }

    /// <summary>Gets the number of registered endpoints.</summary>
    public int Count => _ordered.Length;

    /// <summary>Gets whether no endpoint is registered.</summary>
    public bool IsEmpty => _ordered.Length == 0;

    /// <summary>Gets the default endpoint's id, if any.</summary>
    public string? DefaultId { get; }

    /// <summary>Gets the alias table (alias → endpoint id).</summary>
    public IReadOnlyDictionary<string, string> Aliases => _aliases;

    /// <summary>Gets every endpoint, Ready or not, in registration order.</summary>
    public IReadOnlyList<ModelEndpoint> AllEndpoints => _ordered;

    /// <summary>Gets the Ready endpoints in registration order.</summary>
    public IEnumerable<ModelEndpoint> AvailableEndpoints => _ordered.Where(e => e.Status.IsAvailable());

    /// <summary>Gets the default endpoint, if one is set and registered.</summary>
    public ModelEndpoint? DefaultEndpoint => DefaultId is null ? null : _endpoints.GetValueOrDefault(DefaultId);

    /// <summary>Gets an endpoint by exact id.</summary>
    public bool TryGet(string id, [NotNullWhen(true)] out ModelEndpoint? endpoint) => _endpoints.TryGetValue(id, out endpoint);

    /// <summary>Resolves an exact endpoint id first, then an alias (case-sensitive).</summary>
    public ModelEndpoint? Resolve(string idOrAlias) => Resolve(idOrAlias.AsSpan());

    /// <summary>Resolves an exact endpoint id first, then an alias (case-sensitive), without allocating.</summary>
    public ModelEndpoint? Resolve(ReadOnlySpan<char> idOrAlias)
    {
        if (_endpointsBySpan.TryGetValue(idOrAlias, out var endpoint))
        {
            return endpoint;
        }

        return _aliasesBySpan.TryGetValue(idOrAlias, out var target) ? _endpoints.GetValueOrDefault(target) : null;
    }

    /// <summary>Returns the aliases that point at <paramref name="id"/>, sorted.</summary>
    public IReadOnlyList<string> AliasesOf(string id) =>
        [.. _aliases.Where(a => a.Value == id).Select(a => a.Key).Order(StringComparer.Ordinal)];

    /// <summary>
    /// Registers an endpoint, replacing one with the same id (seed semantics; the replaced endpoint's
    /// registration time and aliases are kept). The endpoint's <see cref="ModelEndpoint.Aliases"/> are
    /// added; an endpoint that asks to be the default becomes it. Refused when the id is already an
    /// alias, or an alias is already an id or another endpoint's alias.
    /// </summary>
    public RegistryResult Register(ModelEndpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var id = endpoint.Id.Value;
        if (string.IsNullOrEmpty(id))
        {
            return RegistryResult.Fail("Id: an endpoint needs a non-empty id");
        }

        if (_aliases.TryGetValue(id, out var aliasTarget))
        {
            return RegistryResult.Fail($"Id: '{id}' is already an alias of endpoint '{aliasTarget}'");
        }

        var aliases = new Dictionary<string, string>(_aliases, StringComparer.Ordinal);
        foreach (var alias in endpoint.Aliases)
        {
            var error = CheckAlias(alias, id, aliases, id);
            if (error is not null)
            {
                return RegistryResult.Fail(error);
            }

            aliases[alias] = id;
        }

        var existing = _endpoints.GetValueOrDefault(id);
        var registered = endpoint with
        {
            RegisteredAt = existing?.RegisteredAt ?? (endpoint.RegisteredAt == default ? _time.GetUtcNow() : endpoint.RegisteredAt),
        };

        var ordered = existing is null
            ? [.. _ordered, registered]
            : _ordered.Select(e => ReferenceEquals(e, existing) ? registered : e).ToArray();
        var defaultId = registered.IsDefault ? id : DefaultId;
        return RegistryResult.Ok(new ModelRegistry(ordered, aliases, defaultId, _time));
    }

    /// <summary>
    /// Removes an endpoint; clears the default if it was the default and drops the aliases that pointed
    /// at it. Returns this registry unchanged (and <c>Removed</c> null) when the id is unknown.
    /// </summary>
    public (ModelRegistry Registry, ModelEndpoint? Removed) Unregister(string id)
    {
        if (!_endpoints.TryGetValue(id, out var removed))
        {
            return (this, null);
        }

        var aliases = _aliases.Where(a => a.Value != id).ToDictionary(StringComparer.Ordinal);
        var ordered = _ordered.Where(e => !ReferenceEquals(e, removed)).ToArray();
        return (new ModelRegistry(ordered, aliases, DefaultId == id ? null : DefaultId, _time), removed);
    }

    /// <summary>
    /// Adds or moves an alias to <paramref name="targetId"/>. Refused when the target is unknown, or the
    /// alias is empty, equals an endpoint id, or is already an alias of another endpoint.
    /// </summary>
    public RegistryResult AddAlias(string alias, string targetId)
    {
        if (!_endpoints.ContainsKey(targetId))
        {
            return RegistryResult.Fail($"Aliases: target endpoint '{targetId}' is not registered");
        }

        var error = CheckAlias(alias, targetId, _aliases, ownerId: null);
        if (error is not null)
        {
            return RegistryResult.Fail(error);
        }

        var aliases = new Dictionary<string, string>(_aliases, StringComparer.Ordinal) { [alias] = targetId };
        return RegistryResult.Ok(new ModelRegistry(_ordered, aliases, DefaultId, _time));
    }

    /// <summary>Moves an existing alias to another endpoint.</summary>
    public RegistryResult MoveAlias(string alias, string targetId)
    {
        if (!_aliases.ContainsKey(alias))
        {
            return RegistryResult.Fail($"Aliases: '{alias}' is not an alias");
        }

        return RemoveAlias(alias).AddAlias(alias, targetId);
    }

    /// <summary>Removes an alias; unknown aliases leave the registry unchanged.</summary>
    public ModelRegistry RemoveAlias(string alias)
    {
        if (!_aliases.ContainsKey(alias))
        {
            return this;
        }

        var aliases = new Dictionary<string, string>(_aliases, StringComparer.Ordinal);
        aliases.Remove(alias);
        return new ModelRegistry(_ordered, aliases, DefaultId, _time);
    }

    /// <summary>Makes <paramref name="id"/> the default endpoint, or clears the default when null.</summary>
    public RegistryResult SetDefault(string? id)
    {
        if (id is not null && !_endpoints.ContainsKey(id))
        {
            return RegistryResult.Fail($"Default: endpoint '{id}' is not registered");
        }

        return RegistryResult.Ok(new ModelRegistry(_ordered, _aliases, id, _time));
    }

    /// <summary>Sets an endpoint's status. <c>Found</c> is false (and the registry unchanged) for an unknown id.</summary>
    public (ModelRegistry Registry, bool Found) SetStatus(string id, EndpointStatus status)
    {
        if (!_endpoints.TryGetValue(id, out var endpoint))
        {
            return (this, false);
        }

        if (endpoint.Status == status)
        {
            return (this, true);
        }

        var updated = endpoint with { Status = status };
        var ordered = _ordered.Select(e => ReferenceEquals(e, endpoint) ? updated : e).ToArray();
        return (new ModelRegistry(ordered, _aliases, DefaultId, _time), true);
    }

    /// <summary>
    /// Returns a registry whose endpoints are <paramref name="map"/>'s results (ids must not change), with the
    /// same aliases and default; this registry when nothing changed.
    /// </summary>
    internal ModelRegistry Map(Func<ModelEndpoint, ModelEndpoint> map)
    {
        ModelEndpoint[]? ordered = null;
        for (var i = 0; i < _ordered.Length; i++)
        {
            var mapped = map(_ordered[i]);
            if (!ReferenceEquals(mapped, _ordered[i]))
            {
                ordered ??= (ModelEndpoint[])_ordered.Clone();
                ordered[i] = mapped;
            }
        }

        return ordered is null ? this : new ModelRegistry(ordered, _aliases, DefaultId, _time);
    }

    private string? CheckAlias(string alias, string targetId, Dictionary<string, string> aliases, string? ownerId)
    {
        if (string.IsNullOrWhiteSpace(alias))
        {
            return "Aliases: an alias must be a non-empty name";
        }

        if (alias == targetId || (_endpoints.ContainsKey(alias) && alias != ownerId))
        {
            return $"Aliases: '{alias}' collides with the endpoint id '{alias}'";
        }

        if (aliases.TryGetValue(alias, out var other) && other != targetId)
        {
            return $"Aliases: '{alias}' collides with an alias of endpoint '{other}'";
        }

        return null;
    }
}

/// <summary>The outcome of a registry change: the new registry, or why the change was refused.</summary>
public readonly record struct RegistryResult(ModelRegistry? Registry, string? Error)
{
    /// <summary>Gets whether the change was applied.</summary>
    [MemberNotNullWhen(true, nameof(Registry))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Succeeded => Registry is not null;

    internal static RegistryResult Ok(ModelRegistry registry) => new(registry, null);

    internal static RegistryResult Fail(string error) => new(null, error);
}
