using System.Text.Json;
using System.Text.Json.Serialization;
using ModelRouting.Configuration;
using ModelRouting.Keys;
using ModelRouting.Logging;
using ModelRouting.Registry;

namespace ModelRouting.Admin;

/// <summary>
/// The changes made through the admin API, kept apart from configuration and re-applied over it: the
/// effective registry is the configuration's registry with this overlay applied (runtime wins for the same
/// id). It is also the persisted state file's content. Treated as immutable once published: changes
/// work on a <see cref="Clone"/>.
/// </summary>
internal sealed class RuntimeOverlay
{
    public const int CurrentVersion = 1;

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Gets or sets the state file format version.</summary>
    public int Version { get; set; } = CurrentVersion;

    /// <summary>Gets or sets the endpoints registered (or replaced) at runtime, in registration order.</summary>
    public List<RuntimeEndpoint> Endpoints { get; set; } = [];

    /// <summary>Gets or sets configuration endpoints unregistered at runtime.</summary>
    public List<string> Removed { get; set; } = [];

    /// <summary>Gets or sets status overrides (endpoint id → status name).</summary>
    public Dictionary<string, string> Statuses { get; set; } = [];

    /// <summary>Gets or sets aliases added or moved at runtime (alias → endpoint id).</summary>
    public Dictionary<string, string> Aliases { get; set; } = [];

    /// <summary>Gets or sets aliases removed at runtime.</summary>
    public List<string> RemovedAliases { get; set; } = [];

    /// <summary>
    /// Gets or sets the default set at runtime (its <c>Id</c> null: no default), or null to keep configuration's.
    /// It applies only while configuration's default is the one it replaced (<see cref="DefaultOverride.Replaces"/>).
    /// </summary>
    public DefaultOverride? Default { get; set; }

    /// <summary>Gets or sets the client keys created through the admin API (their hashes), in creation order.</summary>
    public List<RuntimeKey> Keys { get; set; } = [];

    /// <summary>Parses a persisted overlay (the state file, the shared document in Redis) and checks its shape.</summary>
    /// <exception cref="JsonException">The document is not an overlay this version can apply.</exception>
    public static RuntimeOverlay Parse(ReadOnlySpan<byte> utf8)
    {
        var overlay = JsonSerializer.Deserialize<RuntimeOverlay>(utf8, Json) ?? throw new JsonException("the document is null");
        if (overlay.Version != CurrentVersion)
        {
            throw new JsonException($"version {overlay.Version} is not supported (expected {CurrentVersion})");
        }

        if (overlay.Endpoints is null || overlay.Removed is null || overlay.Statuses is null || overlay.Aliases is null
            || overlay.RemovedAliases is null || overlay.Keys is null)
        {
            throw new JsonException("a list of the overlay is null");
        }

        if (overlay.Endpoints.Any(e => string.IsNullOrWhiteSpace(e?.Definition?.Id)))
        {
            throw new JsonException("an endpoint has no Definition.Id");
        }

        if (overlay.Keys.Any(k => string.IsNullOrWhiteSpace(k?.Definition?.Id)))
        {
            throw new JsonException("a key has no Id");
        }

        return overlay;
    }

    public RuntimeOverlay Clone() => JsonSerializer.Deserialize<RuntimeOverlay>(JsonSerializer.SerializeToUtf8Bytes(this, Json), Json)!;

    public RuntimeEndpoint? FindEndpoint(string id) => Endpoints.Find(e => e.Definition.Id == id);

