using System.Text;
using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

public sealed class TextCountCacheTests
{
    private static readonly string s_long = string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 6));

    private static byte[] Body(params string[] strings) =>
        Encoding.UTF8.GetBytes("{\"a\":[" + string.Join(",", strings.Select(s => "\"" + s + "\"")) + "]}");

    [Fact]
    public void ByStart_FindsAStringSetBefore_WithItsLength()
    {
        var cache = new TextCountCache(64);
        var raw = Encoding.UTF8.GetBytes(s_long);
        cache.Set(raw, 42, escaped: false);
        var body = Body(s_long, "x");

        Assert.True(cache.TryGetByStart(body, 7, out var length, out var count, out var escaped));
        Assert.Equal((raw.Length, 42, false), (length, count, escaped));
    }

    [Fact]
    public void ByStart_SamePrefixOtherEnding_IsAMiss_ButTheWholeStringStillHits()
    {
        // Enough slots that the two whole strings (hashed with the process's random seed) practically never share
        // one: with 64 they did in about 1 run in 64, and the first string was evicted.
        var cache = new TextCountCache(1 << 20);
        cache.Set(Encoding.UTF8.GetBytes(s_long + "first"), 1, escaped: false);
        cache.Set(Encoding.UTF8.GetBytes(s_long + "second one"), 2, escaped: false);

        // The prefix slot holds the second; the first is found by its whole bytes.
        Assert.False(cache.TryGetByStart(Body(s_long + "first"), 7, out _, out _, out _));
        Assert.True(cache.TryGet(Encoding.UTF8.GetBytes(s_long + "first"), out var first));
        Assert.Equal(1, first);
        Assert.True(cache.TryGetByStart(Body(s_long + "first"), 7, out _, out var again, out _));
        Assert.Equal(1, again);
    }

    [Fact]
    public void ByStart_SameLengthDifferentBytes_IsAMiss()
    {
        var cache = new TextCountCache(64);
        cache.Set(Encoding.UTF8.GetBytes(s_long + "aaaa"), 7, escaped: false);

        Assert.False(cache.TryGetByStart(Body(s_long + "aaab"), 7, out _, out _, out _));
        Assert.False(cache.TryGet(Encoding.UTF8.GetBytes(s_long + "aaab"), out _));
    }

    [Fact]
    public void ShortStrings_AreNotKept()
    {
        var cache = new TextCountCache(64);
        cache.Set("short"u8, 1, escaped: false);

        Assert.False(cache.TryGet("short"u8, out _));
    }

    [Fact]
    public void Parse_TwiceWithCache_SameResultAndRanges()
    {
        var cache = new TextCountCache(1024);
        var body = Encoding.UTF8.GetBytes($$"""{"messages":[{"role":"system","content":"{{s_long}} \"quoted\" \\ end"},{"role":"user","content":"{{s_long}}x"}]}""");
        using var first = new PromptText();
        using var second = new PromptText();

        var cold = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 0, first, cache);
        var warm = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 0, second, cache);

        Assert.Equal(BodyError.None, warm.Error);
        Assert.Equal(cold.TextTokens, warm.TextTokens);
        Assert.Equal(first.Ranges.ToArray().Select(r => (r.Start, r.Length, r.IsEscaped)), second.Ranges.ToArray().Select(r => (r.Start, r.Length, r.IsEscaped)));
    }

    [Fact]
    public void ByStart_CollidingHashes_DifferentBytes_IsAMiss()
    {
        var cache = new TextCountCache(64, TextCountCache.DefaultMaxStoredBytes, collideEveryHash: true);
        cache.Set(Encoding.UTF8.GetBytes(s_long + "aaaa"), 7, escaped: false);

        Assert.False(cache.TryGetByStart(Body(s_long + "aaab"), 7, out _, out _, out _));
        Assert.False(cache.TryGet(Encoding.UTF8.GetBytes(s_long + "aaab"), out _));
        Assert.True(cache.TryGet(Encoding.UTF8.GetBytes(s_long + "aaaa"), out var count));
        Assert.Equal(7, count);
    }

    [Fact]
    public void Set_PastTheByteBound_NewStringsAreNotKept()
    {
        var raw = Encoding.UTF8.GetBytes(s_long);
        var cache = new TextCountCache(64, maxStoredBytes: 4L * raw.Length, collideEveryHash: false);
        cache.Set(raw, 1, escaped: false);
        cache.Set(Encoding.UTF8.GetBytes(s_long + "b"), 2, escaped: false);
        cache.Set(Encoding.UTF8.GetBytes(s_long + "c"), 3, escaped: false);

        Assert.True(cache.TryGet(raw, out _));
        Assert.False(cache.TryGet(Encoding.UTF8.GetBytes(s_long + "c"), out _));
        Assert.InRange(cache.StoredBytes, 0, 4L * raw.Length);
    }

    [Theory]
    [InlineData("prompt before the second model")]
    [InlineData("prompt between the two models")]
    public void Parse_DuplicateModel_SecondPassThroughTheCache_StillRefused(string shape)
    {
        var cache = new TextCountCache(1024);
        var body = Encoding.UTF8.GetBytes(shape == "prompt before the second model"
            ? $$"""{"prompt":"{{s_long}}","model":"a","model":"b"}"""
            : $$"""{"model":"a","prompt":"{{s_long}}","model":"b"}""");
        using var first = new PromptText();
        using var second = new PromptText();

        var cold = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 0, first, cache);
        var warm = OpenAIRequestParser.Parse(body, HeuristicTokenCounter.Instance, 0, second, cache);

        Assert.True(cache.TryGet(Encoding.UTF8.GetBytes(s_long), out _), "the prompt was not cached: the second pass did not go through the cache");
        Assert.Equal(BodyError.DuplicateModel, cold.Error);
        Assert.Equal(BodyError.DuplicateModel, warm.Error);
    }

    [Fact]
    public void Parse_HashCollisionHidingASecondModel_Refused()
    {
        // Every hash collides, as a crafted collision would: a cached string's first bytes and length are reused
        // by a body whose bytes at that length close the prompt, add a second model and open another string.
        var cache = new TextCountCache(64, TextCountCache.DefaultMaxStoredBytes, collideEveryHash: true);
        var prefix = new string('p', TextCountCache.PrefixBytes);
        const string hidden = "\",\"model\":\"evil\",\"x\":\"";
        var cached = prefix + new string('q', hidden.Length + 100);
        var crafted = prefix + hidden + new string('r', 100);
        var first = Encoding.UTF8.GetBytes($$"""{"model":"a","prompt":"{{cached}}"}""");
        var second = Encoding.UTF8.GetBytes($$"""{"model":"a","prompt":"{{crafted}}"}""");
        Assert.Equal(cached.Length, crafted.Length);
        Assert.Equal(2, System.Text.Json.JsonDocument.Parse(second).RootElement.EnumerateObject().Count(p => p.Name == "model"));
        using var ranges = new PromptText();
        Assert.Equal(BodyError.None, OpenAIRequestParser.Parse(first, HeuristicTokenCounter.Instance, 0, ranges, cache).Error);

        ranges.Clear();
        var parsed = OpenAIRequestParser.Parse(second, HeuristicTokenCounter.Instance, 0, ranges, cache);

        Assert.Equal(BodyError.DuplicateModel, parsed.Error);
    }
}
