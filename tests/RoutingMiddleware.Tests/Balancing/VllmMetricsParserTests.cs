using System.Text;
using ModelRouting.Balancing;

namespace ModelRouting.Tests.Balancing;

public sealed class VllmMetricsParserTests
{
    private static MetricsParseStatus Parse(string page, out VllmMetrics? metrics, out string? error) =>
        VllmMetricsParser.Parse(Encoding.UTF8.GetBytes(page), out metrics, out error);

    private const string VllmPage = """
        # HELP vllm:num_requests_running Number of requests in model execution batches.
        # TYPE vllm:num_requests_running gauge
        vllm:num_requests_running{engine="0",model_name="llama"} 3.0
        # HELP vllm:num_requests_waiting Number of requests waiting to be processed.
        # TYPE vllm:num_requests_waiting gauge
        vllm:num_requests_waiting{engine="0",model_name="llama"} 4.0
        vllm:num_requests_waiting{engine="1",model_name="llama"} 2.0
        # TYPE vllm:kv_cache_usage_perc gauge
        vllm:kv_cache_usage_perc{engine="0",model_name="llama"} 0.25
        vllm:kv_cache_usage_perc{engine="1",model_name="llama"} 0.75
        # TYPE vllm:lora_requests_info gauge
        vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters=""} 1.7e+09
        vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql-lora,chat",waiting_lora_adapters="tiny"} 1.700000005e+09
        vllm:time_to_first_token_seconds_bucket{le="0.001",model_name="llama"} 0.0
        process_cpu_seconds_total 12.5
        """;

    [Fact]
    public void Parse_VllmPage_SumsQueuesTakesLargestKvAndNewestAdapters()
    {
        Assert.Equal(MetricsParseStatus.Parsed, Parse(VllmPage, out var metrics, out _));
        Assert.Equal(6, metrics!.Waiting);
        Assert.Equal(3, metrics.Running);
        Assert.Equal(0.75, metrics.KvCacheUsage);
        Assert.Equal(["sql-lora", "chat", "tiny"], metrics.Adapters);
        Assert.True(metrics.HasAdapter("tiny"));
        Assert.False(metrics.HasAdapter("old"));
    }

    [Fact]
    public void Parse_OlderGpuCacheName_IsTheKvCacheUse()
    {
        Assert.Equal(MetricsParseStatus.Parsed, Parse("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\r\nvllm:num_requests_waiting 1\r\n", out var metrics, out _));
        Assert.Equal(0.5, metrics!.KvCacheUsage);
        Assert.Equal(1, metrics.Waiting);
    }

    [Fact]
    public void Parse_BothKvNames_PrefersTheNewOne()
    {
        Assert.Equal(MetricsParseStatus.Parsed, Parse("vllm:gpu_cache_usage_perc 0.9\nvllm:kv_cache_usage_perc 0.1\n", out var metrics, out _));
        Assert.Equal(0.1, metrics!.KvCacheUsage);
    }

    [Theory]
    [InlineData("# HELP tgi_queue_size Queue size\ntgi_queue_size 12\nsglang:num_queue_reqs 3\n")]
    [InlineData("")]
    [InlineData("<html><body>Not Found</body></html>")]
    [InlineData("vllm:some_future_metric 1\nvllm:num_requests_waiting_total_x 2\n")]
    public void Parse_NoVllmSignals_ReportsNoVllmMetrics(string page)
    {
        Assert.Equal(MetricsParseStatus.NoVllmMetrics, Parse(page, out var metrics, out _));
        Assert.Null(metrics);
    }

    [Theory]
    [InlineData("vllm:num_requests_waiting{model_name=\"m\"} lots\n")]
    [InlineData("vllm:num_requests_waiting{model_name=\"m\" 3\n")]
    [InlineData("vllm:kv_cache_usage_perc NaN\n")]
    [InlineData("vllm:kv_cache_usage_perc +Inf\n")]
    [InlineData("vllm:num_requests_waiting \n")]
    [InlineData("vllm:lora_requests_info{running_lora_adapters=oops} 1\n")]
    public void Parse_MalformedVllmSample_ReportsMalformed(string page)
    {
        Assert.Equal(MetricsParseStatus.Malformed, Parse(page, out var metrics, out var error));
        Assert.Null(metrics);
        Assert.StartsWith("line 1", error);
    }

    [Fact]
    public void Parse_QuotedBracesAndEscapesInLabels_AreSkipped()
    {
        var page = "vllm:num_requests_waiting{model_name=\"a}b\\\"c\"} 5 1700000000000\n"
            + "vllm:lora_requests_info{running_lora_adapters=\"x\\\\y, z\",waiting_lora_adapters=\"\",max_lora=\"2\"} 1\n";
        Assert.Equal(MetricsParseStatus.Parsed, Parse(page, out var metrics, out _));
        Assert.Equal(5, metrics!.Waiting);
        Assert.Equal(["x\\y", "z"], metrics.Adapters);
    }

    [Fact]
    public void Parse_OutOfRangeKvUse_IsClamped()
    {
        Assert.Equal(MetricsParseStatus.Parsed, Parse("vllm:kv_cache_usage_perc 1.7\nvllm:num_requests_waiting -3\n", out var metrics, out _));
        Assert.Equal(1, metrics!.KvCacheUsage);
        Assert.Equal(0, metrics.Waiting);
    }
}

public sealed class MetricsAddressTests
{
    [Theory]
    [InlineData("http://10.0.0.5:8000/v1/", null, "http://10.0.0.5:8000/metrics")]
    [InlineData("https://gpu-1.internal/", null, "https://gpu-1.internal/metrics")]
    [InlineData("http://10.0.0.5:8000/", "http://10.0.0.5:9100/health", "http://10.0.0.5:9100/metrics")]
    public void MetricsAddress_IsTheHostOfTheHealthOrDestinationAddress(string address, string? health, string expected)
    {
        var destination = new Yarp.ReverseProxy.Model.DestinationState("d", new Yarp.ReverseProxy.Model.DestinationModel(
            new Yarp.ReverseProxy.Configuration.DestinationConfig { Address = address, Health = health }));
        Assert.Equal(new Uri(expected), MetricsScraper.MetricsAddress(destination, new ModelAwareOptions()));
    }
}
