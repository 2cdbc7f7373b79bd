using System.Buffers.Text;
using System.Text.Json;

namespace ModelRouting.Inspection;

/// <summary>
/// Parses an OpenAI request body in one forward pass: validates it as JSON and finds the top-level
/// <c>model</c> (its exact byte range, for splicing), the output-token fields and an estimate of the prompt's
/// tokens from every prompt-carrying field. No DOM, no re-serialization, no allocation; strings that carry no
/// prompt are skipped with a vectorized search, and prompt strings are recorded as ranges so an exact recount
/// does not parse again.
/// </summary>
/// <remarks>
/// Three parts, each readable and tested alone: <see cref="JsonScanner"/> (the lexer; why not Utf8JsonReader is
/// said there), <see cref="OpenAIFieldRules"/> (what each field's value costs) and <see cref="PromptCountState"/>
/// (the counts, the ranges and the cache). This class walks the top-level object: <c>model</c> (once),
/// the output-token fields, and which rules apply to which member.
/// </remarks>
internal static class OpenAIRequestParser
{
    /// <summary>Per-message overhead of OpenAI's chat format (role and separators), as in OpenAI's cookbook.</summary>
    public const int TokensPerMessage = OpenAIFieldRules.TokensPerMessage;

    /// <summary>A message's <c>name</c> costs one token beyond its text.</summary>
    public const int TokensPerName = OpenAIFieldRules.TokensPerName;

    /// <summary>Every reply is primed with <c>&lt;|start|&gt;assistant&lt;|message|&gt;</c>.</summary>
    public const int ReplyPrimingTokens = OpenAIFieldRules.ReplyPrimingTokens;

    public static ParsedRequest Parse(ReadOnlySpan<byte> body, ITokenCounter counter, int mediaTokens, PromptText text, TextCountCache? cache = null)
    {
        var result = new ParsedRequest { ModelTokenStart = -1, StreamOptionsStart = -1, IncludeUsageStart = -1 };

        // JSON text is UTF-8 (RFC 8259); checked once for the whole body, vectorized.
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            return Invalid(ref result, "the body is not valid UTF-8.");
        }

