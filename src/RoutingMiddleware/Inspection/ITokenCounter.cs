namespace ModelRouting.Inspection;

/// <summary>Counts (or estimates) the tokens of one piece of prompt text.</summary>
/// <remarks>Implementations must be thread-safe: one instance serves every request.</remarks>
public interface ITokenCounter
{
    /// <summary>Gets whether the counts are exact for the counter's encoding.</summary>
    bool IsExact { get; }

    /// <summary>Counts the tokens of <paramref name="utf8Text"/>, unescaped UTF-8 text.</summary>
    int CountTokens(ReadOnlySpan<byte> utf8Text);
}
