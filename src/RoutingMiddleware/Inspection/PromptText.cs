using System.Buffers;

namespace ModelRouting.Inspection;

/// <summary>Where a prompt-carrying JSON string sits in the body (its raw bytes, between the quotes); <c>Counted</c>: already in the pass's total.</summary>
internal readonly record struct TextRange(int Start, int Length, bool IsEscaped, bool Counted = false);

/// <summary>
/// The prompt strings one forward pass found, recorded as ranges of the body so an exact recount reads
/// them again without parsing again. Pooled: call <see cref="Dispose"/>.
/// </summary>
internal sealed class PromptText : IDisposable
{
    private TextRange[] _ranges = ArrayPool<TextRange>.Shared.Rent(16);

    public int Count { get; private set; }

    public ReadOnlySpan<TextRange> Ranges => _ranges.AsSpan(0, Count);

    public void Add(TextRange range)
    {
        if (Count == _ranges.Length)
        {
            var bigger = ArrayPool<TextRange>.Shared.Rent(_ranges.Length * 2);
            _ranges.AsSpan(0, Count).CopyTo(bigger);
            ArrayPool<TextRange>.Shared.Return(_ranges);
            _ranges = bigger;
        }

        _ranges[Count++] = range;
    }

    public void Clear() => Count = 0;

    public void Dispose()
    {
        var ranges = _ranges;
        _ranges = [];
        Count = 0;
        if (ranges.Length > 0)
        {
            ArrayPool<TextRange>.Shared.Return(ranges);
        }
    }
}
