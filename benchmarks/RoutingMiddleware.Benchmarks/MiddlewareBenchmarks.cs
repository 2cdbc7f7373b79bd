using System.Buffers;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using ModelRouting.Inspection;
using ModelRouting.Proxy;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Benchmarks;

/// <summary>
/// The whole pipeline step on a chat request: read the body, parse and estimate, route, splice the model and
/// hand a body stream to the next step (which drains it, as the forwarder would). Allocations per request
/// must not grow with the body.
/// </summary>
[MemoryDiagnoser]
public class MiddlewareBenchmarks : IDisposable
{
    private byte[] _body = [];
    private ModelRoutingMiddleware _middleware = null!;
    private ReverseProxyFeature _feature = null!;
    private HttpMessageInvoker _invoker = null!;
    private PromptTokenEstimator _estimator = null!;
    private ModelRegistrySource _source = null!;

    [Params(1024, 16 * 1024, 256 * 1024, 1024 * 1024)]
    public int BodyBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _body = ChatBodies.Create(BodyBytes);
        var options = new ModelRoutingOptions();
        options.Endpoints.Add(new ModelEndpointOptions { Id = "qwen3-8b", UpstreamModel = "Qwen/Qwen3-8B", Cluster = "c1", MaxContextLength = 1_000_000, IsDefault = true });
        var monitor = new StaticOptionsMonitor(options);
        var cluster = new ClusterConfig { ClusterId = "c1" };
        var route = new RouteConfig { RouteId = "openai", ClusterId = "c1", Match = new RouteMatch { Path = "/v1/{**rest}" } };
        var proxyConfig = new ModelRoutingProxyConfigProvider([new InMemoryConfigProvider([route], [cluster])]);
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler());
        var clusterState = new ClusterState("c1", new ClusterModel(cluster, _invoker));
        _feature = new ReverseProxyFeature
        {
            Route = new RouteModel(route, clusterState, HttpTransformer.Default),
            Cluster = clusterState.Model,
            AllDestinations = [],
            AvailableDestinations = [],
        };
        _source = new ModelRegistrySource(monitor, proxyConfig, TimeProvider.System, NullLogger<ModelRegistrySource>.Instance);
        _estimator = new PromptTokenEstimator(monitor, HeuristicTokenCounter.Instance);
        _middleware = new ModelRoutingMiddleware(DrainAsync, _source, new Lookup(clusterState), _estimator, new ModelRouting.Failover.DestinationCooldowns(TimeProvider.System), [], new ModelRouting.Quotas.InProcessQuotaStore(TimeProvider.System), new ModelRouting.Quotas.UsageLedger(), NullLogger<ModelRoutingMiddleware>.Instance);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _invoker?.Dispose();
        _estimator?.Dispose();
        _source?.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark]
    public async Task<int> RouteChatRequest()
    {
        var context = new DefaultHttpContext();
        context.Features.Set<IReverseProxyFeature>(_feature);
        var request = context.Request;
        request.Method = "POST";
        request.Path = "/v1/chat/completions";
        request.ContentType = "application/json";
        request.ContentLength = _body.Length;
        request.Body = new MemoryStream(_body, writable: false);
        context.Response.Body = Stream.Null;
        await _middleware.InvokeAsync(context);
        await context.Response.CompleteAsync();
        foreach (var disposable in _disposables)
        {
            disposable.Dispose();
        }

        _disposables.Clear();
        return context.Response.StatusCode;
    }

    private readonly List<IDisposable> _disposables = [];

    private async Task DrainAsync(HttpContext context)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        while (await context.Request.Body.ReadAsync(buffer) > 0)
        {
        }

        ArrayPool<byte>.Shared.Return(buffer);
        _disposables.Add(context.Request.Body); // what Response.RegisterForDispose would dispose at the end
    }

    private sealed class Lookup(ClusterState cluster) : IProxyStateLookup
    {
        public IEnumerable<RouteModel> GetRoutes() => [];

        public IEnumerable<ClusterState> GetClusters() => [cluster];

        public bool TryGetRoute(string id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out RouteModel? route)
        {
            route = null;
            return false;
        }

        public bool TryGetCluster(string id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ClusterState? state)
        {
            state = id == cluster.ClusterId ? cluster : null;
            return state is not null;
        }
    }

    private sealed class StaticOptionsMonitor(ModelRoutingOptions value) : IOptionsMonitor<ModelRoutingOptions>
    {
        public ModelRoutingOptions CurrentValue => value;

        public ModelRoutingOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<ModelRoutingOptions, string?> listener) => null;
    }
}
