using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace ModelRouting.SharedState;

/// <summary>
/// Counts the admissions decided without Redis (SPEC §16) in the counter <c>model_routing.redis.fallback_decisions</c>
/// of the Meter <c>ModelRouting</c> (tag <c>decision</c>: <c>in_process</c> or <c>refused</c>), and logs them once per
/// interval, so an outage under load is one line every few seconds, not one per request. Thread-safe.
/// </summary>
internal sealed class QuotaFallbackReport(ILogger logger, TimeProvider time)
{
    /// <summary>How often, at most, the decisions are logged.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private static readonly Meter Meter = new("ModelRouting");
    private static readonly Counter<long> Decisions = Meter.CreateCounter<long>(
        "model_routing.redis.fallback_decisions", "{decision}", "Rate-limit admissions decided while Redis was unavailable.");

    private readonly long _intervalTicks = (long)(Interval.TotalSeconds * time.TimestampFrequency);
    private long _since = long.MinValue;
    private long _count;

    /// <summary>Counts one decision and logs the interval's count when the interval has passed.</summary>
    public void Record(bool refused)
    {
        var decision = refused ? "refused" : "in_process";
        Decisions.Add(1, new KeyValuePair<string, object?>("decision", decision));
        var count = Interlocked.Increment(ref _count);
        var now = time.GetTimestamp();
        var since = Volatile.Read(ref _since);
        if (now - since >= _intervalTicks && Interlocked.CompareExchange(ref _since, now, since) == since)
        {
            Interlocked.Add(ref _count, -count);
            SharedStateLog.QuotaFallback(logger, count, (int)Interval.TotalSeconds, refused ? "refused (FailClosed)" : "in process at each limit divided by the replicas");
        }
    }
}
