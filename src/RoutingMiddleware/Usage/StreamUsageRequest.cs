using ModelRouting.Inspection;

namespace ModelRouting.Usage;

/// <summary>
/// The edit that makes a streaming request's backend send the final usage chunk (SPEC §14): sets
/// <c>stream_options.include_usage</c> to true, whatever shape <c>stream_options</c> had (absent, null, an
/// object without it, or <c>false</c>). The client's own choice is recorded, so the chunk is stripped from a
/// stream whose client did not ask for it.
/// </summary>
internal static class StreamUsageRequest
{
    private static readonly byte[] s_member = ",\"stream_options\":{\"include_usage\":true}"u8.ToArray();
    private static readonly byte[] s_object = "{\"include_usage\":true}"u8.ToArray();
    private static readonly byte[] s_first = "\"include_usage\":true,"u8.ToArray();
    private static readonly byte[] s_only = "\"include_usage\":true"u8.ToArray();
    private static readonly byte[] s_true = "true"u8.ToArray();

    /// <summary>Returns whether the gateway should ask for the usage chunk: a stream whose client did not.</summary>
    public static bool Applies(in ParsedRequest parsed) =>
        parsed.Stream && !parsed.IncludeUsage && !parsed.StreamOptionsUnusual && parsed.Error == BodyError.None;

    /// <summary>The edit for a request that <see cref="Applies"/>.</summary>
    public static BodyEdit Edit(ReadOnlySpan<byte> body, in ParsedRequest parsed)
    {
        if (parsed.StreamOptionsStart < 0)
        {
            // `stream` is a member, so the object is not empty: append the member before its closing brace.
            return new BodyEdit(parsed.ObjectEnd, parsed.ObjectEnd, s_member);
        }

        if (body[parsed.StreamOptionsStart] != '{')
        {
            return new BodyEdit(parsed.StreamOptionsStart, parsed.StreamOptionsEnd, s_object);
        }

        if (parsed.IncludeUsageStart >= 0)
        {
            return new BodyEdit(parsed.IncludeUsageStart, parsed.IncludeUsageEnd, s_true);
        }

        var inside = parsed.StreamOptionsStart + 1;
        var empty = JsonScanner.SkipWhitespace(body, inside) == parsed.StreamOptionsEnd - 1;
        return new BodyEdit(inside, inside, empty ? s_only : s_first);
    }
}
