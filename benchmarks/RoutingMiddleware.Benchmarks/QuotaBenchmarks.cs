using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Configuration;
using ModelRouting.Keys;
using ModelRouting.Quotas;
using ModelRouting.Registry;

namespace ModelRouting.Benchmarks;

/// <summary>
/// What client keys and limits cost per request (SPEC §14): finding the key among 100, one admission and its
/// completion against a key and an endpoint with every limit, and writing the six x-ratelimit-* headers.
/// </summary>
[MemoryDiagnoser]
public class QuotaBenchmarks
{
    private ClientKeySet _keys = null!;
    private DefaultHttpContext _context = new();
    private readonly InProcessQuotaStore _store = new(TimeProvider.System);
    private QuotaScope _key = null!;
    private QuotaScope _endpoint = null!;
    private RateLimitSnapshot _snapshot;

    [GlobalSetup]
    public void Setup()
    {
        var registry = ModelRegistry.Empty;
        var options = Enumerable.Range(0, 100).Select(i => new ClientKeyOptions
        {
            Id = "team-" + i,
            KeyHash = ClientKeyValidator.HashHex("sk-bench-" + i),
            Models = ["*"],
        }).ToList();
        _keys = ClientKeySet.Build(options, [], registry);
        _context = new DefaultHttpContext();
        _context.Request.Headers.Authorization = "Bearer sk-bench-42";
        var limits = new RateLimits(100_000_000, 1_000_000_000_000, 100_000);
        _key = new QuotaScope("key:team-42", limits);
        _endpoint = new QuotaScope("endpoint:m", limits);
        _snapshot = _store.AdmitAsync(new QuotaRequest(_key, _endpoint, 300), default).AsTask().GetAwaiter().GetResult().Snapshot;
    }

    [Benchmark]
    public bool Authenticate() => _keys.Authenticate(_context.Request, TimeProvider.System, out _) is not null;

    [Benchmark]
    public async Task<long> AdmitAndComplete()
    {
        var decision = await _store.AdmitAsync(new QuotaRequest(_key, _endpoint, 300), default);
        await _store.CompleteAsync(decision.Lease!, 120);
        return decision.Snapshot.RemainingTokens;
    }

    [Benchmark]
    public int WriteHeaders()
    {
        var headers = new HeaderDictionary();
        QuotaHeaders.Write(headers, _snapshot);
        return headers.Count;
    }
}
