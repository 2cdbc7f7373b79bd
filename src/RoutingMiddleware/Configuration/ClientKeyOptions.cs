namespace ModelRouting.Configuration;

/// <summary>One entry of <c>ModelRouting:Keys</c> (SPEC §14): a client key, the models it may use and its limits.</summary>
public sealed class ClientKeyOptions
{
    /// <summary>Gets or sets the key's id: who the caller is in logs, usage and the admin API. Required, unique.</summary>
    public string? Id { get; set; }

    /// <summary>Gets or sets the hex SHA-256 of the secret (64 hex digits). Preferred over <see cref="Key"/>.</summary>
    public string? KeyHash { get; set; }

    /// <summary>Gets or sets the secret itself; accepted with a start-up warning (a configuration file should hold the hash).</summary>
    public string? Key { get; set; }

    /// <summary>
    /// Gets or sets what the key may use: endpoint ids, aliases, <c>base:*</c> (a base model and every adapter
    /// on it) or <c>*</c> (everything). Required.
    /// </summary>
    public List<string>? Models { get; set; }

    /// <summary>Gets or sets the key's limits. Defaults to none.</summary>
    public RateLimitOptions? Limits { get; set; }

    /// <summary>Gets or sets whether the key is accepted. Defaults to true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Gets or sets when the key stops being accepted. Defaults to never.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }
}

/// <summary>Limits of a key or an endpoint (SPEC §14). Unset means unlimited.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Gets or sets the requests admitted in any 60 s.</summary>
    public int? RequestsPerMinute { get; set; }

    /// <summary>Gets or sets the tokens (prompt + completion) admitted in any 60 s.</summary>
    public long? TokensPerMinute { get; set; }

    /// <summary>Gets or sets the requests in flight at once.</summary>
    public int? MaxConcurrent { get; set; }
}

/// <summary>The <c>ModelRouting:Limits</c> section: what every token limit assumes.</summary>
public sealed class LimitDefaultsOptions
{
    /// <summary>
    /// Gets or sets the output tokens reserved for a request that names no output budget (<c>max_tokens</c> and
    /// the like); corrected to the backend's <c>usage</c> when the response ends. Defaults to 256.
    /// </summary>
    public int DefaultOutputTokens { get; set; } = 256;
}
