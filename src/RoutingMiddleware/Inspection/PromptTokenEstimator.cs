using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using ModelRouting.Registry;
using ModelRouting.Routing;

namespace ModelRouting.Inspection;

/// <summary>
/// Chooses how prompt tokens are counted (SPEC §6, §18): the counter used during the single pass (Heuristic,
/// or Tiktoken in exact mode), and the exact recount of a decision the heuristic's error could flip, by the local
/// tokenizer or, in Backend mode, by the endpoint's serving engine (<see cref="BackendPromptCounter"/>).
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class PromptTokenEstimator : IDisposable
{
    private readonly MemoryCache _cache;
    private readonly LocalExactPromptCounter _local;

    private readonly BackendPromptCounter? _backend;

    /// <summary>
    /// Creates the estimator; exact counts share one cache bounded by <c>TokenEstimation:CacheSize</c> entries. Without
    /// <paramref name="backend"/>, Backend mode decides on the local count with the margin, as when a count fails.
    /// </summary>
    public PromptTokenEstimator(IOptionsMonitor<ModelRoutingOptions> options, ITokenCounter heuristic, BackendPromptCounter? backend = null)
    {
        Heuristic = heuristic;
        _backend = backend;

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
    /// margin of the requested, or default, endpoint's limit or of the fallback's). The deciding endpoint's own
    /// <c>TokenEstimation:Mode</c> wins over the global one: <c>Tiktoken</c> always counts exactly, <c>Backend</c> and
    /// <c>Heuristic</c> near a limit.
    /// </summary>
    /// <param name="settings">The validated settings in force.</param>
    /// <param name="result">The decision made on the pass's count.</param>
    /// <param name="asked">The endpoint the client named, or the default.</param>
    /// <param name="required">The tokens the decision assumed.</param>
    public static bool ShouldCountExactly(TokenEstimationOptions settings, RouteResult result, ModelEndpoint? asked, long required)
    {
        var deciding = result.Endpoint ?? asked;
        var passIsExact = IsTiktokenMode(settings);
        var mode = deciding?.TokenEstimationMode;
        if (mode == TokenEstimationMode.Tiktoken || (passIsExact && mode != TokenEstimationMode.Backend))
        {
            // Exact already, unless the pass was the heuristic or the endpoint deciding counts with another encoding.
            return !passIsExact
                || (deciding?.TokenEncoding is { } encoding && !string.Equals(encoding, settings.Encoding, StringComparison.OrdinalIgnoreCase));
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

    /// <summary>Counts the prompt exactly for <paramref name="endpoint"/> with the local tokenizer, from the ranges the single pass recorded; no second parse.</summary>
    public long CountExactly(TokenEstimationOptions settings, ReadOnlySpan<byte> body, ReadOnlySpan<TextRange> ranges, in ParsedRequest parsed, ModelEndpoint? endpoint) =>
        ExactCounterFor(settings, endpoint).CountPrompt(settings, body, ranges, parsed, endpoint);

    /// <summary>
    /// Counts the prompt exactly for <paramref name="endpoint"/>, or returns false with the <c>/tokenize</c> call to
    /// make first when the endpoint counts in Backend mode and its engine has not counted these bytes: the caller
    /// awaits <see cref="CountOnBackendAsync"/> and decides again with its result as <paramref name="counted"/>. A count
    /// the engine could not make, or a body with no <c>/tokenize</c> request, is the local count with the margin applied.
    /// </summary>
    public bool TryCountExactly(
        TokenEstimationOptions settings, ReadOnlySpan<byte> body, ReadOnlySpan<TextRange> ranges, in ParsedRequest parsed, ModelEndpoint? endpoint,
        BackendPromptCount? counted, out long tokens, [NotNullWhen(false)] out BackendCountRequest? pending)
    {
        pending = null;
        if (endpoint is null || (endpoint.TokenEstimationMode ?? TokenEstimationModes.Of(settings)) != TokenEstimationMode.Backend)
        {
            tokens = CountExactly(settings, body, ranges, parsed, endpoint);
            return true;
        }

        if (counted is not null && counted.Request.IsFor(endpoint))
        {
            tokens = counted.Tokens ?? LocalWithMargin(settings, body, ranges, parsed, endpoint);
            return true;
        }

        // A count made for another endpoint (the registry changed between the two decisions) is not asked for again.
        var request = counted is null && _backend is not null ? BackendPromptCounter.Prepare(body, endpoint) : null;
        if (request is null)
        {
            tokens = LocalWithMargin(settings, body, ranges, parsed, endpoint);
            return true;
        }

        if (_backend!.TryGetCached(request, out tokens))
        {
            return true;
        }

        if (_backend.IsBackingOff(endpoint.Cluster))
        {
            tokens = LocalWithMargin(settings, body, ranges, parsed, endpoint);
            return true;
        }

        pending = request;
        return false;
    }

    /// <summary>Asks the endpoint's serving engine to count (Backend mode, SPEC §18), within <c>TokenEstimation:BackendTimeout</c>.</summary>
    public Task<BackendPromptCount> CountOnBackendAsync(BackendCountRequest request, TokenEstimationOptions settings, CancellationToken cancellationToken) =>
        _backend!.CountAsync(request, settings.BackendTimeout, cancellationToken);

    /// <summary>
    /// The local exact count when the engine's is missing, lowered by the margin: the serving model's tokenizer is not
    /// the local one, so only a request that exceeds a limit by more than the margin is refused or re-routed by the
    /// gateway, and one nearer the limit is left to the engine, which refuses it itself if it does not fit.
    /// </summary>
    private long LocalWithMargin(TokenEstimationOptions settings, ReadOnlySpan<byte> body, ReadOnlySpan<TextRange> ranges, in ParsedRequest parsed, ModelEndpoint endpoint)
    {
        var local = CountExactly(settings, body, ranges, parsed, endpoint);
        return (long)Math.Ceiling(local * (1 - Math.Clamp(settings.ExactCountMargin, 0, 1)));
    }

    /// <summary>Chooses the local exact counter for <paramref name="endpoint"/> (the endpoint's tiktoken encoding, else the global one).</summary>
    public IExactPromptCounter ExactCounterFor(TokenEstimationOptions settings, ModelEndpoint? endpoint) => _local;
}
