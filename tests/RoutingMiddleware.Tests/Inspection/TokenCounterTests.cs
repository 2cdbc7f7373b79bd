using System.Globalization;
using System.Text;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.ML.Tokenizers;
using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

public sealed class TokenCounterTests
{
    private static readonly string LongText = string.Concat(Enumerable.Repeat("You are a helpful assistant. Answer concisely. ", 20));

    [Fact]
    public void Corpus_IsComplete()
    {
        var files = Directory.GetFiles(TokenCorpus.Directory, "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith("reference-counts.tsv", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(TokenCorpus.Directory, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal);
        Assert.Equal(files, TokenCorpus.Documents.Select(d => d.File).Order(StringComparer.Ordinal));
        Assert.All(TokenCorpus.Documents, d => Assert.InRange(d.Utf8.Length, 500, 20_000));
    }

    [Fact]
    public void ReferenceCounts_EqualTiktokenCounter()
    {
        using var cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = 1000 });
        var o200k = new TiktokenTokenCounter("o200k_base", cache);
        var cl100k = new TiktokenTokenCounter("cl100k_base", cache);
        Assert.All(TokenCorpus.Documents, d =>
        {
            Assert.True(d.O200kBase == o200k.CountTokens(d.Utf8), $"{d.File}: o200k_base");
            Assert.True(d.Cl100kBase == cl100k.CountTokens(d.Utf8), $"{d.File}: cl100k_base");
        });
    }

    [Theory]
    [InlineData("o200k_base")]
    [InlineData("cl100k_base")]
    public void Tiktoken_CountsEqualMicrosoftMLTokenizers(string encoding)
    {
        var tokenizer = TiktokenTokenizer.CreateForEncoding(encoding);
        using var cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = 1000 });
        var counter = new TiktokenTokenCounter(encoding, cache);
        Assert.True(counter.IsExact);
        Assert.Equal(encoding, counter.EncodingName);

        string[] samples =
        [
            "", "a", "Hello, world!", "  leading and trailing  ", "数字 12345678 と漢字。", "emoji 👩🏻‍💻🇯🇵 ✅",
            "{\"role\":\"user\",\"content\":\"hi\"}", LongText, new string(' ', 300), "Ünïcödé façade — “quoted”",
        ];
        foreach (var text in samples.Concat(TokenCorpus.Documents.Select(d => Encoding.UTF8.GetString(d.Utf8))))
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            Assert.Equal(tokenizer.CountTokens(text), counter.CountTokens(bytes));
            Assert.Equal(tokenizer.CountTokens(text), counter.CountTokens(bytes)); // again, from the cache when long
        }
    }

    [Fact]
    public void Tiktoken_RepeatedLongText_IsTokenizedOnce()
    {
        using var cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = 100 });
        var counter = new TiktokenTokenCounter("o200k_base", cache);
        var bytes = Encoding.UTF8.GetBytes(LongText);

        var first = counter.CountTokens(bytes);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(first, counter.CountTokens(bytes.AsSpan().ToArray()));
        }

        Assert.Equal(1, counter.TokenizerInvocations);
    }

    [Fact]
    public void Tiktoken_CacheIsKeyedByEncoding()
    {
        using var cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = 100 });
        var o200k = new TiktokenTokenCounter("o200k_base", cache);
        var cl100k = new TiktokenTokenCounter("cl100k_base", cache);
        var text = Encoding.UTF8.GetBytes("これはキャッシュのテストです。同じ文章でもエンコーディングが違えばトークン数も違います。");

        Assert.Equal(TiktokenTokenizer.CreateForEncoding("o200k_base").CountTokens(Encoding.UTF8.GetString(text)), o200k.CountTokens(text));
        Assert.Equal(TiktokenTokenizer.CreateForEncoding("cl100k_base").CountTokens(Encoding.UTF8.GetString(text)), cl100k.CountTokens(text));
        Assert.Equal(1, o200k.TokenizerInvocations);
        Assert.Equal(1, cl100k.TokenizerInvocations);
    }

    [Fact]
    public void Tiktoken_ShortTexts_AreNotCached()
    {
        using var cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = 100 });
        var counter = new TiktokenTokenCounter("o200k_base", cache);
        var bytes = Encoding.UTF8.GetBytes("short text");
        Assert.True(bytes.Length < TiktokenTokenCounter.MinCachedBytes);

        counter.CountTokens(bytes);
        counter.CountTokens(bytes);

        Assert.Equal(2, counter.TokenizerInvocations);
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void Tiktoken_CacheRespectsSizeLimit()
    {
        const int limit = 16;
        using var cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = limit });
        var counter = new TiktokenTokenCounter("o200k_base", cache);

        for (var i = 0; i < 500; i++)
        {
            var text = Encoding.UTF8.GetBytes($"Distinct prompt number {i}: {LongText}");
            Assert.True(counter.CountTokens(text) > 0);
            Assert.InRange(cache.Count, 0, limit);
        }

        Assert.InRange(cache.Count, 1, limit);
        Assert.Equal(500, counter.TokenizerInvocations);
    }

    [Theory]
    [InlineData("p50k_base")]
    [InlineData("gpt-4o")]
    [InlineData("")]
    public void Tiktoken_UnknownEncoding_IsRefused(string encoding)
    {
        using var cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = 10 });
        var error = Assert.Throws<ArgumentException>(() => new TiktokenTokenCounter(encoding, cache));
        Assert.Contains("o200k_base", error.Message, StringComparison.Ordinal);
        Assert.Contains("cl100k_base", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Heuristic_IsNotExact_AndEmptyIsZero()
    {
        Assert.False(HeuristicTokenCounter.Instance.IsExact);
        Assert.Equal(0, HeuristicTokenCounter.Instance.CountTokens([]));
        Assert.Equal(1, HeuristicTokenCounter.Instance.CountTokens("a"u8));
    }

    [Fact]
    public void Heuristic_DoesNotAllocate()
    {
        var documents = TokenCorpus.Documents.Select(d => d.Utf8).ToArray();
        HeuristicTokenCounter.Instance.CountTokens(documents[0]); // warm up (JIT)

        var before = GC.GetAllocatedBytesForCurrentThread();
        long total = 0;
        for (var i = 0; i < documents.Length; i++)
        {
            total += HeuristicTokenCounter.Instance.CountTokens(documents[i]);
        }

        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
        Assert.True(total > 0);
    }

    [Theory]
    [InlineData("\xC3")]
    [InlineData("abc\xE6\x97")]
    [InlineData("\xF0\x9F\x98")]
    [InlineData("\x80\x80\x80")]
    public void Heuristic_ToleratesInvalidUtf8(string latin1)
    {
        var bytes = latin1.Select(c => (byte)c).ToArray();
        Assert.InRange(HeuristicTokenCounter.Instance.CountTokens(bytes), 1, bytes.Length + 1);
    }
}

