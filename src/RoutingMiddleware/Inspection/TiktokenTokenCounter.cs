using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.ML.Tokenizers;

namespace ModelRouting.Inspection;

/// <summary>
/// Counts tokens exactly with a tiktoken encoding (<c>o200k_base</c> or <c>cl100k_base</c>) from
/// Microsoft.ML.Tokenizers, caching the counts of longer texts (system prompts repeat on every request).
/// </summary>
/// <remarks>
/// Cache entries have <see cref="MemoryCacheEntryOptions.Size"/> 1, so the cache's
/// <see cref="MemoryCacheOptions.SizeLimit"/> bounds how many counts are kept (a cache with a size limit
/// refuses entries without a size).
/// </remarks>
public sealed class TiktokenTokenCounter : ITokenCounter
{
    /// <summary>The encodings this counter supports.</summary>
    public static IReadOnlyList<string> SupportedEncodings { get; } = ["o200k_base", "cl100k_base"];

    // Texts shorter than this are cheaper to tokenize than to hash and look up.
    internal const int MinCachedBytes = 64;

    // Loading an encoding's vocabulary takes tens of milliseconds and megabytes: once per process, on first use.
    private static readonly Lazy<Tokenizer> O200kBase = new(() => TiktokenTokenizer.CreateForEncoding("o200k_base"));
    private static readonly Lazy<Tokenizer> Cl100kBase = new(() => TiktokenTokenizer.CreateForEncoding("cl100k_base"));

    private readonly Lazy<Tokenizer> _tokenizer;
    private readonly IMemoryCache _cache;
    private long _tokenizerInvocations;

    /// <summary>Creates a counter for <paramref name="encodingName"/>.</summary>
    /// <param name="encodingName"><c>o200k_base</c> or <c>cl100k_base</c> (case-insensitive).</param>
    /// <param name="cache">The cache for counts; give it a <see cref="MemoryCacheOptions.SizeLimit"/>.</param>
    /// <exception cref="ArgumentException">The encoding is not supported.</exception>
    public TiktokenTokenCounter(string encodingName, IMemoryCache cache)
    {
        ArgumentNullException.ThrowIfNull(encodingName);
        ArgumentNullException.ThrowIfNull(cache);
        if (string.Equals(encodingName, "o200k_base", StringComparison.OrdinalIgnoreCase))
        {
            EncodingName = "o200k_base";
            _tokenizer = O200kBase;
        }
        else if (string.Equals(encodingName, "cl100k_base", StringComparison.OrdinalIgnoreCase))
        {
            EncodingName = "cl100k_base";
            _tokenizer = Cl100kBase;
        }
        else
        {
            throw new ArgumentException(
                $"Unknown tiktoken encoding '{encodingName}'; supported encodings are {string.Join(", ", SupportedEncodings)}.",
                nameof(encodingName));
        }

        _cache = cache;
    }

    /// <summary>Gets the encoding's name.</summary>
    public string EncodingName { get; }

    /// <inheritdoc />
    public bool IsExact => true;

    /// <summary>Gets how many times this counter has run the tokenizer (cache misses and short texts).</summary>
    internal long TokenizerInvocations => Interlocked.Read(ref _tokenizerInvocations);

    /// <inheritdoc />
    public int CountTokens(ReadOnlySpan<byte> utf8Text)
    {
        if (utf8Text.IsEmpty)
        {
            return 0;
        }

        if (utf8Text.Length < MinCachedBytes)
        {
            return Tokenize(utf8Text);
        }

        var key = new CacheKey(utf8Text, EncodingName);
        if (_cache.TryGetValue(key, out int cached))
        {
            return cached;
        }

        var count = Tokenize(utf8Text);
        using (var entry = _cache.CreateEntry(key))
        {
            entry.Size = 1;
            entry.Value = count;
        }

        return count;
    }

    private int Tokenize(ReadOnlySpan<byte> utf8Text)
    {
        Interlocked.Increment(ref _tokenizerInvocations);
        var buffer = ArrayPool<char>.Shared.Rent(Encoding.UTF8.GetMaxCharCount(utf8Text.Length));
        try
        {
            var length = Encoding.UTF8.GetChars(utf8Text, buffer);
            return _tokenizer.Value.CountTokens(buffer.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    /// <summary>The cache key: 128 bits of the text's SHA-256 plus the encoding.</summary>
    /// <remarks>
    /// SHA-256 rather than a fast non-cryptographic hash: request bodies come from clients, and with a 64-bit or
    /// non-cryptographic hash a client could craft a collision so that its long prompt reuses a short prompt's count
    /// and slips under a token limit. A truncated SHA-256 keeps 128 bits of collision resistance that cannot be
    /// steered, and it is hardware-accelerated (SHA-NI / ARMv8 SHA) at well over a gigabyte per second, far faster
    /// than tokenizing. System.IO.Hashing (XxHash128) is not referenced by the library.
    /// </remarks>
    private readonly record struct CacheKey
    {
        public CacheKey(ReadOnlySpan<byte> utf8Text, string encoding)
        {
            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(utf8Text, digest);
            High = BitConverter.ToUInt64(digest);
            Low = BitConverter.ToUInt64(digest[8..]);
            Encoding = encoding;
        }

        public ulong High { get; }

        public ulong Low { get; }

        public string Encoding { get; }
    }
}
