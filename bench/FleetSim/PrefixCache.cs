namespace FleetSim;

/// <summary>A replica's prefix cache: the chained hashes of prompt blocks, least recently used evicted first. Not thread-safe (the replica locks).</summary>
internal sealed class PrefixCache(int capacityBlocks)
{
    private readonly Dictionary<ulong, LinkedListNode<ulong>> _blocks = [];
    private readonly LinkedList<ulong> _lru = new();

    /// <summary>Gets how many leading blocks of <paramref name="blocks"/> are cached.</summary>
    public int Match(IReadOnlyList<ulong> blocks)
    {
        var n = 0;
        while (n < blocks.Count && _blocks.ContainsKey(blocks[n]))
        {
            n++;
        }

        return n;
    }

    /// <summary>Caches <paramref name="blocks"/> (all of a prefilled prompt), most recent last.</summary>
    public void Insert(IReadOnlyList<ulong> blocks)
    {
        foreach (var block in blocks)
        {
            if (_blocks.TryGetValue(block, out var node))
            {
                _lru.Remove(node);
                _lru.AddLast(node);
                continue;
            }

            _blocks[block] = _lru.AddLast(block);
            while (_blocks.Count > capacityBlocks)
            {
                _blocks.Remove(_lru.First!.Value);
                _lru.RemoveFirst();
            }
        }
    }
}
