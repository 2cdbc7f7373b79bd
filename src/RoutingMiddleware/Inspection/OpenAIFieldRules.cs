namespace ModelRouting.Inspection;

/// <summary>
/// The OpenAI field rules of the single pass (SPEC §6): how a value under a prompt-carrying field is walked and
/// what it costs. Chat <c>messages</c>, completions <c>prompt</c>, embeddings and responses <c>input</c>,
/// <c>instructions</c>: strings are prompt text, numbers token ids, objects in the root array messages or items;
/// <c>tools</c>, <c>functions</c>, <c>response_format</c> count their property names too. Lexing is
/// <see cref="JsonScanner"/>'s, counting <see cref="PromptCountState"/>'s.
/// </summary>
internal static class OpenAIFieldRules
{
    /// <summary>Per-message overhead of OpenAI's chat format (role and separators), as in OpenAI's cookbook.</summary>
    public const int TokensPerMessage = 3;

    /// <summary>A message's <c>name</c> costs one token beyond its text.</summary>
    public const int TokensPerName = 1;

    /// <summary>Every reply is primed with <c>&lt;|start|&gt;assistant&lt;|message|&gt;</c>.</summary>
    public const int ReplyPrimingTokens = 3;

    /// <summary>How a value is walked.</summary>
    internal enum Mode
    {
        /// <summary>Validated only: no prompt text.</summary>
        Skip,

        /// <summary>Prompt content: strings are text, numbers token ids, media parts a fixed price.</summary>
        Content,

        /// <summary>A schema (tools, response formats): property names count as text too.</summary>
        Schema,
    }

    /// <summary>
    /// Parses one value starting at <paramref name="i"/> (not whitespace) and returns the index after it, or
    /// <see cref="JsonScanner.Fail"/>. Content mode counts strings as text and numbers as one token each (token-id arrays);
    /// an object directly inside the field's root array is a message or item and costs the per-message
    /// overhead; media keys cost the fixed media price and their payload (often base64) is skipped;
    /// <c>type</c> tags are not text. Schema mode (tools, response formats) counts property names too.
    /// </summary>
    internal static int Value(ReadOnlySpan<byte> body, int i, int depth, Mode mode, bool rootArray, ref PromptCountState state)
    {
        switch (body[i])
        {
            case (byte)'"':
                {
                    if (mode != Mode.Skip && state.TryCountCached(body, i + 1))
                    {
                        return state.CachedEnd + 1;
                    }

                    var end = JsonScanner.ScanString(body, i + 1, out var escaped);
                    if (end != JsonScanner.Fail && mode != Mode.Skip)
                    {
                        state.CountString(body, i + 1, end, escaped);
                    }

                    return end == JsonScanner.Fail ? JsonScanner.Fail : end + 1;
                }

            case (byte)'{':
                return depth >= JsonScanner.MaxDepth ? JsonScanner.Fail : Object(body, i, depth + 1, mode, ref state);

            case (byte)'[':
                return depth >= JsonScanner.MaxDepth ? JsonScanner.Fail : Array(body, i, depth + 1, mode, rootArray, ref state);

            case (byte)'t':
                return body[i..].StartsWith("true"u8) ? i + 4 : JsonScanner.Fail;

            case (byte)'f':
                return body[i..].StartsWith("false"u8) ? i + 5 : JsonScanner.Fail;

            case (byte)'n':
                return body[i..].StartsWith("null"u8) ? i + 4 : JsonScanner.Fail;

            default:
                var next = JsonScanner.ScanNumber(body, i);
                if (next != JsonScanner.Fail && mode != Mode.Skip)
                {
                    state.Fixed++;
                }

                return next;
        }
    }

    private static int Object(ReadOnlySpan<byte> body, int i, int depth, Mode mode, ref PromptCountState state)
    {
        Span<byte> keyBuffer = stackalloc byte[32];
        i = JsonScanner.SkipWhitespace(body, i + 1);
        if (i < body.Length && body[i] == '}')
        {
            return i + 1;
        }

        while (true)
        {
            if (i >= body.Length || body[i] != '"')
            {
                return JsonScanner.Fail;
            }

            var keyStart = i + 1;
            var keyEnd = JsonScanner.ScanString(body, keyStart, out var keyEscaped);
            if (keyEnd == JsonScanner.Fail)
            {
                return JsonScanner.Fail;
            }

            i = JsonScanner.ExpectColon(body, keyEnd + 1);
            if (i == JsonScanner.Fail)
            {
                return JsonScanner.Fail;
            }

            var valueMode = mode;
            if (mode == Mode.Schema)
            {
                state.CountString(body, keyStart, keyEnd, keyEscaped);
            }
            else if (mode == Mode.Content)
            {
                var key = JsonScanner.KeyText(body, keyStart, keyEnd, keyEscaped, keyBuffer);
                if (IsMediaKey(key))
                {
                    state.Fixed += state.MediaTokens;
                    valueMode = Mode.Skip;
                }
                else if (key.SequenceEqual("type"u8))
                {
                    valueMode = Mode.Skip;
                }
                else if (key.SequenceEqual("name"u8))
                {
                    state.Fixed += TokensPerName;
                }
            }

            i = Value(body, i, depth, valueMode, rootArray: false, ref state);
            if (i == JsonScanner.Fail)
            {
                return JsonScanner.Fail;
            }

            i = JsonScanner.SkipWhitespace(body, i);
            if (i >= body.Length)
            {
                return JsonScanner.Fail;
            }

            if (body[i] == '}')
            {
                return i + 1;
            }

            if (body[i] != ',')
            {
                return JsonScanner.Fail;
            }

            i = JsonScanner.SkipWhitespace(body, i + 1);
        }
    }

    private static int Array(ReadOnlySpan<byte> body, int i, int depth, Mode mode, bool rootArray, ref PromptCountState state)
    {
        i = JsonScanner.SkipWhitespace(body, i + 1);
        if (i < body.Length && body[i] == ']')
        {
            return i + 1;
        }

        while (true)
        {
            if (i >= body.Length)
            {
                return JsonScanner.Fail;
            }

            if (rootArray && mode == Mode.Content && body[i] == '{')
            {
                state.Fixed += TokensPerMessage;
            }

            i = Value(body, i, depth, mode, rootArray: false, ref state);
            if (i == JsonScanner.Fail)
            {
                return JsonScanner.Fail;
            }

            i = JsonScanner.SkipWhitespace(body, i);
            if (i >= body.Length)
            {
                return JsonScanner.Fail;
            }

            if (body[i] == ']')
            {
                return i + 1;
            }

            if (body[i] != ',')
            {
                return JsonScanner.Fail;
            }

            i = JsonScanner.SkipWhitespace(body, i + 1);
        }
    }

    private static bool IsMediaKey(ReadOnlySpan<byte> key) =>
        key.SequenceEqual("image_url"u8) || key.SequenceEqual("input_audio"u8) || key.SequenceEqual("audio"u8)
        || key.SequenceEqual("file"u8) || key.SequenceEqual("file_data"u8) || key.SequenceEqual("file_id"u8)
        || key.SequenceEqual("image"u8) || key.SequenceEqual("video_url"u8);
}