/// <summary>The token-count corpus under tests/RoutingMiddleware.Tests/Inspection/Corpus and its reference counts.</summary>
internal static class TokenCorpus
{
    public const string Adversarial = "adversarial";

    private static readonly Lazy<IReadOnlyList<CorpusDocument>> LazyDocuments = new(Load);

    public static IReadOnlyList<CorpusDocument> Documents => LazyDocuments.Value;

    public static string Directory { get; } = Locate();

    private static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Proxy.sln")))
            {
                return Path.Combine(dir.FullName, "tests", "RoutingMiddleware.Tests", "Inspection", "Corpus");
            }
        }

        throw new InvalidOperationException($"No Proxy.sln above {AppContext.BaseDirectory}.");
    }

    private static List<CorpusDocument> Load()
    {
        var documents = new List<CorpusDocument>();
        foreach (var line in File.ReadAllLines(Path.Combine(Directory, "reference-counts.tsv")).Skip(1))
        {
            if (line.Length == 0)
            {
                continue;
            }

            var fields = line.Split('\t');
            var bytes = File.ReadAllBytes(Path.Combine(Directory, fields[0]));
            documents.Add(new CorpusDocument(
                fields[0],
                fields[1],
                bytes,
                int.Parse(fields[2], CultureInfo.InvariantCulture),
                int.Parse(fields[3], CultureInfo.InvariantCulture)));
        }

        return documents;
    }
}

internal sealed record CorpusDocument(string File, string Category, byte[] Utf8, int O200kBase, int Cl100kBase);
