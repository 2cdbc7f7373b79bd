namespace ModelRouting.Configuration;

/// <summary>The <c>ModelRouting:Failover</c> section (SPEC §13): retries before a response starts, and cooldowns.</summary>
public sealed class FailoverOptions
{
    /// <summary>The statuses retried when <see cref="RetryOn"/> is not set.</summary>
    public static readonly IReadOnlyList<int> DefaultRetryOn = [429, 502, 503, 504];

    /// <summary>Gets or sets how many attempts a request gets at most, the first included. Defaults to 3.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>
    /// Gets or sets the backend statuses that are retried (connect failures, resets and timeouts before the
    /// response headers always are). Defaults to 429, 502, 503 and 504.
    /// </summary>
    public int[]? RetryOn { get; set; }

    /// <summary>
    /// Gets or sets how long a destination that failed is skipped; a longer <c>Retry-After</c> from the
    /// destination wins. Defaults to 5 seconds.
    /// </summary>
    public TimeSpan Cooldown { get; set; } = TimeSpan.FromSeconds(5);
}
