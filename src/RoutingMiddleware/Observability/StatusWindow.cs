using System.Collections.Concurrent;

namespace ModelRouting.Observability;

/// <summary>
/// The last 15 minutes of traffic per endpoint, in 5-second buckets, for the live status page (SPEC §15): requests,
/// errors, tokens, and latency and time-to-first-token histograms (from which p50/p99 are read). Written once per
/// request without allocating or locking (a bucket that rolls over to a new period is cleared under its lock);
/// read when the page polls.
/// </summary>
/// <remarks>
/// Written here rather than read back from the OpenTelemetry SDK: its exporters give cumulative or per-export
/// deltas, not a rolling window, and the page must work with no collector. Thread-safe; a reader may see a
/// request counted in one field and not yet in another.
/// </remarks>
internal sealed class StatusWindow(TimeProvider time)
{
    /// <summary>The seconds one bucket covers.</summary>
    public const int BucketSeconds = 5;

    /// <summary>The buckets kept: 15 minutes.</summary>
    public const int BucketCount = 180;

    private const int MaxEndpoints = 1024;

    private readonly ConcurrentDictionary<string, EndpointWindow> _endpoints = new(StringComparer.Ordinal);

    /// <summary>Gets the current period (bucket number since the epoch).</summary>
    public long CurrentPeriod => time.GetUtcNow().ToUnixTimeSeconds() / BucketSeconds;

    /// <summary>Gets the seconds elapsed in the current period.</summary>
    public double SecondsIntoPeriod => (time.GetUtcNow().ToUnixTimeMilliseconds() % (BucketSeconds * 1000)) / 1000.0;

    /// <summary>Records one request to <paramref name="endpointId"/> (a registry string).</summary>
    public void Record(string endpointId, double latencyMs, double timeToFirstTokenMs, long tokens, bool error)
    {
        if (!_endpoints.TryGetValue(endpointId, out var window))
        {
            if (_endpoints.Count >= MaxEndpoints)
            {
                return;
            }

            window = _endpoints.GetOrAdd(endpointId, static _ => new EndpointWindow());
        }

        window.Record(CurrentPeriod, latencyMs, timeToFirstTokenMs, tokens, error);
    }

    /// <summary>Gets the window of an endpoint, or null if it has had no traffic.</summary>
    public EndpointWindow? Get(string endpointId) => _endpoints.GetValueOrDefault(endpointId);

    /// <summary>One endpoint's buckets.</summary>
    internal sealed class EndpointWindow
    {
        private readonly Bucket[] _buckets = CreateBuckets();

        public void Record(long period, double latencyMs, double timeToFirstTokenMs, long tokens, bool error)
        {
            var bucket = _buckets[period % BucketCount];
            if (Volatile.Read(ref bucket.Period) != period)
            {
                bucket.Roll(period);
            }

            Interlocked.Increment(ref bucket.Requests);
            if (error)
            {
                Interlocked.Increment(ref bucket.Errors);
            }

            if (tokens > 0)
            {
                Interlocked.Add(ref bucket.Tokens, tokens);
            }

            Interlocked.Increment(ref bucket.Latency[LatencyHistogram.IndexOf(latencyMs)]);
            if (timeToFirstTokenMs >= 0)
            {
                Interlocked.Increment(ref bucket.TimeToFirstToken[LatencyHistogram.IndexOf(timeToFirstTokenMs)]);
            }
        }

        /// <summary>The bucket of <paramref name="period"/>, or null if it holds nothing of that period.</summary>
        public Bucket? At(long period)
        {
            var bucket = _buckets[period % BucketCount];
            return Volatile.Read(ref bucket.Period) == period ? bucket : null;
        }

        private static Bucket[] CreateBuckets()
        {
            var buckets = new Bucket[BucketCount];
            for (var i = 0; i < buckets.Length; i++)
            {
                buckets[i] = new Bucket();
            }

            return buckets;
        }
    }

    /// <summary>One period's counts.</summary>
    internal sealed class Bucket
    {
        public long Period = -1;
        public long Requests;
        public long Errors;
        public long Tokens;
        public readonly int[] Latency = new int[LatencyHistogram.Count];
        public readonly int[] TimeToFirstToken = new int[LatencyHistogram.Count];
        private readonly Lock _roll = new();

        public void Roll(long period)
        {
            lock (_roll)
            {
                if (Period == period)
                {
                    return;
                }

                Requests = Errors = Tokens = 0;
                Array.Clear(Latency);
                Array.Clear(TimeToFirstToken);
                Volatile.Write(ref Period, period);
            }
        }
    }
}

/// <summary>
/// Fixed log-scale buckets for latencies in milliseconds: bucket i holds values up to 2^(i/4) ms (about 19% apart),
/// from 1 ms to about 4.6 hours. A percentile read from it is the upper bound of its bucket.
/// </summary>
internal static class LatencyHistogram
{
    public const int Count = 96;

    public static int IndexOf(double milliseconds)
    {
        if (!(milliseconds > 1))
        {
            return 0;
        }

        var index = (int)Math.Ceiling(4 * Math.Log2(milliseconds));
        return index < Count ? index : Count - 1;
    }

    public static double UpperBound(int index) => Math.Pow(2, index / 4.0);

    /// <summary>The <paramref name="quantile"/> (0-1) of the summed histograms, or null when they are empty.</summary>
    public static double? Percentile(ReadOnlySpan<long> counts, double quantile)
    {
        long total = 0;
        foreach (var count in counts)
        {
            total += count;
        }

        if (total == 0)
        {
            return null;
        }

        var rank = (long)Math.Ceiling(quantile * total);
        long seen = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= rank)
            {
                return UpperBound(i);
            }
        }

        return UpperBound(counts.Length - 1);
    }
}
