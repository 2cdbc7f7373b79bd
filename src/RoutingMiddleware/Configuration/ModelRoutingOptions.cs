namespace ModelRouting.Configuration;

/// <summary>The <c>ModelRouting</c> configuration section (SPEC §3). Bound, mutable; validated into an immutable registry.</summary>
public sealed class ModelRoutingOptions
{
    /// <summary>The default <see cref="MaxRequestBodyBytes"/>: 32 MiB.</summary>
    public const long DefaultMaxRequestBodyBytes = 32 * 1024 * 1024;

    /// <summary>The paths inspected when <see cref="InspectedPaths"/> is not set.</summary>
    public static readonly IReadOnlyList<string> DefaultInspectedPaths =
        ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"];

    /// <summary>Gets or sets the endpoints. An array because ids contain ':' which configuration keys cannot hold.</summary>
    public List<ModelEndpointOptions> Endpoints { get; set; } = [];

    /// <summary>Gets or sets how prompt tokens are estimated (SPEC §6).</summary>
    public TokenEstimationOptions TokenEstimation { get; set; } = new();

    /// <summary>Gets or sets the largest request body the gateway reads. Defaults to 32 MiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = DefaultMaxRequestBodyBytes;

    /// <summary>Gets or sets the POST paths whose JSON body is inspected. Defaults to <see cref="DefaultInspectedPaths"/>.</summary>
    public string[]? InspectedPaths { get; set; }

    /// <summary>
    /// Gets or sets the other paths clients may reach through the proxy routes (SPEC §12): exact paths or
    /// prefixes (<c>/v1/files/*</c>). A POST among them whose JSON or multipart body names a <c>model</c> is routed
    /// like an inspected request. Backend management paths are refused. Defaults to none.
    /// </summary>
    public string[]? PassThroughPaths { get; set; }

    /// <summary>Gets or sets how failed attempts are retried (SPEC §13).</summary>
    public FailoverOptions Failover { get; set; } = new();

    /// <summary>Gets or sets the Retry-After seconds sent with 503 for a Loading endpoint. Defaults to 10.</summary>
    public int RetryAfterSeconds { get; set; } = 10;

    /// <summary>Gets or sets the runtime admin API settings (off unless a key is set).</summary>
    public AdminOptions Admin { get; set; } = new();

    /// <summary>Gets or sets how backend health drives endpoint status.</summary>
    public HealthStatusOptions Health { get; set; } = new();

    /// <summary>Gets or sets how backends' <c>GET /v1/models</c> is polled (for clusters that opt in).</summary>
    public DiscoveryOptions Discovery { get; set; } = new();

    /// <summary>
    /// Gets or sets per-cluster backend settings (cluster id → settings, ids matched ignoring case), e.g. the
    /// credential sent to that cluster. Defaults to none.
    /// </summary>
    public Dictionary<string, BackendOptions> Backends { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Gets or sets the client keys (SPEC §14). With none (and none added through the admin API) the gateway is
    /// open; with any, every client request needs one.
    /// </summary>
    public List<ClientKeyOptions> Keys { get; set; } = [];

    /// <summary>Gets or sets settings shared by every rate limit (SPEC §14).</summary>
    public LimitDefaultsOptions Limits { get; set; } = new();

    /// <summary>Gets or sets the weights and metrics scraping of the <c>ModelAware</c> load-balancing policy (SPEC §17).</summary>
    public Balancing.ModelAwareOptions LoadBalancing { get; set; } = new();

    /// <summary>Gets or sets where replicas share their state (SPEC §16). Off unless a connection string is set.</summary>
    public RedisOptions Redis { get; set; } = new();
}

/// <summary>The <c>ModelRouting:Admin</c> section: the runtime admin API, the management listener and where changes are kept.</summary>
public sealed class AdminOptions
{
    /// <summary>The default <see cref="Urls"/>: loopback only, port 9090.</summary>
    public const string DefaultUrls = "http://127.0.0.1:9090";

    /// <summary>
    /// Gets or sets the admin key callers send as <c>Authorization: Bearer &lt;key&gt;</c>. The admin API is off
    /// (404) while this is empty. Defaults to none.
    /// </summary>
    public string? Key { get; set; }

