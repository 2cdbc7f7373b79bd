namespace ModelRouting.Balancing;

/// <summary>
/// Where prompt prefixes (and adapters) were sent: a fixed-size, direct-mapped table from a 64-bit hash to a
/// mask of destination bits. Memory is bounded by the table size; a colliding hash replaces the entry, so the
/// index forgets the least recently written prefixes first only approximately, which is enough for a hint.
/// </summary>
/// <remarks>
/// Thread-safe in the sense a hint needs: writes race without locks; a torn read can pair one prefix's tag
/// with another's mask for one pick, which costs that pick its affinity and nothing else.
/// </remarks>
internal sealed class PrefixIndex
{
    private readonly Entry[] _entries;
    private readonly int _mask;

    /// <summary>Creates an index of <paramref name="size"/> entries, rounded up to a power of two.</summary>
    public PrefixIndex(int size = 1 << 16)
    {
        var capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, size));
        _entries = new Entry[capacity];
        _mask = capacity - 1;
    }

    /// <summary>Gets the entries' count (the memory bound: 16 bytes each).</summary>
    public int Capacity => _entries.Length;

    /// <summary>Gets the destination bits recorded for <paramref name="hash"/>, or 0.</summary>
    public ulong Get(ulong hash)
    {
        ref readonly var entry = ref _entries[(int)(hash & (ulong)_mask)];
        return entry.Tag == (hash | 1) ? entry.Destinations : 0;
    }

    /// <summary>Records that <paramref name="hash"/> was sent to the destination with <paramref name="bit"/>.</summary>
    public void Add(ulong hash, int bit)
    {
        ref var entry = ref _entries[(int)(hash & (ulong)_mask)];
        var tag = hash | 1;
        var destinations = 1UL << (bit & 63);
        if (entry.Tag == tag)
        {
            if ((entry.Destinations & destinations) == 0)
            {
                entry.Destinations |= destinations;
            }
        }
        else
        {
            entry.Destinations = destinations;
            entry.Tag = tag;
        }
    }

    private struct Entry
    {
        public ulong Tag;
        public ulong Destinations;
    }
}
