using System.IO.Hashing;
using System.Security.Cryptography;

namespace ModelRouting.Inspection;

/// <summary>
/// Remembers the token counts of prompt strings by their raw (still JSON-escaped) bytes, so the texts every
/// request repeats (system prompts, tool definitions, the earlier turns of a conversation) are not counted,
/// validated or even scanned again. Direct-mapped and lock-free: a fixed number of slots, two candidates
/// each holding the last text placed there, so memory is bounded and a flood of distinct prompts
/// only evicts.
/// </summary>
/// <remarks>
/// <para>
/// A lookup starts from where a string starts: the first <see cref="PrefixBytes"/> bytes pick the slots, and
/// an entry remembers its string's bytes, so the candidate is verified by the closing quote at that length and by
/// comparing the bytes (vectorized, cheaper than hashing them); the string's end need not be searched for. An
/// entry's bytes were validated as one JSON string when it was first counted, so identical bytes need no
/// validation, and a hit can never stand for other bytes: no hash collision, crafted or not, can make the parser
/// skip over a second <c>model</c> key. Strings that share their first bytes with another cached one are found the
/// slower way: their end is searched for and the whole string hashed to pick the slot, then compared.
/// </para>
/// <para>
/// Hashes (XxHash3/XxHash128, seeded per process) only pick slots. The bytes kept are bounded by
/// <c>maxStoredBytes</c> (counted per slot, so an upper bound): past it, new strings are counted but not kept.
/// Thread-safe: a slot holds an immutable entry and is replaced by a single reference write.
/// </para>
/// </remarks>
internal sealed class TextCountCache
{
    /// <summary>Strings shorter than this are cheaper to count than to hash.</summary>
    public const int MinBytes = 128;

    /// <summary>How many leading bytes of a string select its slots.</summary>
    public const int PrefixBytes = 64;

    /// <summary>The default bound on the bytes kept: 64 MiB.</summary>
    public const long DefaultMaxStoredBytes = 64L << 20;

    private static readonly long s_seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));

    private readonly Entry?[] _slots;     // by the hash of the whole string
    private readonly Entry?[] _byPrefix;  // by the hash of its first PrefixBytes bytes
    private readonly int _mask;
    private readonly long _maxStoredBytes;
    private readonly bool _collideEveryHash;
    private long _storedBytes;

    /// <summary>Creates a cache with <paramref name="slots"/> slots, rounded up to a power of two.</summary>
    public TextCountCache(int slots)
        : this(slots, DefaultMaxStoredBytes, collideEveryHash: false)
    {
    }

    /// <summary>Creates a cache; <paramref name="collideEveryHash"/> (tests only) makes every string hash alike.</summary>
    internal TextCountCache(int slots, long maxStoredBytes, bool collideEveryHash)
    {
        var size = (int)Math.Min(1 << 24, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, slots)));
        _slots = new Entry?[size];
        _byPrefix = new Entry?[size];
        _mask = size - 1;
        _maxStoredBytes = maxStoredBytes;
        _collideEveryHash = collideEveryHash;
    }

    /// <summary>Gets the number of slots.</summary>
    public int Capacity => _slots.Length;

    /// <summary>Gets the bytes of the strings the slots hold (a string in both of its slots counts twice).</summary>
    public long StoredBytes => Interlocked.Read(ref _storedBytes);

    /// <summary>
    /// Looks up the string whose raw content starts at <paramref name="start"/> (after its opening quote) without
    /// knowing where it ends, by its first bytes; on a hit, <paramref name="length"/> is its raw length and the
    /// body holds exactly the cached bytes there, followed by the closing quote.
    /// </summary>
    public bool TryGetByStart(ReadOnlySpan<byte> body, int start, out int length, out int count, out bool escaped)
    {
        if (body.Length - start > MinBytes)
        {
            var prefix = Prefix(body.Slice(start, PrefixBytes));
            var entry = Volatile.Read(ref _byPrefix[(int)prefix & _mask]);
            if (entry is not null
                && entry.Prefix == prefix
                && start + entry.Bytes.Length < body.Length
                && body[start + entry.Bytes.Length] == '"'
                && body.Slice(start, entry.Bytes.Length).SequenceEqual(entry.Bytes))
            {
                (length, count, escaped) = (entry.Bytes.Length, entry.Count, entry.Escaped);
                return true;
            }
        }

        (length, count, escaped) = (0, 0, false);
        return false;
    }

    /// <summary>Looks up a string whose raw content is known; a hit also makes it the one found by its first bytes.</summary>
    public bool TryGet(ReadOnlySpan<byte> raw, out int count)
    {
        if (raw.Length >= MinBytes)
        {
            var full = Full(raw);
            var entry = Volatile.Read(ref _slots[(int)(ulong)full & _mask]);
            if (entry is not null && entry.Full == full && raw.SequenceEqual(entry.Bytes))
            {
                Place(_byPrefix, (int)entry.Prefix & _mask, entry);
                count = entry.Count;
                return true;
            }
        }

        count = 0;
        return false;
    }

    /// <summary>
    /// Remembers the count of a validated string's raw content (strings shorter than <see cref="MinBytes"/> are not
    /// kept, nor any once the bytes kept reach the bound).
    /// </summary>
    public void Set(ReadOnlySpan<byte> raw, int count, bool escaped)
    {
        if (raw.Length < MinBytes || StoredBytes + 2L * raw.Length > _maxStoredBytes)
        {
            return;
        }

        var entry = new Entry(Prefix(raw[..PrefixBytes]), Full(raw), raw.ToArray(), count, escaped);
        Place(_slots, (int)(ulong)entry.Full & _mask, entry);
        Place(_byPrefix, (int)entry.Prefix & _mask, entry);
    }

    private void Place(Entry?[] slots, int index, Entry entry)
    {
        var previous = Interlocked.Exchange(ref slots[index], entry);
        if (!ReferenceEquals(previous, entry))
        {
            Interlocked.Add(ref _storedBytes, entry.Bytes.Length - (previous?.Bytes.Length ?? 0));
        }
    }

    private ulong Prefix(ReadOnlySpan<byte> prefix) => _collideEveryHash ? 0 : XxHash3.HashToUInt64(prefix, s_seed);

    private UInt128 Full(ReadOnlySpan<byte> raw) => _collideEveryHash ? UInt128.Zero : XxHash128.HashToUInt128(raw, s_seed);

    private sealed record Entry(ulong Prefix, UInt128 Full, byte[] Bytes, int Count, bool Escaped);
}
