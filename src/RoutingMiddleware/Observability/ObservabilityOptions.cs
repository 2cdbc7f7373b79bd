namespace ModelRouting.Observability;

/// <summary>
/// What the gateway reports about its traffic (SPEC §15), bound from <c>ModelRouting:Observability</c>. Read once,
/// when the host is built: changing it needs a restart.
/// </summary>
public sealed class ObservabilityOptions
{
    /// <summary>Gets or sets whether metrics, the access log, traces and the status page are on. Defaults to true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Gets or sets whether one access-log line is written per request (category <c>ModelRouting.AccessLog</c>,
    /// level Information). Defaults to true. JSON console output is ASP.NET Core's own switch,
    /// <c>Logging:Console:FormatterName=json</c>.
    /// </summary>
    public bool AccessLog { get; set; } = true;

    /// <summary>Gets or sets the path of the Prometheus scrape on the management listener. Defaults to <c>/metrics</c>.</summary>
    public string MetricsPath { get; set; } = "/metrics";

    /// <summary>Gets or sets the path of the live status page on the management listener. Defaults to <c>/status</c>.</summary>
    public string StatusPath { get; set; } = "/status";
}
