using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using ModelRouting.Balancing;
using ModelRouting.Configuration;
using ModelRouting.Tests.TestSupport;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Tests.Balancing;

public sealed class ModelAwarePolicyTests
{
    private readonly ManualTimeProvider _time = new();
    private readonly ModelRoutingOptions _options = new();
    private readonly ModelAwareState _state;
    private readonly ModelAwarePolicy _policy;
    private readonly DestinationState[] _destinations;

    public ModelAwarePolicyTests()
    {
        _state = new ModelAwareState(new FixedOptionsMonitor(_options), _time);
        _policy = new ModelAwarePolicy(_state);
        _destinations = [.. Enumerable.Range(0, 4).Select(i => new DestinationState($"d{i}", new DestinationModel(new DestinationConfig { Address = $"http://127.0.0.1:{9000 + i}/" })))];
    }

    private static string Body(string prompt) =>
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt + "\"}],\"stream\":true}";

    private static string LongText(int chars, int seed)
    {
        var random = new Random(seed);
        return new string([.. Enumerable.Range(0, chars).Select(_ => (char)('a' + random.Next(26)))]);
    }

    private (DestinationState Picked, ModelAwareRequest Request) Pick(string body, long tokens = 100, string? adapter = null)
    {
        var context = new DefaultHttpContext();
        var request = ModelAwareRequest.Create(Encoding.UTF8.GetBytes(body), tokens, adapter);
        context.Features.Set(request);
        var picked = _policy.PickDestination(context, new ClusterState("c"), _destinations);
        return (picked!, request);
    }

    private void SetMetrics(int destination, double waiting = 0, double kv = 0, params string[] adapters) =>
        _state.Get(_destinations[destination]).SetMetrics(new MetricsSnapshot(new VllmMetrics(waiting, 0, kv, adapters), _time.GetTimestamp()));

    private void SetInFlight(params long[] tokens)
    {
        for (var i = 0; i < tokens.Length; i++)
        {
            _state.Get(_destinations[i]).AddInFlight(tokens[i]);
        }
    }

    [Fact]
    public void Pick_NoMetrics_GoesToFewestTokensInFlight()
    {
        SetInFlight(5000, 300, 9000, 2000);
        for (var i = 0; i < 20; i++)
        {
            var (picked, request) = Pick(Body("short " + i));
            Assert.Same(_destinations[1], picked);
            request.Dispose();
        }
    }

    [Fact]
    public void Pick_CountsTokensInFlightUntilTheRequestEnds_AndARetryMovesThem()
    {
        var (picked, request) = Pick(Body("hello"), tokens: 1000);
        var cost = 1000 + _options.LoadBalancing.OutputTokenAllowance;
        Assert.Equal(cost, _state.Get(picked).InFlightTokens);

        // A failover attempt picks again among the others: the count moves with it.
        var context = new DefaultHttpContext();
        context.Features.Set(request);
        var others = _destinations.Where(d => d != picked).ToArray();
        var second = _policy.PickDestination(context, new ClusterState("c"), others)!;
        Assert.Equal(0, _state.Get(picked).InFlightTokens);
        Assert.Equal(cost, _state.Get(second).InFlightTokens);

        request.Dispose();
        Assert.All(_destinations, d => Assert.Equal(0, _state.Get(d).InFlightTokens));
        request.Dispose();
        Assert.All(_destinations, d => Assert.Equal(0, _state.Get(d).InFlightTokens));
    }

    [Fact]
    public void Pick_RequestWithoutTheFeature_IsCountedAndReleasedOnDispose()
    {
        var context = new DefaultHttpContext();
        var picked = _policy.PickDestination(context, new ClusterState("c"), _destinations)!;
        Assert.Equal(_options.LoadBalancing.OutputTokenAllowance, _state.Get(picked).InFlightTokens);
        context.Features.Get<ModelAwareRequest>()!.Dispose();
        Assert.Equal(0, _state.Get(picked).InFlightTokens);
    }

    [Fact]
    public void Pick_SamePromptPrefix_GoesWhereThePrefixWasSent()
    {
        var system = LongText(4000, 1);
        var (first, request) = Pick(Body(system + " first question"));
        request.Dispose();
        for (var i = 0; i < 20; i++)
        {
            var (picked, next) = Pick(Body(system + " question " + i));
            Assert.Same(first, picked);
            next.Dispose();
        }
    }

    [Fact]
    public void Pick_PrefixLosesToAMuchLoadedDestination()
    {
        var system = LongText(4000, 2);
        var (first, request) = Pick(Body(system));
        request.Dispose();
        _state.Get(first).AddInFlight(1_000_000);
        _state.Get(first).SetMetrics(new MetricsSnapshot(new VllmMetrics(50, 16, 0.99, []), _time.GetTimestamp()));
        var (picked, next) = Pick(Body(system + " more"));
        Assert.NotSame(first, picked);
        next.Dispose();
    }

    [Fact]
    public void Pick_DifferentPrompts_SpreadOverDestinations()
    {
        var requests = new List<ModelAwareRequest>();
        var seen = new HashSet<DestinationState>();
        for (var i = 0; i < 8; i++)
        {
            var (picked, request) = Pick(Body(LongText(2000, 100 + i)), tokens: 500);
            seen.Add(picked);
            requests.Add(request);
        }

        Assert.Equal(4, seen.Count);
        requests.ForEach(r => r.Dispose());
    }

