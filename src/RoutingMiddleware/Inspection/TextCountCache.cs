using System.IO.Hashing;
using System.Security.Cryptography;

namespace ModelRouting.Inspection;

/// <summary>
/// Remembers the token counts of prompt strings by a hash of their raw (still JSON-escaped) bytes, so the
/// texts every request repeats (system prompts, tool definitions, the earlier turns of a conversation) are
/// hashed, not counted again. Direct-mapped and lock-free: a fixed number of slots, each holding the last
/// text that hashed to it, so memory is bounded and a flood of distinct prompts only evicts.
/// </summary>
/// <remarks>
/// Keys are XxHash128 with a random per-process seed: collisions cannot be steered by a client that does not
/// know the seed, so one request cannot make another's text count as its own. Thread-safe: a slot holds an
/// immutable entry and is replaced by a single reference write.
/// </remarks>
internal sealed class TextCountCache
{
    /// <summary>Strings shorter than this are cheaper to count than to hash.</summary>
    public const int MinBytes = 128;

    private static readonly long s_seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));

    private readonly Entry?[] _slots;
    private readonly int _mask;

    /// <summary>Creates a cache with <paramref name="slots"/> slots, rounded up to a power of two.</summary>
    public TextCountCache(int slots)
    {
        var size = (int)Math.Min(1 << 24, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, slots)));
        _slots = new Entry?[size];
        _mask = size - 1;
    }

    /// <summary>Gets the number of slots.</summary>
    public int Capacity => _slots.Length;

    public static UInt128 Hash(ReadOnlySpan<byte> raw) => XxHash128.HashToUInt128(raw, s_seed);

    public bool TryGet(UInt128 key, out int count)
    {
        var entry = Volatile.Read(ref _slots[(int)(ulong)key & _mask]);
        if (entry is not null && entry.Key == key)
        {
            count = entry.Count;
            return true;
        }

        count = 0;
        return false;
    }

    public void Set(UInt128 key, int count) => Volatile.Write(ref _slots[(int)(ulong)key & _mask], new Entry(key, count));

    private sealed record Entry(UInt128 Key, int Count);
}
