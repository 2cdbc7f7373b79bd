using System.Text.Json;
using ModelRouting.Registry;

namespace ModelRouting.Observability;

/// <summary>
/// The JSON the status page polls (<c>/status/data</c>): every endpoint of the registry with its status and, over
/// the last minute, requests/s, tokens/s, p50/p99 latency, p50/p99 time to first token and errors; and per-bucket
/// series over the last 15 minutes for the charts.
/// </summary>
internal static class StatusReport
{
    /// <summary>The seconds the table's figures cover.</summary>
    public const int TableSeconds = 60;

    public static void Write(Utf8JsonWriter writer, ModelRegistry registry, StatusWindow window, DateTimeOffset now)
    {
        var period = window.CurrentPeriod;
        var tableBuckets = TableSeconds / StatusWindow.BucketSeconds;
        // The current bucket is partly filled: the table covers the full buckets before it plus the part elapsed.
        var tableSpan = ((tableBuckets - 1) * StatusWindow.BucketSeconds) + Math.Max(window.SecondsIntoPeriod, 0.5);
        var latency = new long[LatencyHistogram.Count];
        var firstToken = new long[LatencyHistogram.Count];
        var bucketLatency = new long[LatencyHistogram.Count];

        writer.WriteStartObject();
        writer.WriteString("generatedAt", now);
        writer.WriteNumber("bucketSeconds", StatusWindow.BucketSeconds);
        writer.WriteNumber("tableSeconds", TableSeconds);
        writer.WriteNumber("firstPeriod", period - StatusWindow.BucketCount + 1);
        writer.WriteStartArray("endpoints");
        foreach (var endpoint in registry.AllEndpoints)
        {
            var series = window.Get(endpoint.Id.Value);
            Array.Clear(latency);
            Array.Clear(firstToken);
            long requests = 0, errors = 0, tokens = 0, total = 0;
            for (var p = period - tableBuckets + 1; p <= period; p++)
            {
                if (series?.At(p) is not { } bucket)
                {
                    continue;
                }

                requests += Volatile.Read(ref bucket.Requests);
                errors += Volatile.Read(ref bucket.Errors);
                tokens += Volatile.Read(ref bucket.Tokens);
                Add(latency, bucket.Latency);
                Add(firstToken, bucket.TimeToFirstToken);
            }

            writer.WriteStartObject();
            writer.WriteString("id", endpoint.Id.Value);
            writer.WriteString("cluster", endpoint.Cluster);
            writer.WriteString("status", endpoint.Status.ToWireName());
            writer.WriteNumber("requestsPerSecond", Math.Round(requests / tableSpan, 3));
            writer.WriteNumber("tokensPerSecond", Math.Round(tokens / tableSpan, 3));
            WriteMilliseconds(writer, "p50Ms", LatencyHistogram.Percentile(latency, 0.5));
            WriteMilliseconds(writer, "p99Ms", LatencyHistogram.Percentile(latency, 0.99));
            WriteMilliseconds(writer, "ttftP50Ms", LatencyHistogram.Percentile(firstToken, 0.5));
            WriteMilliseconds(writer, "ttftP99Ms", LatencyHistogram.Percentile(firstToken, 0.99));
            writer.WriteNumber("errors", errors);

            // The charts: one value per bucket, oldest first (null p99 where a bucket saw no request).
            writer.WriteStartObject("series");
            writer.WriteStartArray("requestsPerSecond");
            for (var p = period - StatusWindow.BucketCount + 1; p <= period; p++)
            {
                var count = series?.At(p) is { } bucket ? Volatile.Read(ref bucket.Requests) : 0;
                total += count;
                writer.WriteNumberValue(Math.Round((double)count / StatusWindow.BucketSeconds, 3));
            }

            writer.WriteEndArray();
            writer.WriteStartArray("tokensPerSecond");
            for (var p = period - StatusWindow.BucketCount + 1; p <= period; p++)
            {
                var count = series?.At(p) is { } bucket ? Volatile.Read(ref bucket.Tokens) : 0;
                writer.WriteNumberValue(Math.Round((double)count / StatusWindow.BucketSeconds, 3));
            }

            writer.WriteEndArray();
            writer.WriteStartArray("errors");
            for (var p = period - StatusWindow.BucketCount + 1; p <= period; p++)
            {
                writer.WriteNumberValue(series?.At(p) is { } bucket ? Volatile.Read(ref bucket.Errors) : 0);
            }

            writer.WriteEndArray();
            writer.WriteStartArray("p99Ms");
            for (var p = period - StatusWindow.BucketCount + 1; p <= period; p++)
            {
                Array.Clear(bucketLatency);
                if (series?.At(p) is { } bucket)
                {
                    Add(bucketLatency, bucket.Latency);
                }

                if (LatencyHistogram.Percentile(bucketLatency, 0.99) is { } p99)
                {
                    writer.WriteNumberValue(Math.Round(p99, 1));
                }
                else
                {
                    writer.WriteNullValue();
                }
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
            writer.WriteNumber("requests15m", total);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void Add(long[] sum, int[] counts)
    {
        for (var i = 0; i < counts.Length; i++)
        {
            sum[i] += Volatile.Read(ref counts[i]);
        }
    }

    private static void WriteMilliseconds(Utf8JsonWriter writer, string name, double? value)
    {
        if (value is { } ms)
        {
            writer.WriteNumber(name, Math.Round(ms, 1));
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
