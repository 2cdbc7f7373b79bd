namespace ModelRouting.Configuration;

/// <summary>
/// One entry of <c>ModelRouting:Backends</c>, keyed by a ReverseProxy cluster id: how the gateway talks to that
/// cluster's destinations. Keys are matched to cluster ids ignoring case, as configuration keys are
/// (<c>ModelRouting__Backends__qwen-pool__ApiKey</c> and a JSON <c>"Qwen-Pool"</c> entry are the same key).
/// </summary>
public sealed class BackendOptions
{
    /// <summary>
    /// Gets or sets the credential sent to every destination of the cluster as <c>Authorization: Bearer &lt;key&gt;</c>,
    /// on proxied requests and on the gateway's own calls (discovery, adapter loading). A client's
    /// <c>Authorization</c> and <c>api-key</c> headers never reach a backend either way. Defaults to none.
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// Gets or sets how often runtime adapters on this (vLLM) cluster are checked on every destination and
    /// loaded where missing. Defaults to 10 seconds.
    /// </summary>
    public TimeSpan AdapterReconcileInterval { get; set; } = DefaultAdapterReconcileInterval;

    /// <summary>The default <see cref="AdapterReconcileInterval"/>: 10 seconds.</summary>
    public static TimeSpan DefaultAdapterReconcileInterval { get; } = TimeSpan.FromSeconds(10);
}
