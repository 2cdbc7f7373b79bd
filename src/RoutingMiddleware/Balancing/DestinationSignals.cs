namespace ModelRouting.Balancing;

/// <summary>
/// What the <c>ModelAware</c> policy knows of one destination: the tokens this gateway has in flight there, its
/// last scraped metrics and a small index for the prefix and adapter hints. Thread-safe: the in-flight count is
/// changed with interlocked operations, the metrics are an immutable snapshot swapped whole.
/// </summary>
internal sealed class DestinationSignals(int index)
{
    private long _inFlightTokens;
    private MetricsSnapshot? _metrics;

    /// <summary>Gets the destination's bit in the <see cref="PrefixIndex"/> masks (0-63; shared beyond 64 destinations).</summary>
    public int Index { get; } = index;

    /// <summary>Gets the tokens this gateway has in flight to the destination.</summary>
    public long InFlightTokens => Volatile.Read(ref _inFlightTokens);

    /// <summary>Gets the last good scrape, or null.</summary>
    public MetricsSnapshot? Metrics => Volatile.Read(ref _metrics);

    /// <summary>Gets or sets the last scrape failure logged, so a failing destination is logged once until a scrape succeeds.</summary>
    public string? LoggedFailure { get; set; }

    public void AddInFlight(long tokens) => Interlocked.Add(ref _inFlightTokens, tokens);

    public void SetMetrics(MetricsSnapshot? metrics) => Volatile.Write(ref _metrics, metrics);
}

/// <summary>One scrape's metrics and when it was taken (<see cref="TimeProvider.GetTimestamp"/>).</summary>
internal sealed record MetricsSnapshot(VllmMetrics Metrics, long Timestamp);
