namespace ModelRouting.Inspection;

/// <summary>What one forward pass over an OpenAI request body found (SPEC §5, §6).</summary>
internal struct ParsedRequest
{
    public BodyError Error;
    public string? ErrorDetail;

    /// <summary>Index of the top-level object's opening brace.</summary>
    public int ObjectStart;

    /// <summary>Whether the top-level object has no members.</summary>
    public bool IsEmptyObject;

    /// <summary>Raw token range of the top-level <c>model</c> value (quotes included), or -1 when absent.</summary>
    public int ModelTokenStart;
    public int ModelTokenEnd;

    /// <summary>Whether <c>model</c> is a string (absent and null both mean "not named").</summary>
    public bool ModelIsString;
    public bool ModelIsEscaped;

    /// <summary>The largest of max_tokens / max_completion_tokens / max_output_tokens, or 0.</summary>
    public long OutputTokens;

    /// <summary>Tokens of the prompt strings, as counted by the counter used for the pass.</summary>
    public long TextTokens;

    /// <summary>Tokens that do not depend on the counter: message overhead, media parts, token ids.</summary>
    public long FixedTokens;

    /// <summary>Whether the body has a top-level <c>merged_adapters</c> member.</summary>
    public bool HasMergedAdapters;

    /// <summary>Index of the top-level object's closing brace.</summary>
    public int ObjectEnd;

    /// <summary>Whether the top-level <c>stream</c> is <c>true</c>.</summary>
    public bool Stream;

    /// <summary>Raw range of the top-level <c>stream_options</c> value, or -1 when absent.</summary>
    public int StreamOptionsStart;
    public int StreamOptionsEnd;

    /// <summary>Raw range of <c>stream_options.include_usage</c>'s value, or -1 when absent.</summary>
    public int IncludeUsageStart;
    public int IncludeUsageEnd;

    /// <summary>Whether <c>stream_options.include_usage</c> is <c>true</c>: the client asked for the usage chunk.</summary>
    public bool IncludeUsage;

    /// <summary>Whether <c>stream_options</c> appears more than once, or its value is not an object or null.</summary>
    public bool StreamOptionsUnusual;

    public readonly long PromptTokens => TextTokens + FixedTokens;

    public readonly bool HasModelToken => ModelTokenStart >= 0;
}
