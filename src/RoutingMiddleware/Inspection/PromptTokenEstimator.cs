using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using ModelRouting.Registry;
using ModelRouting.Routing;

namespace ModelRouting.Inspection;

/// <summary>
/// Chooses how prompt tokens are counted (SPEC §6): the counter used during the single pass (Heuristic,
/// or Tiktoken in exact mode), and the exact recount of a decision the heuristic's error could flip.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class PromptTokenEstimator : IDisposable
{
    private readonly MemoryCache _cache;
    private readonly Func<string, ITokenCounter> _createExact;
    private readonly ConcurrentDictionary<string, ITokenCounter> _exact = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, TextCountCache> _exactCaches = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Creates the estimator; exact counts share one cache bounded by <c>TokenEstimation:CacheSize</c> entries.</summary>
    public PromptTokenEstimator(IOptionsMonitor<ModelRoutingOptions> options, ITokenCounter heuristic)
    {
        Heuristic = heuristic;

        // Least recently used entries beyond the size limit are compacted away (each count has Size 1).
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = Math.Max(1, options.CurrentValue.TokenEstimation.CacheSize) });
        _createExact = encoding => new TiktokenTokenCounter(encoding, _cache);
        HeuristicCache = new TextCountCache(options.CurrentValue.TokenEstimation.CacheSize);
    }

    /// <summary>Gets the cache of heuristic counts by raw string bytes (Heuristic mode's single pass).</summary>
    public TextCountCache HeuristicCache { get; }


    public void Dispose() => _cache.Dispose();

    public ITokenCounter Heuristic { get; }


    /// <summary>
    /// Gets the counter for the single pass (exact in Tiktoken mode, else the heuristic) and the cache of its
    /// counts, read from one settings snapshot so a
    /// reload between two reads cannot file one counter's counts in the other's cache.
    /// </summary>
    /// <param name="settings">The validated settings in force (the routing state's, never a rejected reload's).</param>
    public (ITokenCounter Counter, TextCountCache Cache) Pass(TokenEstimationOptions settings) =>
        IsTiktokenMode(settings)
            ? (Exact(settings.Encoding), ExactCache(settings.Encoding, settings.CacheSize))
            : (Heuristic, HeuristicCache);

    private static bool IsTiktokenMode(TokenEstimationOptions settings) => string.Equals(settings.Mode, "Tiktoken", StringComparison.OrdinalIgnoreCase);

    /// <summary>Gets the exact counter of an encoding, created once.</summary>
    public ITokenCounter Exact(string encoding) => _exact.GetOrAdd(encoding, _createExact);

    /// <summary>
    /// Returns whether the decision was made on an estimate close enough to a context limit that the
    /// estimate's error could flip it: within the configured margin of the requested (or default)
    /// endpoint's limit or of the fallback's.
    /// </summary>
    /// <param name="settings">The validated settings in force.</param>
    /// <param name="result">The decision made on the pass's count.</param>
    /// <param name="asked">The endpoint the client named, or the default.</param>
    /// <param name="required">The tokens the decision assumed.</param>
    public static bool ShouldCountExactly(TokenEstimationOptions settings, RouteResult result, ModelEndpoint? asked, long required)
    {
        if (IsTiktokenMode(settings))
        {
            // Exact already, unless the endpoint deciding counts with another encoding than the global one.
            var deciding = result.Endpoint ?? asked;
            return deciding?.TokenEncoding is { } encoding && !string.Equals(encoding, settings.Encoding, StringComparison.OrdinalIgnoreCase);
        }

        if (settings.ExactCountMargin <= 0)
        {
            return false;
        }

        var margin = settings.ExactCountMargin;
        return IsNear(asked, required, margin) || (result.IsContextFallback && IsNear(result.Endpoint, required, margin));
    }

    private static bool IsNear(ModelEndpoint? endpoint, long required, double margin) =>
        endpoint is not null && Math.Abs(required - endpoint.MaxContextLength) <= margin * endpoint.MaxContextLength;

    /// <summary>Counts the prompt exactly from the ranges the single pass recorded; no second parse.</summary>
    public long CountExactly(TokenEstimationOptions settings, ReadOnlySpan<byte> body, ReadOnlySpan<TextRange> ranges, in ParsedRequest parsed, ModelEndpoint? endpoint)
    {
        var encoding = endpoint?.TokenEncoding ?? settings.Encoding;
        var counter = Exact(encoding);
        var cache = ExactCache(encoding, settings.CacheSize);
        long total = parsed.FixedTokens;
        byte[]? scratch = null;
        try
        {
            foreach (var range in ranges)
            {
                var raw = body.Slice(range.Start, range.Length);
                if (!cache.TryGet(raw, out var count))
                {
                    count = OpenAIRequestParser.CountUncached(counter, raw, range.IsEscaped, ref scratch);
                    cache.Set(raw, count, range.IsEscaped);
                }

                total += count;
            }
        }
        finally
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }

        return total;
    }

    /// <summary>Gets the cache of exact counts of an encoding, by raw string bytes.</summary>
    private TextCountCache ExactCache(string encoding, int size) =>
        _exactCaches.GetOrAdd(encoding, static (_, size) => new TextCountCache(size), size);
}
