using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Memory;
using ModelRouting.Configuration;
using ModelRouting.Registry;

namespace ModelRouting.Inspection;

/// <summary>
/// Exact prompt counts with the local tokenizer: the endpoint's tiktoken encoding (<c>TokenEncoding</c>), else the
/// global <c>TokenEstimation:Encoding</c>. One counter and one string-count cache per encoding, created once.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class LocalExactPromptCounter(IMemoryCache cache) : IExactPromptCounter
{
    private readonly ConcurrentDictionary<string, ITokenCounter> _counters = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, TextCountCache> _caches = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Gets the exact counter of an encoding, created once.</summary>
    public ITokenCounter Counter(string encoding) => _counters.GetOrAdd(encoding, static (name, cache) => new TiktokenTokenCounter(name, cache), cache);

    /// <summary>Gets the cache of exact counts of an encoding, by raw string bytes.</summary>
    public TextCountCache Cache(string encoding, int size) =>
        _caches.GetOrAdd(encoding, static (_, size) => new TextCountCache(size), size);

    /// <inheritdoc />
    public long CountPrompt(TokenEstimationOptions settings, ReadOnlySpan<byte> body, ReadOnlySpan<TextRange> ranges, in ParsedRequest parsed, ModelEndpoint? endpoint)
    {
        var encoding = endpoint?.TokenEncoding ?? settings.Encoding;
        var counter = Counter(encoding);
        var counts = Cache(encoding, settings.CacheSize);
        long total = parsed.FixedTokens;
        byte[]? scratch = null;
        try
        {
            foreach (var range in ranges)
            {
                var raw = body.Slice(range.Start, range.Length);
                if (!counts.TryGet(raw, out var count))
                {
                    count = PromptCountState.CountUncached(counter, raw, range.IsEscaped, ref scratch);
                    counts.Set(raw, count, range.IsEscaped);
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
}