    /// <summary>
    /// Applies the overlay to <paramref name="configured"/>: unregistrations, registrations, alias removals,
    /// alias additions, statuses, then the default. An item that is no longer valid (its cluster was removed
    /// from configuration, its alias now collides…) is reported through <paramref name="skipped"/> and left
    /// out, but stays in the overlay (and the state file) so it comes back when it is valid again.
    /// </summary>
    public ModelRegistry ApplyTo(ModelRegistry configured, IReadOnlySet<string> clusterIds, Action<string> skipped)
    {
        var registry = configured;
        foreach (var id in Removed)
        {
            registry = registry.Unregister(id).Registry;
        }

        foreach (var entry in Endpoints)
        {
            var id = entry.Definition.Id ?? "";
            var errors = new List<string>();
            var endpoint = ModelEndpointValidator.Validate(entry.Definition, id, clusterIds, (_, message) => errors.Add(message));
            if (endpoint is null)
            {
                skipped($"endpoint '{LogValue.Sanitize(id)}': {string.Join("; ", errors)}");
                continue;
            }

            var result = registry.Register(endpoint with { RegisteredAt = entry.Created });
            if (!result.Succeeded)
            {
                skipped($"endpoint '{LogValue.Sanitize(id)}': {result.Error}");
                continue;
            }

            registry = result.Registry;
        }

        foreach (var alias in RemovedAliases)
        {
            registry = registry.RemoveAlias(alias);
        }

        foreach (var (alias, target) in Aliases)
        {
            var result = registry.Aliases.ContainsKey(alias) ? registry.MoveAlias(alias, target) : registry.AddAlias(alias, target);
            if (!result.Succeeded)
            {
                skipped($"alias '{LogValue.Sanitize(alias)}' → '{LogValue.Sanitize(target)}': {result.Error}");
                continue;
            }

            registry = result.Registry;
        }

        foreach (var (id, name) in Statuses)
        {
            if (!EndpointStatusExtensions.TryParse(name, out var status))
            {
                skipped($"status of '{LogValue.Sanitize(id)}': '{LogValue.Sanitize(name)}' is not a status");
                continue;
            }

            var (next, found) = registry.SetStatus(id, status);
            if (!found)
            {
                skipped($"status of '{LogValue.Sanitize(id)}': the endpoint is not registered");
            }

            registry = next;
        }

        if (Default is not null && Default.AppliesOver(configured.DefaultId))
        {
            var result = registry.SetDefault(Default.Id);
            if (result.Succeeded)
            {
                registry = result.Registry;
            }
            else
            {
                skipped($"default '{LogValue.Sanitize(Default.Id)}': {result.Error}");
            }
        }

        return registry;
    }
}

/// <summary>An endpoint registered at runtime: its definition (configuration's shape) and admin-only fields.</summary>
internal sealed class RuntimeEndpoint
{
    /// <summary>Gets or sets the definition, validated like a configuration entry.</summary>
    public ModelEndpointOptions Definition { get; set; } = new();

    /// <summary>Gets or sets where a dynamically loaded LoRA adapter comes from (vLLM's <c>lora_path</c>).</summary>
    public string? SourcePath { get; set; }

    /// <summary>Gets or sets when the endpoint was first registered (kept stable for <c>created</c>).</summary>
    public DateTimeOffset Created { get; set; }
}

/// <summary>
/// The default endpoint as set at runtime, scoped to the configuration it overrides: it records configuration's
/// default when it was made and lapses when configuration's default changes.
/// </summary>
internal sealed class DefaultOverride
{
    /// <summary>Gets or sets the default endpoint's id; null means no default.</summary>
    public string? Id { get; set; }

    /// <summary>
    /// Gets or sets configuration's default when the override was made. Null in state files written before
    /// overrides were scoped: such an override is scoped to configuration's default when it is next loaded.
    /// </summary>
    public ReplacedDefault? Replaces { get; set; }

    /// <summary>Creates an override to <paramref name="id"/> over <paramref name="configured"/>'s default.</summary>
    public static DefaultOverride Over(string? id, ModelRegistry configured) =>
        new() { Id = id, Replaces = new ReplacedDefault { Id = configured.DefaultId } };

    /// <summary>Gets whether the override is in force over a configuration whose default is <paramref name="configuredDefault"/>.</summary>
    public bool AppliesOver(string? configuredDefault) => Replaces is null || Replaces.Id == configuredDefault;
}

/// <summary>Configuration's default endpoint that a <see cref="DefaultOverride"/> replaced.</summary>
internal sealed class ReplacedDefault
{
    /// <summary>Gets or sets that endpoint's id; null when configuration had no default.</summary>
    public string? Id { get; set; }
}