        var state = new PromptCountState(counter, mediaTokens, text, cache);
        try
        {
            var i = JsonScanner.SkipWhitespace(body, 0);
            if (i >= body.Length)
            {
                return Invalid(ref result, "the body is empty.");
            }

            if (body[i] != '{')
            {
                if (body[i] is (byte)'[' or (byte)'"' or (byte)'-' or (>= (byte)'0' and <= (byte)'9') or (byte)'t' or (byte)'f' or (byte)'n')
                {
                    result.Error = BodyError.NotAnObject;
                    return result;
                }

                return Invalid(ref result, $"unexpected character at byte {i}.");
            }

            result.ObjectStart = i;
            result.IsEmptyObject = true;
            Span<byte> keyBuffer = stackalloc byte[32];
            i = JsonScanner.SkipWhitespace(body, i + 1);
            if (i < body.Length && body[i] == '}')
            {
                result.ObjectEnd = i;
                i++;
            }
            else
            {
                while (true)
                {
                    if (i >= body.Length || body[i] != '"')
                    {
                        return Invalid(ref result, $"expected a property name at byte {i}.");
                    }

                    result.IsEmptyObject = false;
                    var keyStart = i + 1;
                    var keyEnd = JsonScanner.ScanString(body, keyStart, out var keyEscaped);
                    if (keyEnd == JsonScanner.Fail)
                    {
                        return Invalid(ref result, $"invalid string at byte {i}.");
                    }

                    i = JsonScanner.ExpectColon(body, keyEnd + 1);
                    if (i == JsonScanner.Fail)
                    {
                        return Invalid(ref result, $"expected ':' after the property name at byte {keyStart - 1}.");
                    }

                    var key = JsonScanner.KeyText(body, keyStart, keyEnd, keyEscaped, keyBuffer);
                    if (key.SequenceEqual("model"u8))
                    {
                        if (result.HasModelToken)
                        {
                            result.Error = BodyError.DuplicateModel;
                            return result;
                        }

                        i = ReadModel(body, i, ref result);
                        if (result.Error != BodyError.None)
                        {
                            return result;
                        }
                    }
                    else if (key.SequenceEqual("messages"u8))
                    {
                        i = OpenAIFieldRules.Value(body, i, 1, OpenAIFieldRules.Mode.Content, rootArray: true, ref state);
                        state.Fixed += OpenAIFieldRules.ReplyPrimingTokens;
                    }
                    else if (key.SequenceEqual("prompt"u8) || key.SequenceEqual("input"u8) || key.SequenceEqual("instructions"u8))
                    {
                        i = OpenAIFieldRules.Value(body, i, 1, OpenAIFieldRules.Mode.Content, rootArray: true, ref state);
                    }
                    else if (key.SequenceEqual("tools"u8) || key.SequenceEqual("functions"u8) || key.SequenceEqual("response_format"u8))
                    {
                        i = OpenAIFieldRules.Value(body, i, 1, OpenAIFieldRules.Mode.Schema, rootArray: false, ref state);
                    }
                    else if (key.SequenceEqual("max_tokens"u8) || key.SequenceEqual("max_completion_tokens"u8) || key.SequenceEqual("max_output_tokens"u8))
                    {
                        var start = i;
                        i = OpenAIFieldRules.Value(body, i, 1, OpenAIFieldRules.Mode.Skip, rootArray: false, ref state);
                        if (i != JsonScanner.Fail && OutputTokenValue(body[start..i]) is var n && n > result.OutputTokens)
                        {
                            result.OutputTokens = n;
                        }
                    }
                    else if (key.SequenceEqual("stream"u8))
                    {
                        result.Stream = body[i..].StartsWith("true"u8);
                        i = OpenAIFieldRules.Value(body, i, 1, OpenAIFieldRules.Mode.Skip, rootArray: false, ref state);
                    }
                    else if (key.SequenceEqual("stream_options"u8))
                    {
                        i = ReadStreamOptions(body, i, ref result);
                    }
                    else
                    {
                        result.HasMergedAdapters |= key.SequenceEqual("merged_adapters"u8);
                        i = OpenAIFieldRules.Value(body, i, 1, OpenAIFieldRules.Mode.Skip, rootArray: false, ref state);
                    }

                    if (i == JsonScanner.Fail)
                    {
                        return Invalid(ref result, $"invalid JSON in the value of the property at byte {keyStart - 1}.");
                    }

                    i = JsonScanner.SkipWhitespace(body, i);
                    if (i < body.Length && body[i] == ',')
                    {
                        i = JsonScanner.SkipWhitespace(body, i + 1);
                        continue;
                    }

                    if (i < body.Length && body[i] == '}')
                    {
                        result.ObjectEnd = i;
                        i++;
                        break;
                    }

                    return Invalid(ref result, $"expected ',' or '}}' at byte {i}.");
                }
            }

            if (JsonScanner.SkipWhitespace(body, i) != body.Length)
            {
                return Invalid(ref result, $"unexpected content after the JSON object at byte {JsonScanner.SkipWhitespace(body, i)}.");
            }

            state.CountDeferred(body);
        }
        finally
        {
            state.ReturnScratch();
        }

