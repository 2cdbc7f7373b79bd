using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using ModelRouting.Proxy;
using ModelRouting.Usage;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Benchmarks;

/// <summary>
/// What the observability listener costs per request on its own (metrics into the OpenTelemetry SDK and the
/// status window): a plain request with usage, and a stream with time to first token. Must allocate nothing.
/// </summary>
[MemoryDiagnoser]
public class ObservabilityBenchmarks : IDisposable
{
    private ObservedPipeline _observed = null!;
    private ModelRegistrySource _source = null!;
    private DefaultHttpContext _context = null!;
    private GatewayRequest _plain = null!;
    private GatewayRequest _stream = null!;

    [GlobalSetup]
    public void Setup()
    {
        var options = new ModelRoutingOptions();
        options.Endpoints.Add(new ModelEndpointOptions { Id = "qwen3-8b", UpstreamModel = "Qwen/Qwen3-8B", Cluster = "c1", IsDefault = true, Aliases = ["gpt-4o-mini"] });
        var proxyConfig = new ModelRoutingProxyConfigProvider([new InMemoryConfigProvider([], [new ClusterConfig { ClusterId = "c1" }])]);
        _source = new ModelRegistrySource(new StaticOptionsMonitor(options), proxyConfig, TimeProvider.System, NullLogger<ModelRegistrySource>.Instance);
        _observed = new ObservedPipeline(_source);
        _context = new DefaultHttpContext();
        var endpoint = _source.Current.Router.Registry.Resolve("qwen3-8b")!;
        _plain = new GatewayRequest { Operation = GenAIOperation.Chat, RequestedModel = "gpt-4o-mini", Endpoint = endpoint, Attempts = 1, EstimatedPromptTokens = 120 };
        _plain.SetUsage(118, 40);
        _stream = new GatewayRequest { Operation = GenAIOperation.Chat, RequestedModel = "qwen3-8b", Endpoint = endpoint, Attempts = 1, Streaming = true, EstimatedPromptTokens = 120 };
        _stream.FirstByte = _stream.FirstToken = _stream.Started + 1000;
        _stream.SetUsage(118, 40);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _observed?.Dispose();
        _source?.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark]
    public void RecordRequest() => _observed.Listener.OnRequestCompleted(_context, _plain);

    [Benchmark]
    public void RecordStream() => _observed.Listener.OnRequestCompleted(_context, _stream);

    private sealed class StaticOptionsMonitor(ModelRoutingOptions value) : IOptionsMonitor<ModelRoutingOptions>
    {
        public ModelRoutingOptions CurrentValue => value;

        public ModelRoutingOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<ModelRoutingOptions, string?> listener) => null;
    }
}
