using System.Text.Json;

namespace ModelRouting.Usage;

/// <summary>
/// Finds and reads an OpenAI <c>usage</c> object in response bytes without parsing the whole response. The
/// bytes <c>"usage"</c> followed by a colon can only be a property name: inside a JSON string a quote is
/// escaped. The object after it is read with <see cref="Utf8JsonReader"/>; its members <c>prompt_tokens</c> /
/// <c>input_tokens</c> and <c>completion_tokens</c> / <c>output_tokens</c> are taken.
/// </summary>
internal static class UsageReader
{
    public static ReadOnlySpan<byte> Name => "\"usage\""u8;

    public enum Result
    {
        /// <summary>Not a usage object (null, not an object, malformed).</summary>
        NotUsage,

        /// <summary>The object does not end within the bytes given.</summary>
        Incomplete,

        /// <summary>Read.</summary>
        Read,
    }

    /// <summary>Reads the usage object whose name starts <paramref name="text"/> (at <c>"usage"</c>).</summary>
    public static Result TryRead(ReadOnlySpan<byte> text, out long prompt, out long completion)
    {
        prompt = completion = 0;
        var i = Name.Length;
        i = SkipWhitespace(text, i);
        if (i >= text.Length)
        {
            return Result.Incomplete;
        }

        if (text[i] != ':')
        {
            return Result.NotUsage;
        }

        i = SkipWhitespace(text, i + 1);
        if (i >= text.Length)
        {
            return Result.Incomplete;
        }

        if (text[i] != '{')
        {
            return Result.NotUsage;
        }

        var reader = new Utf8JsonReader(text[i..], isFinalBlock: false, state: default);
        var found = false;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == 0)
                {
                    return found ? Result.Read : Result.NotUsage;
                }

                if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
                {
                    continue;
                }

                var isPrompt = reader.ValueTextEquals("prompt_tokens"u8) || reader.ValueTextEquals("input_tokens"u8);
                var isCompletion = reader.ValueTextEquals("completion_tokens"u8) || reader.ValueTextEquals("output_tokens"u8);
                if (!reader.Read())
                {
                    return Result.Incomplete;
                }

                if ((isPrompt || isCompletion) && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var value) && value >= 0)
                {
                    found = true;
                    if (isPrompt)
                    {
                        prompt = value;
                    }
                    else
                    {
                        completion = value;
                    }
                }
                else if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip())
                {
                    return Result.Incomplete;
                }
            }
        }
        catch (JsonException)
        {
            return Result.NotUsage;
        }

        return Result.Incomplete;
    }

    /// <summary>Whether an SSE payload's <c>choices</c> is an empty array (the final usage chunk's shape).</summary>
    public static bool HasEmptyChoices(ReadOnlySpan<byte> payload)
    {
        var at = payload.IndexOf("\"choices\""u8);
        if (at < 0)
        {
            return false;
        }

        var i = SkipWhitespace(payload, at + 9);
        if (i >= payload.Length || payload[i] != ':')
        {
            return false;
        }

        i = SkipWhitespace(payload, i + 1);
        if (i >= payload.Length || payload[i] != '[')
        {
            return false;
        }

        i = SkipWhitespace(payload, i + 1);
        return i < payload.Length && payload[i] == ']';
    }

    private static int SkipWhitespace(ReadOnlySpan<byte> text, int i)
    {
        while (i < text.Length && text[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            i++;
        }

        return i;
    }
}
