using System.Diagnostics.CodeAnalysis;

namespace ModelRouting.Registry;

/// <summary>
/// A served model variant: a base model, optionally with a LoRA adapter or an adapter stack, served by a
/// YARP cluster. Immutable: registries replace endpoints in their entirety.
/// </summary>
public sealed record ModelEndpoint
{
    /// <summary>The default <see cref="MaxContextLength"/> (seed value). </summary>
    public const int DefaultMaxContextLength = 4096;

    /// <summary>Creates an endpoint with the seed's defaults: Ready, no adapter, 4096 tokens of context.</summary>
    public ModelEndpoint(ModelId id, string baseModel, string cluster)
    {
        Id = id;
        BaseModel = baseModel;
        Cluster = cluster;
    }

    /// <summary>Gets the unique id clients send as <c>model</c>.</summary>
    public ModelId Id { get; init; }

    /// <summary>Gets the human-readable name. Defaults to the id.</summary>
    [AllowNull]
    public string DisplayName { get => field ?? Id.Value; init; }

    /// <summary>Gets a longer description. Defaults to empty.</summary>
    public string Description { get; init; } = "";

    /// <summary>Gets the underlying base model's name.</summary>
    public string BaseModel { get; init; }

    /// <summary>Gets the LoRA adapter applied on top of the base model, if any.</summary>
    public string? Adapter { get; init; }

    /// <summary>Gets a weighted adapter stack, if any (forwarded as LoRAX <c>merged_adapters</c>).</summary>
    public AdapterStack? Adapters { get; init; }

    /// <summary>Gets the YARP cluster id that serves this endpoint.</summary>
    public string Cluster { get; init; }

    /// <summary>Gets the model name the backend expects. Defaults to <see cref="Adapter"/> ?? <see cref="BaseModel"/>.</summary>
    [AllowNull]
    public string UpstreamModel { get => field ?? Adapter ?? BaseModel; init; }

    /// <summary>Gets the maximum context length in tokens. Defaults to 4096.</summary>
    public int MaxContextLength { get; init; } = DefaultMaxContextLength;

    /// <summary>Gets whether this endpoint asks to be the default.</summary>
    public bool IsDefault { get; init; }

    /// <summary>Gets the operational status. Defaults to Ready.</summary>
    public EndpointStatus Status { get; init; } = EndpointStatus.Ready;

    /// <summary>Gets the friendly names that resolve to this endpoint when it is registered.</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>Gets the tiktoken encoding for exact counts on this endpoint; null uses the global one.</summary>
    public string? TokenEncoding { get; init; }

    /// <summary>Gets how decisions about this endpoint are counted (<c>TokenEstimation:Mode</c>); null follows the global mode.</summary>
    internal Configuration.TokenEstimationMode? TokenEstimationMode { get; init; }

    /// <summary>Gets the endpoint ids tried in order when this endpoint's backends fail before a response starts.</summary>
    public IReadOnlyList<string> Fallbacks { get; init; } = [];

    /// <summary>Gets when the endpoint was first registered; the models list reports it as <c>created</c>.</summary>
    public DateTimeOffset RegisteredAt { get; init; }

    /// <summary>
    /// Gets why the gateway itself (not configuration or an administrator) set <see cref="Status"/>: backend
    /// health, an adapter being loaded, discovery. Null when the status is the administered one.
    /// </summary>
    internal string? StatusReason { get; init; }

    /// <summary>Gets whether the endpoint applies an adapter or an adapter stack.</summary>
    public bool HasAdapter => Adapter is not null || Adapters is not null;
}
