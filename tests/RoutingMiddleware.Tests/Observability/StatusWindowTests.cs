using System.Buffers;
using System.Text.Json;
using ModelRouting.Observability;
using ModelRouting.Registry;
using ModelRouting.Tests.TestSupport;

namespace ModelRouting.Tests.Observability;

/// <summary>The status page's rolling window: per-endpoint buckets that roll over, and the figures read from them.</summary>
public sealed class StatusWindowTests
{
    [Fact]
    public void Report_TableCoversTheLastMinute_SeriesTheLast15Minutes()
    {
        var time = new ManualTimeProvider();
        var window = new StatusWindow(time);
        var registry = new ModelRegistry(time)
            .Register(new ModelEndpoint(new ModelId("a"), "a", "pool")).Registry!
            .Register(new ModelEndpoint(new ModelId("idle"), "idle", "pool") { Status = EndpointStatus.Disabled }).Registry!;

        // Two minutes ago: 10 slow requests. Now: 99 at 10 ms and one at 1 s, 2 errors, 50 tokens each, 5 streams.
        for (var i = 0; i < 10; i++)
        {
            window.Record("a", 5000, -1, 10, false);
        }

        time.Advance(TimeSpan.FromMinutes(2));
        for (var i = 0; i < 100; i++)
        {
            window.Record("a", i == 99 ? 1000 : 10, i < 5 ? 8 : -1, 50, i < 2);
        }

        var report = Write(registry, window, time);
        var endpoints = report.GetProperty("endpoints");
        Assert.Equal(2, endpoints.GetArrayLength());
        var a = endpoints[0];
        Assert.Equal("a", a.GetProperty("id").GetString());
        Assert.Equal("ready", a.GetProperty("status").GetString());
        Assert.Equal(2, a.GetProperty("errors").GetInt64());
        Assert.InRange(a.GetProperty("p50Ms").GetDouble(), 10, 10 * 1.19);
        Assert.InRange(a.GetProperty("p99Ms").GetDouble(), 10, 10 * 1.19);
        Assert.InRange(a.GetProperty("ttftP50Ms").GetDouble(), 8, 8 * 1.19);
        Assert.Equal(110, a.GetProperty("requests15m").GetInt64());
        Assert.True(a.GetProperty("requestsPerSecond").GetDouble() > 0);
        Assert.True(a.GetProperty("tokensPerSecond").GetDouble() > a.GetProperty("requestsPerSecond").GetDouble());

        var series = a.GetProperty("series");
        Assert.Equal(StatusWindow.BucketCount, series.GetProperty("requestsPerSecond").GetArrayLength());
        Assert.Equal(100.0 / StatusWindow.BucketSeconds, series.GetProperty("requestsPerSecond")[StatusWindow.BucketCount - 1].GetDouble());
        Assert.Equal(10.0 / StatusWindow.BucketSeconds, series.GetProperty("requestsPerSecond")[StatusWindow.BucketCount - 1 - (120 / StatusWindow.BucketSeconds)].GetDouble());
        Assert.InRange(series.GetProperty("p99Ms")[StatusWindow.BucketCount - 1 - (120 / StatusWindow.BucketSeconds)].GetDouble(), 5000, 5000 * 1.19);

        var idle = endpoints[1];
        Assert.Equal("disabled", idle.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, idle.GetProperty("p50Ms").ValueKind);
        Assert.Equal(0, idle.GetProperty("requests15m").GetInt64());

        // Sixteen minutes on, everything has rolled out of the window.
        time.Advance(TimeSpan.FromMinutes(16));
        Assert.Equal(0, Write(registry, window, time).GetProperty("endpoints")[0].GetProperty("requests15m").GetInt64());
    }

    [Fact]
    public void Bucket_ReusedForANewPeriod_StartsFromZero()
    {
        var time = new ManualTimeProvider();
        var window = new StatusWindow(time);
        window.Record("a", 10, -1, 1, true);
        time.Advance(TimeSpan.FromSeconds(StatusWindow.BucketSeconds * StatusWindow.BucketCount)); // same slot, next lap
        window.Record("a", 10, -1, 1, false);

        var bucket = window.Get("a")!.At(window.CurrentPeriod)!;
        Assert.Equal(1, bucket.Requests);
        Assert.Equal(0, bucket.Errors);
    }

    [Theory]
    [InlineData(0.5, 1)]
    [InlineData(1, 1)]
    [InlineData(10, 10)]
    [InlineData(1234, 1234)]
    [InlineData(1e12, 1e12)]
    public void LatencyHistogram_BucketHoldsTheValue_WithinNineteenPercent(double milliseconds, double expectedAtLeast)
    {
        var index = LatencyHistogram.IndexOf(milliseconds);
        var upper = LatencyHistogram.UpperBound(index);
        if (index < LatencyHistogram.Count - 1)
        {
            Assert.InRange(upper, expectedAtLeast, Math.Max(1, expectedAtLeast) * 1.19);
        }
        else
        {
            Assert.True(upper < milliseconds); // beyond the last bucket: clamped
        }
    }

    private static JsonElement Write(ModelRegistry registry, StatusWindow window, TimeProvider time)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            StatusReport.Write(writer, registry, window, time.GetUtcNow());
        }

        return JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone();
    }
}
