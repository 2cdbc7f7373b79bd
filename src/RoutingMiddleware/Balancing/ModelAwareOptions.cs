namespace ModelRouting.Balancing;

/// <summary>
/// The <c>ModelRouting:LoadBalancing</c> section: weights and scraping of the <c>ModelAware</c> load-balancing
/// policy (SPEC §17). A destination's score is the weighted sum of its signals, each in [0, 1]; the highest wins.
/// </summary>
public sealed class ModelAwareOptions
{
    /// <summary>Gets or sets the weight of prefix affinity (share of the prompt last sent there). Defaults to 3.</summary>
    public double PrefixWeight { get; set; } = 3;

    /// <summary>Gets or sets the weight of the request's adapter being loaded there. Defaults to 2.</summary>
    public double AdapterWeight { get; set; } = 2;

    /// <summary>Gets or sets the weight of the tokens this gateway has in flight there (fewer is better). Defaults to 2.</summary>
    public double InFlightTokensWeight { get; set; } = 2;

    /// <summary>Gets or sets the weight of the scraped queue depth (<c>vllm:num_requests_waiting</c>). Defaults to 2.</summary>
    public double QueueWeight { get; set; } = 2;

    /// <summary>Gets or sets the weight of the scraped KV-cache use. Defaults to 1.</summary>
    public double KvCacheWeight { get; set; } = 1;

    /// <summary>Gets or sets the tokens a request is assumed to generate, added to its prompt in the in-flight count. Defaults to 256.</summary>
    public int OutputTokenAllowance { get; set; } = 256;

    /// <summary>Gets or sets how often each destination's metrics are scraped. Defaults to 1 second.</summary>
    public TimeSpan ScrapeInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets or sets how long one scrape may take. Defaults to 500 ms.</summary>
    public TimeSpan ScrapeTimeout { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Gets or sets the age at which scraped metrics no longer count (their weight falls linearly from two intervals' age to this). Defaults to 10 seconds.</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Gets or sets the largest metrics page read; a larger one is refused. Defaults to 4 MiB.</summary>
    public int MaxMetricsBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Gets or sets the path of the metrics page on each destination's host. Defaults to <c>/metrics</c>.</summary>
    public string MetricsPath { get; set; } = "/metrics";
}
