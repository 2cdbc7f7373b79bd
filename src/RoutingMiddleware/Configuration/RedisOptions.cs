namespace ModelRouting.Configuration;

/// <summary>
/// The <c>ModelRouting:Redis</c> section (SPEC §16): with <see cref="Configuration"/> set, the admin overlay (keys
/// included) and the rate-limit counters live in Redis, so several gateway replicas act as one.
/// </summary>
public sealed class RedisOptions
{
    /// <summary>
    /// Gets or sets the StackExchange.Redis connection string (<c>127.0.0.1:6379</c>, <c>host:port,password=…</c>).
    /// Empty keeps every piece of state in this process. Defaults to none.
    /// </summary>
    public string? Configuration { get; set; }

    /// <summary>
    /// Gets or sets whether start-up fails when Redis cannot be reached. Defaults to false: the gateway starts on
    /// its local state file and joins Redis when it answers.
    /// </summary>
    public bool Required { get; set; }

    /// <summary>
    /// Gets or sets whether rate-limited requests are refused while Redis is unavailable. Defaults to false: they
    /// are counted in this process at each limit divided by <see cref="Replicas"/>.
    /// </summary>
    public bool FailClosed { get; set; }

    /// <summary>Gets or sets how many replicas share the limits, for the in-process fallback. Defaults to 1.</summary>
    public int Replicas { get; set; } = 1;

    /// <summary>Gets or sets the prefix of every Redis key and channel the gateway uses. Defaults to <c>model-gateway:</c>.</summary>
    public string KeyPrefix { get; set; } = "model-gateway:";

    /// <summary>Gets or sets how long one Redis command may take before it counts as a failure. Defaults to 250 ms.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Gets or sets how long Redis is not asked after a failure (the circuit breaker is open); then one call probes.
    /// Defaults to 2 seconds.
    /// </summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Gets or sets how often the shared overlay's version is checked, the safety net under the change notices
    /// (pub/sub is at-most-once). Defaults to 500 ms.
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Gets whether shared state is on.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(Configuration);
}
