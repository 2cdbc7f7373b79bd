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
    private readonly LocalExactPromptCounter _local;

    /// <summary>Creates the estimator; exact counts share one cache bounded by <c>TokenEstimation:CacheSize</c> entries.</summary>
    public PromptTokenEstimator(IOptionsMonitor<ModelRoutingOptions> options, ITokenCounter heuristic)
    {
        Heuristic = heuristic;

        // Least recently used entries beyond the size limit are compacted away (each count has Size 1).
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = Math.Max(1, options.CurrentValue.TokenEstimation.CacheSize) });
        _local = new LocalExactPromptCounter(_cache);
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
            ? (_local.Counter(settings.Encoding), _local.Cache(settings.Encoding, settings.CacheSize))
            : (Heuristic, HeuristicCache);

    private static bool IsTiktokenMode(TokenEstimationOptions settings) => string.Equals(settings.Mode, "Tiktoken", StringComparison.OrdinalIgnoreCase);

    /// <summary>Gets the exact counter of an encoding, created once.</summary>
    public ITokenCounter Exact(string encoding) => _local.Counter(encoding);

    /// <summary>
    /// Returns whether the decision must be made again on an exact count: a context refusal or a context fallback
    /// always (SPEC §18: an over-estimate must not refuse or re-route a request that fits), and otherwise an
    /// estimate close enough to a context limit that its error could flip the decision (within the configured
    /// margin of the requested, or default, endpoint's limit or of the fallback's).
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

        if (result.IsContextFallback || result.Error?.Kind == RoutingErrorKind.ContextTooLong)
        {
            return true;
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

    /// <summary>Counts the prompt exactly for <paramref name="endpoint"/> from the ranges the single pass recorded; no second parse.</summary>
    public long CountExactly(TokenEstimationOptions settings, ReadOnlySpan<byte> body, ReadOnlySpan<TextRange> ranges, in ParsedRequest parsed, ModelEndpoint? endpoint) =>
        ExactCounterFor(settings, endpoint).CountPrompt(settings, body, ranges, parsed, endpoint);

    /// <summary>
    /// Chooses the exact counter that decides for <paramref name="endpoint"/>: the local tokenizer in every mode
    /// available today. The seam for <c>TokenEstimation:Mode: Backend</c> (planned), whose counter would ask the
    /// endpoint's serving engine and fall back to this one with the margin applied.
    /// </summary>
    public IExactPromptCounter ExactCounterFor(TokenEstimationOptions settings, ModelEndpoint? endpoint) => _local;
}
