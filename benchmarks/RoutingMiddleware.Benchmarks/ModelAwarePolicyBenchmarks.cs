using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ModelRouting.Balancing;
using ModelRouting.Configuration;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Benchmarks;

/// <summary>
/// The <c>ModelAware</c> policy's cost per pick (SPEC §17: at most 2 µs at 16 destinations), with fresh metrics on
/// every destination, tokens in flight and a populated prefix index; YARP's PowerOfTwoChoices on the same
/// destinations as the baseline. The per-request hashing the middleware does once is measured on its own.
/// </summary>
[MemoryDiagnoser]
public class ModelAwarePolicyBenchmarks
{
    private ModelAwarePolicy _policy = null!;
    private ILoadBalancingPolicy _powerOfTwo = null!;
    private DestinationState[] _destinations = [];
    private DefaultHttpContext _context = null!;
    private ClusterState _cluster = null!;
    private byte[] _body = [];

    [Params(4, 16)]
    public int Destinations { get; set; }

    /// <summary>The prompt: a short one (no full block) or an 8 KB chat (32 blocks).</summary>
    [Params(64, 8192)]
    public int PromptBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var options = new ModelRoutingOptions();
        var state = new ModelAwareState(new FixedOptionsMonitor(options), TimeProvider.System);
        _policy = new ModelAwarePolicy(state);
        _powerOfTwo = new ServiceCollection().AddReverseProxy().Services.BuildServiceProvider()
            .GetServices<ILoadBalancingPolicy>().Single(p => p.Name == LoadBalancingPolicies.PowerOfTwoChoices);
        _destinations = [.. Enumerable.Range(0, Destinations).Select(i => new DestinationState($"d{i}", new DestinationModel(new DestinationConfig { Address = $"http://10.0.0.{i}:8000/" })))];
        var random = new Random(1);
        foreach (var destination in _destinations)
        {
            var signals = state.Get(destination);
            signals.AddInFlight(random.Next(100_000));
            signals.SetMetrics(new MetricsSnapshot(new VllmMetrics(random.Next(10), random.Next(16), random.NextDouble(), ["a", "b", "c"]), TimeProvider.System.GetTimestamp()));
        }

        var prompt = new string([.. Enumerable.Range(0, PromptBytes).Select(_ => (char)('a' + random.Next(26)))]);
        _body = Encoding.UTF8.GetBytes("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt + "\"}]}");
        _context = new DefaultHttpContext();
        _context.Features.Set(ModelAwareRequest.Create(_body, PromptBytes / 4, "b"));
        _cluster = new ClusterState("c");

        // Other prompts in the index, and this one sent once.
        for (var i = 0; i < 1000; i++)
        {
            var other = new DefaultHttpContext();
            other.Features.Set(ModelAwareRequest.Create(Encoding.UTF8.GetBytes(Guid.NewGuid().ToString("N") + prompt[..Math.Min(prompt.Length, 2048)]), 500, null));
            _policy.PickDestination(other, _cluster, _destinations);
        }

        _policy.PickDestination(_context, _cluster, _destinations);
    }

    [Benchmark(Baseline = true, Description = "PowerOfTwoChoices pick")]
    public DestinationState? PowerOfTwoChoices() => _powerOfTwo.PickDestination(_context, _cluster, _destinations);

    [Benchmark(Description = "ModelAware pick")]
    public DestinationState? ModelAware() => _policy.PickDestination(_context, _cluster, _destinations);

    [Benchmark(Description = "ModelAware per-request hashing (once per request)")]
    public int Hash()
    {
        using var request = ModelAwareRequest.Create(_body, PromptBytes / 4, "b");
        return request.BlockCount;
    }

    private sealed class FixedOptionsMonitor(ModelRoutingOptions value) : IOptionsMonitor<ModelRoutingOptions>
    {
        public ModelRoutingOptions CurrentValue => value;

        public ModelRoutingOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<ModelRoutingOptions, string?> listener) => null;
    }
}
