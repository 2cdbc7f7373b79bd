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
/// an entry remembers its string's length, so the candidate is verified by the closing quote at that length
/// and by a 128-bit hash of the whole string; the string's end need not be searched for. An entry's bytes were
/// validated as a JSON string when it was first counted, so identical bytes need no validation. Strings that
/// share their first bytes with another cached one are found the slower way: their end is searched for and the
/// whole string hashed.
/// </para>
/// <para>
/// Hashes are XxHash64/XxHash128 with a random per-process seed: collisions cannot be steered by a client that
/// does not know the seed, so one request cannot make another's text count as its own. Thread-safe: a slot holds
/// an immutable entry and is replaced by a single reference write.
/// </para>
/// </remarks>
internal sealed class TextCountCache
{
    /// <summary>Strings shorter than this are cheaper to count than to hash.</summary>
    public const int MinBytes = 128;

    /// <summary>How many leading bytes of a string select its slots.</summary>
    public const int PrefixBytes = 64;

    private static readonly long s_seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));

    private readonly Entry?[] _slots;     // by the hash of the whole string
    private readonly Entry?[] _byPrefix;  // by the hash of its first PrefixBytes bytes
    private readonly int _mask;

    /// <summary>Creates a cache with <paramref name="slots"/> slots, rounded up to a power of two.</summary>
    public TextCountCache(int slots)
    {
        var size = (int)Math.Min(1 << 24, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, slots)));
        _slots = new Entry?[size];
        _byPrefix = new Entry?[size];
        _mask = size - 1;
    }

    /// <summary>Gets the number of slots.</summary>
    public int Capacity => _slots.Length;

    /// <summary>
    /// Looks up the string whose raw content starts at <paramref name="start"/> (after its opening quote) without
    /// knowing where it ends, by its first bytes; on a hit, <paramref name="length"/> is its raw length.
    /// </summary>
    public bool TryGetByStart(ReadOnlySpan<byte> body, int start, out int length, out int count, out bool escaped)
    {
        if (body.Length - start > MinBytes)
        {
            var prefix = Prefix(body.Slice(start, PrefixBytes));
            var entry = Volatile.Read(ref _byPrefix[(int)prefix & _mask]);
            if (entry is not null
                && entry.Prefix == prefix
                && start + entry.Length < body.Length
                && body[start + entry.Length] == '"'
                && XxHash128.HashToUInt128(body.Slice(start, entry.Length), s_seed) == entry.Full)
            {
                (length, count, escaped) = (entry.Length, entry.Count, entry.Escaped);
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
            var full = XxHash128.HashToUInt128(raw, s_seed);
            var entry = Volatile.Read(ref _slots[(int)(ulong)full & _mask]);
            if (entry is not null && entry.Full == full && entry.Length == raw.Length)
            {
                Volatile.Write(ref _byPrefix[(int)entry.Prefix & _mask], entry);
                count = entry.Count;
                return true;
            }
        }

        count = 0;
        return false;
    }

    /// <summary>Remembers the count of a validated string's raw content (strings shorter than <see cref="MinBytes"/> are not kept).</summary>
    public void Set(ReadOnlySpan<byte> raw, int count, bool escaped)
    {
        if (raw.Length < MinBytes)
        {
            return;
        }

        var entry = new Entry(Prefix(raw[..PrefixBytes]), raw.Length, XxHash128.HashToUInt128(raw, s_seed), count, escaped);
        Volatile.Write(ref _slots[(int)(ulong)entry.Full & _mask], entry);
        Volatile.Write(ref _byPrefix[(int)entry.Prefix & _mask], entry);
    }

    private static ulong Prefix(ReadOnlySpan<byte> prefix) => XxHash3.HashToUInt64(prefix, s_seed);

    private sealed record Entry(ulong Prefix, int Length, UInt128 Full, int Count, bool Escaped);
}