    [Fact]
    public void Pick_AdapterRunningThere_Wins()
    {
        SetMetrics(2, adapters: ["sql-lora"]);
        for (var i = 0; i < 10; i++)
        {
            var (picked, request) = Pick(Body("q" + i), adapter: "sql-lora");
            Assert.Same(_destinations[2], picked);
            request.Dispose();
        }
    }

    [Fact]
    public void Pick_AdapterRecentlySentThere_Wins_WithoutMetrics()
    {
        var (first, request) = Pick(Body("q"), adapter: "chat-lora");
        request.Dispose();
        for (var i = 0; i < 10; i++)
        {
            var (picked, next) = Pick(Body("other " + i), adapter: "chat-lora");
            Assert.Same(first, picked);
            next.Dispose();
        }
    }

    [Fact]
    public void Pick_FreshMetrics_ShortestQueueAndEmptiestKvCacheWin()
    {
        SetMetrics(0, waiting: 10, kv: 0.9);
        SetMetrics(1, waiting: 0, kv: 0.1);
        SetMetrics(2, waiting: 10, kv: 0.1);
        SetMetrics(3, waiting: 0, kv: 0.9);
        var (picked, request) = Pick(Body("q"));
        Assert.Same(_destinations[1], picked);
        request.Dispose();
    }

    [Fact]
    public void Pick_StaleMetrics_DecayToLeastOutstandingTokens()
    {
        // d1 reports a long queue, but its metrics are older than StaleAfter: only the tokens in flight count.
        SetMetrics(0, waiting: 0);
        SetMetrics(1, waiting: 40, kv: 1);
        SetMetrics(2, waiting: 0);
        SetMetrics(3, waiting: 0);
        SetInFlight(900, 100, 900, 900);
        var (fresh, request) = Pick(Body("q"));
        Assert.NotSame(_destinations[1], fresh);
        request.Dispose();

        _time.Advance(_options.LoadBalancing.StaleAfter + TimeSpan.FromSeconds(1));
        var (stale, next) = Pick(Body("q"));
        Assert.Same(_destinations[1], stale);
        next.Dispose();
    }

    [Theory]
    [InlineData(0.5, 1)]
    [InlineData(2, 1)]
    [InlineData(6, 0.5)]
    [InlineData(10, 0)]
    [InlineData(60, 0)]
    public void Freshness_FallsLinearlyFromTwoIntervalsToStaleAfter(double ageSeconds, double expected)
    {
        var options = new ModelAwareOptions { ScrapeInterval = TimeSpan.FromSeconds(1), StaleAfter = TimeSpan.FromSeconds(10) };
        Assert.Equal(expected, ModelAwareState.Freshness(TimeSpan.FromSeconds(ageSeconds), options), 3);
    }

    [Fact]
    public void Create_SharedLeadingText_SharesLeadingBlocksOnly()
    {
        var common = LongText(ModelAwareRequest.BlockBytes * 3, 3);
        using var a = ModelAwareRequest.Create(Encoding.UTF8.GetBytes(Body(common + LongText(1000, 4))), 10, null);
        using var b = ModelAwareRequest.Create(Encoding.UTF8.GetBytes("{\"temperature\":0.5,\"model\":\"other\"," + Body(common + LongText(1000, 5))[1..]), 10, null);
        Assert.True(a.BlockCount >= 4);
        Assert.Equal(a.Blocks[..3].ToArray(), b.Blocks[..3].ToArray());
        Assert.NotEqual(a.Blocks[4], b.Blocks[4]);
    }

    [Fact]
    public void Create_LongPrompt_HashesAtMostMaxBlocks()
    {
        using var request = ModelAwareRequest.Create(Encoding.UTF8.GetBytes(Body(LongText(ModelAwareRequest.BlockBytes * (ModelAwareRequest.MaxBlocks + 50), 6))), 10, null);
        Assert.Equal(ModelAwareRequest.MaxBlocks, request.BlockCount);
        Assert.True(request.PromptBytes > ModelAwareRequest.BlockBytes * ModelAwareRequest.MaxBlocks);
    }

    [Fact]
    public void MatchPrefixes_CountsLeadingBlocksPerDestination()
    {
        var index = new PrefixIndex(1024);
        ulong[] blocks = [11, 22, 33, 44];
        index.Add(11, 0);
        index.Add(22, 0);
        index.Add(33, 0);
        index.Add(11, 5);
        index.Add(33, 5); // not a prefix without 22
        index.Add(11, 7);
        index.Add(22, 7);
        index.Add(33, 7);
        index.Add(44, 7);
        Span<int> matched = stackalloc int[64];
        ModelAwarePolicy.MatchPrefixes(blocks, index, matched);
        Assert.Equal(3, matched[0]);
        Assert.Equal(1, matched[5]);
        Assert.Equal(4, matched[7]);
        Assert.Equal(0, matched[1]);
    }

    [Fact]
    public void PrefixIndex_IsBounded_AndACollisionReplacesTheEntry()
    {
        var index = new PrefixIndex(100);
        Assert.Equal(128, index.Capacity);
        index.Add(5, 1);
        Assert.Equal(1UL << 1, index.Get(5));
        index.Add(5 + 128, 2);
        Assert.Equal(0UL, index.Get(5));
        Assert.Equal(1UL << 2, index.Get(5 + 128));
    }

    private sealed class FixedOptionsMonitor(ModelRoutingOptions value) : IOptionsMonitor<ModelRoutingOptions>
    {
        public ModelRoutingOptions CurrentValue => value;

        public ModelRoutingOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<ModelRoutingOptions, string?> listener) => null;
    }
}