    /// <summary>
    /// Gets or sets the management listener's URLs (separated by <c>;</c>): the admin API (and <c>/metrics</c>,
    /// <c>/status</c>) answer only on these ports, never on the public listener, and the proxy does not answer
    /// on them (except <c>/healthz</c>, <c>/readyz</c>). Each needs a fixed port, not 0, and not a public
    /// listener's port. ProxyHost listens on them; a host of its own must too. An empty value turns the
    /// management listener off. Defaults to <c>http://127.0.0.1:9090</c>.
    /// </summary>
    public string? Urls { get; set; } = DefaultUrls;

    /// <summary>
    /// Gets or sets the file runtime changes are persisted to. A relative path is relative to the content root;
    /// an empty value keeps runtime changes in memory only. Defaults to a per-user state folder that survives a
    /// redeploy of the binaries and is writable in a container: <c>$XDG_STATE_HOME/model-gateway/state.json</c>,
    /// else <c>$HOME/.local/state/model-gateway/state.json</c> on Linux and macOS;
    /// <c>%LOCALAPPDATA%\model-gateway\state.json</c> on Windows; the temporary folder's
    /// <c>model-gateway/state.json</c> only when the user has no home folder. The path in force is logged at
    /// start-up.
    /// </summary>
    public string? StateFile { get; set; }
}

/// <summary>The <c>ModelRouting:Health</c> section.</summary>
public sealed class HealthStatusOptions
{
    /// <summary>
    /// Gets or sets whether an endpoint whose cluster has no healthy destination (YARP active/passive health
    /// checks) reads as Error. Defaults to true.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Gets or sets how often YARP's destination health is read. Defaults to 1 second.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>The <c>ModelRouting:Discovery</c> section; clusters opt in with the metadata <c>ModelRouting.Discovery: true</c>.</summary>
public sealed class DiscoveryOptions
{
    /// <summary>Gets or sets how often each opted-in cluster's destinations are polled. Defaults to 15 seconds.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Gets or sets how long a discovery result is trusted without a fresh answer. Defaults to 60 seconds.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Gets or sets the timeout of one <c>GET /v1/models</c>. Defaults to 5 seconds.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>One entry of <c>ModelRouting:Endpoints</c>.</summary>
public sealed class ModelEndpointOptions
{
    /// <summary>Gets or sets the id: <c>base</c> or <c>base:adapter</c>.</summary>
    public string? Id { get; set; }

    /// <summary>Gets or sets the base model's name. Defaults to the id.</summary>
    public string? BaseModel { get; set; }

    /// <summary>Gets or sets the LoRA adapter name.</summary>
    public string? Adapter { get; set; }

    /// <summary>Gets or sets a weighted adapter stack (SPEC §7).</summary>
    public List<AdapterOptions>? Adapters { get; set; }

    /// <summary>Gets or sets the ReverseProxy cluster that serves the endpoint.</summary>
    public string? Cluster { get; set; }

    /// <summary>Gets or sets the model name the backend expects. Defaults to Adapter ?? BaseModel.</summary>
    public string? UpstreamModel { get; set; }

    /// <summary>Gets or sets the context length in tokens. Defaults to 4096.</summary>
    public int? MaxContextLength { get; set; }

    /// <summary>Gets or sets whether this is the default endpoint.</summary>
    public bool IsDefault { get; set; }

    /// <summary>Gets or sets the status name (Ready, Loading, Error, Disabled; case-insensitive). Defaults to Ready.</summary>
    public string? Status { get; set; }

    /// <summary>Gets or sets the display name. Defaults to the id.</summary>
    public string? DisplayName { get; set; }

    /// <summary>Gets or sets the description.</summary>
    public string? Description { get; set; }

    /// <summary>Gets or sets the aliases.</summary>
    public List<string>? Aliases { get; set; }

    /// <summary>Gets or sets this endpoint's token estimation encoding (overrides the global one).</summary>
    public string? TokenEncoding { get; set; }