        result.TextTokens = state.Text;
        result.FixedTokens = state.Fixed;
        return result;
    }

    /// <summary>Copies the (unescaped) model name into <paramref name="destination"/>; returns the chars written, or -1 if it does not fit.</summary>
    public static int GetModelName(ReadOnlySpan<byte> body, in ParsedRequest parsed, Span<char> destination)
    {
        var reader = new Utf8JsonReader(body[parsed.ModelTokenStart..parsed.ModelTokenEnd]);
        reader.Read();
        var valueLength = reader.ValueSpan.Length;
        if (valueLength > destination.Length)
        {
            return -1;
        }

        return reader.CopyString(destination);
    }

    /// <summary>
    /// The output-token limit a value asks for: an integer, or a number such as <c>1e9</c>, capped at
    /// <see cref="int.MaxValue"/> so that adding the prompt cannot overflow; anything else (null, a string, a
    /// negative number) asks for nothing, and the backend judges it.
    /// </summary>
    private static long OutputTokenValue(ReadOnlySpan<byte> value)
    {
        if (Utf8Parser.TryParse(value, out long integer, out var consumed) && consumed == value.Length)
        {
            return Math.Clamp(integer, 0, int.MaxValue);
        }

        if (value.Length > 0 && value[0] is >= (byte)'0' and <= (byte)'9'
            && double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var number))
        {
            return number >= int.MaxValue ? int.MaxValue : (long)Math.Ceiling(number);
        }

        return 0;
    }

    // stream_options: where it is and what include_usage says, so the gateway can ask for the usage chunk (SPEC §14).
    private static int ReadStreamOptions(ReadOnlySpan<byte> body, int i, ref ParsedRequest result)
    {
        var state = default(PromptCountState);
        var end = OpenAIFieldRules.Value(body, i, 1, OpenAIFieldRules.Mode.Skip, rootArray: false, ref state);
        if (end == JsonScanner.Fail)
        {
            return end;
        }

        result.StreamOptionsUnusual |= result.StreamOptionsStart >= 0 || (body[i] != '{' && !body[i..].StartsWith("null"u8));
        result.StreamOptionsStart = i;
        result.StreamOptionsEnd = end;
        result.IncludeUsageStart = -1;
        result.IncludeUsage = false;
        if (body[i] != '{')
        {
            return end;
        }

        // A valid object (checked above): walk its members for include_usage.
        Span<byte> keyBuffer = stackalloc byte[32];
        var j = JsonScanner.SkipWhitespace(body, i + 1);
        while (j < end && body[j] == '"')
        {
            var keyEnd = JsonScanner.ScanString(body, j + 1, out var escaped);
            var key = JsonScanner.KeyText(body, j + 1, keyEnd, escaped, keyBuffer);
            var valueStart = JsonScanner.ExpectColon(body, keyEnd + 1);
            var valueEnd = OpenAIFieldRules.Value(body, valueStart, 2, OpenAIFieldRules.Mode.Skip, rootArray: false, ref state);
            if (key.SequenceEqual("include_usage"u8))
            {
                result.StreamOptionsUnusual |= result.IncludeUsageStart >= 0;
                result.IncludeUsageStart = valueStart;
                result.IncludeUsageEnd = valueEnd;
                result.IncludeUsage = body[valueStart..valueEnd].SequenceEqual("true"u8);
            }

            j = JsonScanner.SkipWhitespace(body, valueEnd);
            j = j < end && body[j] == ',' ? JsonScanner.SkipWhitespace(body, j + 1) : j;
        }

        return end;
    }

    private static ParsedRequest Invalid(ref ParsedRequest result, string detail)
    {
        result.Error = BodyError.InvalidJson;
        result.ErrorDetail = detail;
        return result;
    }

    private static int ReadModel(ReadOnlySpan<byte> body, int i, ref ParsedRequest result)
    {
        result.ModelTokenStart = i;
        if (body[i] == '"')
        {
            var end = JsonScanner.ScanString(body, i + 1, out var escaped);
            if (end == JsonScanner.Fail)
            {
                Invalid(ref result, "the model value is not a valid string.");
                return JsonScanner.Fail;
            }

            result.ModelIsString = true;
            result.ModelIsEscaped = escaped;
            result.ModelTokenEnd = end + 1;
            return end + 1;
        }

        if (body[i..].StartsWith("null"u8))
        {
            result.ModelTokenEnd = i + 4;
            return i + 4;
        }

        // Anything else is not a string: report that, unless it is not even JSON.
        var state = default(PromptCountState);
        var next = OpenAIFieldRules.Value(body, i, 1, OpenAIFieldRules.Mode.Skip, rootArray: false, ref state);
        if (next == JsonScanner.Fail)
        {
            Invalid(ref result, "invalid JSON value for model.");
        }
        else
        {
            result.Error = BodyError.ModelNotString;
        }

        return JsonScanner.Fail;
    }
}
