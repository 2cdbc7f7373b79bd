using System.Buffers;

namespace ModelRouting.Inspection;

/// <summary>
/// The counting state of one single pass: the prompt's text and fixed tokens so far, the prompt strings recorded
/// as ranges (for an exact recount without a second parse), and the cache of counts by raw string bytes. A heuristic
/// counts each string as it is scanned; an exact counter waits for the end of a valid body
/// (<see cref="CountDeferred"/>). Holds a pooled scratch buffer: call <see cref="ReturnScratch"/>.
/// </summary>
internal ref struct PromptCountState(ITokenCounter counter, int mediaTokens, PromptText ranges, TextCountCache? cache)
{
    private byte[]? _scratch;

    public readonly int MediaTokens = mediaTokens;
    public long Text;
    public long Fixed;

    /// <summary>Gets the index of the closing quote of the string <see cref="TryCountCached"/> took.</summary>
    public int CachedEnd { get; private set; }

    /// <summary>
    /// Counts a long prompt string from the cache when its raw bytes were seen before (the cache compares them): those bytes were
    /// validated then, and the cache knows their length, so the string is not even scanned.
    /// </summary>
    public bool TryCountCached(ReadOnlySpan<byte> body, int start)
    {
        if (cache is null || ranges is null)
        {
            return false;
        }

        if (!cache.TryGetByStart(body, start, out var length, out var count, out var escaped))
        {
            // Not found by its first bytes (or they are shared with another cached string): find the end
            // (a quote after an even run of backslashes) and look the whole string up.
            var end = start;
            while (true)
            {
                var k = body[end..].IndexOf((byte)'"');
                if (k < 0)
                {
                    return false;
                }

                end += k;
                var backslashes = 0;
                while (end - backslashes - 1 >= start && body[end - backslashes - 1] == '\\')
                {
                    backslashes++;
                }

                if (backslashes % 2 == 0)
                {
                    break;
                }

                end++;
            }

            var raw = body[start..end];
            if (!cache.TryGet(raw, out count))
            {
                return false;
            }

            length = raw.Length;
            escaped = raw.Contains((byte)'\\');
        }

        ranges.Add(new TextRange(start, length, escaped, Counted: true));
        Text += count;
        CachedEnd = start + length;
        return true;
    }

    /// <summary>Counts one prompt string, given by its validated raw (escaped) content [start, end).</summary>
    public void CountString(ReadOnlySpan<byte> body, int start, int end, bool escaped)
    {
        if (end == start || ranges is null)
        {
            return;
        }

        var counted = !counter.IsExact;
        ranges.Add(new TextRange(start, end - start, escaped, counted));
        if (counted)
        {
            Text += Count(body.Slice(start, end - start), escaped);
        }
    }

    /// <summary>An exact counter goes after the scan, over the ranges not counted yet (a failed parse costs no tokenizing).</summary>
    public void CountDeferred(ReadOnlySpan<byte> body)
    {
        if (ranges is null || !counter.IsExact)
        {
            return;
        }

        foreach (var range in ranges.Ranges)
        {
            if (!range.Counted)
            {
                Text += Count(body.Slice(range.Start, range.Length), range.IsEscaped);
            }
        }
    }

    private int Count(ReadOnlySpan<byte> raw, bool escaped)
    {
        var count = CountUncached(counter, raw, escaped, ref _scratch);
        cache?.Set(raw, count, escaped);
        return count;
    }

    public void ReturnScratch()
    {
        if (_scratch is not null)
        {
            ArrayPool<byte>.Shared.Return(_scratch);
            _scratch = null;
        }
    }

    /// <summary>Counts a raw (escaped) JSON string's text, unescaping into <paramref name="scratch"/> (pooled) when needed.</summary>
    internal static int CountUncached(ITokenCounter counter, ReadOnlySpan<byte> raw, bool escaped, ref byte[]? scratch)
    {
        if (!escaped)
        {
            return counter.CountTokens(raw);
        }

        if (scratch is null || scratch.Length < raw.Length)
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }

            scratch = ArrayPool<byte>.Shared.Rent(Math.Max(raw.Length, 256));
        }

        return counter.CountTokens(scratch.AsSpan(0, JsonScanner.Unescape(raw, scratch)));
    }
}