    /// <summary>
    /// Gets or sets how this endpoint's decisions are counted (overrides <c>ModelRouting:TokenEstimation:Mode</c> for
    /// them, SPEC §18). Defaults to the global settings.
    /// </summary>
    public EndpointTokenEstimationOptions? TokenEstimation { get; set; }

    /// <summary>
    /// Gets or sets the endpoint ids tried in order when this endpoint's backends fail before a response
    /// starts (SPEC §13); only those Ready and large enough for the request are tried. Defaults to none.
    /// </summary>
    public List<string>? Fallbacks { get; set; }

    /// <summary>Gets or sets this endpoint's own limits (its backends' capacity, SPEC §14), over every client. Defaults to none.</summary>
    public RateLimitOptions? Limits { get; set; }
}

/// <summary>One adapter of an adapter stack.</summary>
public sealed class AdapterOptions
{
    /// <summary>Gets or sets the adapter name.</summary>
    public string? Name { get; set; }

    /// <summary>Gets or sets the blending weight.</summary>
    public double Weight { get; set; } = 1;
}

/// <summary>How prompt tokens are estimated (SPEC §6, §18).</summary>
public sealed class TokenEstimationOptions
{
    /// <summary>The default <see cref="BackendTimeout"/>: 1 second.</summary>
    public static readonly TimeSpan DefaultBackendTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Gets or sets the mode: <c>Heuristic</c> (default), <c>Tiktoken</c> (every request counted exactly with
    /// <see cref="Encoding"/>) or <c>Backend</c> (the heuristic, and near a limit the endpoint's serving engine counts
    /// with <c>POST /tokenize</c>).
    /// </summary>
    public string Mode { get; set; } = "Heuristic";

    /// <summary>
    /// Gets or sets how long Backend mode waits for a serving engine's <c>POST /tokenize</c> before deciding on the local
    /// count. Defaults to 1 second.
    /// </summary>
    public TimeSpan BackendTimeout { get; set; } = DefaultBackendTimeout;

    /// <summary>Gets or sets the tiktoken encoding for exact counts. Defaults to <c>o200k_base</c>.</summary>
    public string Encoding { get; set; } = "o200k_base";

    /// <summary>Gets or sets the fixed token cost of an image, audio or file part. Defaults to 765.</summary>
    public int MediaPartTokens { get; set; } = 765;

    /// <summary>
    /// Gets or sets the relative margin around a context limit inside which Heuristic mode counts exactly.
    /// Defaults to 0.25.
    /// </summary>
    public double ExactCountMargin { get; set; } = 0.25;

    /// <summary>Gets or sets the size limit (in cached texts) of the exact-count cache. Defaults to 10,000.</summary>
    public int CacheSize { get; set; } = 10_000;
}

/// <summary>
/// An endpoint's <c>TokenEstimation</c> section: how that endpoint's decisions are counted. A plain string value
/// (<c>"TokenEstimation": "Backend"</c>) is read as its <see cref="Mode"/>, rather than silently ignored by the binder.
/// </summary>
[System.ComponentModel.TypeConverter(typeof(EndpointTokenEstimationOptionsConverter))]
public sealed class EndpointTokenEstimationOptions
{
    /// <summary>
    /// Gets or sets the mode for decisions about this endpoint: <c>Backend</c> (near a limit its serving engine counts),
    /// <c>Tiktoken</c> (every decision on an exact local count with the endpoint's encoding) or <c>Heuristic</c> (near a
    /// limit the local tokenizer counts). The single pass over the body follows the global mode. Defaults to the global mode.
    /// </summary>
    public string? Mode { get; set; }
}

/// <summary>Reads a configuration string as <see cref="EndpointTokenEstimationOptions.Mode"/> (validated with the entry).</summary>
internal sealed class EndpointTokenEstimationOptionsConverter : System.ComponentModel.TypeConverter
{
    public override bool CanConvertFrom(System.ComponentModel.ITypeDescriptorContext? context, Type sourceType) =>
        sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    public override object? ConvertFrom(System.ComponentModel.ITypeDescriptorContext? context, System.Globalization.CultureInfo? culture, object value) =>
        value is string mode ? new EndpointTokenEstimationOptions { Mode = mode } : base.ConvertFrom(context, culture, value);
}
