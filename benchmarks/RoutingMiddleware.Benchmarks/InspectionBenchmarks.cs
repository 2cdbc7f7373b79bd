using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Caching.Memory;
using ModelRouting.Inspection;

namespace ModelRouting.Benchmarks;

/// <summary>
/// Inspect-and-estimate on chat bodies: the gateway's single pass (model, output tokens, prompt estimate)
/// with the heuristic and with exact tiktoken counts, against JsonDocument.Parse of the same body.
/// </summary>
[MemoryDiagnoser]
public class InspectionBenchmarks : IDisposable
{
    private byte[] _body = [];
    private PromptText _text = null!;
    private TiktokenTokenCounter _exactCold = null!;
    private TiktokenTokenCounter _exactWarm = null!;
    private MemoryCache _warmCache = null!;
    private TextCountCache _heuristicCounts = null!;
    private TextCountCache _exactCounts = null!;

    [Params(1024, 16 * 1024, 256 * 1024, 1024 * 1024)]
    public int BodyBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _body = ChatBodies.Create(BodyBytes);
        _text = new PromptText();
        _exactCold = new TiktokenTokenCounter("o200k_base", new NoCache());
        _warmCache = new MemoryCache(new MemoryCacheOptions { SizeLimit = 10_000 });
        _exactWarm = new TiktokenTokenCounter("o200k_base", _warmCache);
        _heuristicCounts = new TextCountCache(10_000);
        _exactCounts = new TextCountCache(10_000);
        Parse(_exactWarm, _exactCounts); // caches the system prompt and every other text of this body
        Parse(HeuristicTokenCounter.Instance, _heuristicCounts);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _text?.Dispose();
        _warmCache?.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark(Baseline = true, Description = "JsonDocument.Parse")]
    public int JsonDocumentParse()
    {
        using var document = JsonDocument.Parse(_body);
        return document.RootElement.Touch();
    }

    [Benchmark(Description = "single pass, bytes/4")]
    public long BytesOverFour() => Parse(BytesOverFourCounter.Instance);

    [Benchmark(Description = "single pass, heuristic, cold")]
    public long Heuristic() => Parse(HeuristicTokenCounter.Instance);

    [Benchmark(Description = "single pass, heuristic, texts cached")]
    public long HeuristicCached() => Parse(HeuristicTokenCounter.Instance, _heuristicCounts);

    [Benchmark(Description = "single pass, exact, cold")]
    public long ExactCold() => Parse(_exactCold);

    [Benchmark(Description = "single pass, exact, texts cached")]
    public long ExactCached() => Parse(_exactWarm, _exactCounts);

    private long Parse(ITokenCounter counter, TextCountCache? cache = null)
    {
        _text.Clear();
        var parsed = OpenAIRequestParser.Parse(_body, counter, 765, _text, cache);
        return parsed.PromptTokens + parsed.OutputTokens;
    }

    /// <summary>The naive estimate, to show what the parse alone costs.</summary>
    private sealed class BytesOverFourCounter : ITokenCounter
    {
        public static BytesOverFourCounter Instance { get; } = new();

        public bool IsExact => false;

        public int CountTokens(ReadOnlySpan<byte> utf8Text) => (utf8Text.Length + 3) / 4;
    }

    /// <summary>A cache that never keeps anything: every count is a cold tokenization.</summary>
    private sealed class NoCache : IMemoryCache
    {
        public ICacheEntry CreateEntry(object key) => new Entry(key);

        public void Dispose()
        {
        }

        public void Remove(object key)
        {
        }

        public bool TryGetValue(object key, out object? value)
        {
            value = null;
            return false;
        }

        private sealed class Entry(object key) : ICacheEntry
        {
            public object Key { get; } = key;

            public object? Value { get; set; }

            public DateTimeOffset? AbsoluteExpiration { get; set; }

            public TimeSpan? AbsoluteExpirationRelativeToNow { get; set; }

            public TimeSpan? SlidingExpiration { get; set; }

            public IList<Microsoft.Extensions.Primitives.IChangeToken> ExpirationTokens { get; } = [];

            public IList<PostEvictionCallbackRegistration> PostEvictionCallbacks { get; } = [];

            public CacheItemPriority Priority { get; set; }

            public long? Size { get; set; }

            public void Dispose()
            {
            }
        }
    }
}

internal static class JsonElementExtensions
{
    // Touch the document so the parse cannot be elided; an object has no array length.
    public static int Touch(this JsonElement element) => element.ValueKind == JsonValueKind.Object ? 1 : 0;
}
