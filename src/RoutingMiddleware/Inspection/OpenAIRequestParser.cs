using System.Buffers;
using System.Text.Json;

namespace ModelRouting.Inspection;

/// <summary>What is wrong with a request body the gateway cannot route on.</summary>
internal enum BodyError
{
    None,
    InvalidJson,
    NotAnObject,
    ModelNotString,
    DuplicateModel,
}

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

    public readonly long PromptTokens => TextTokens + FixedTokens;

    public readonly bool HasModelToken => ModelTokenStart >= 0;
}

/// <summary>
/// Parses an OpenAI request body in one forward pass with <see cref="Utf8JsonReader"/>: the top-level
/// <c>model</c> (its exact byte range, for splicing), the output-token fields and an estimate of the
/// prompt's tokens from every prompt-carrying field. No DOM, no re-serialization; prompt strings are
/// recorded as ranges so an exact recount does not parse again.
/// </summary>
internal static class OpenAIRequestParser
{
    /// <summary>Per-message overhead of OpenAI's chat format (role and separators), as in OpenAI's cookbook.</summary>
    public const int TokensPerMessage = 3;

    /// <summary>A message's <c>name</c> costs one token beyond its text.</summary>
    public const int TokensPerName = 1;

    /// <summary>Every reply is primed with <c>&lt;|start|&gt;assistant&lt;|message|&gt;</c>.</summary>
    public const int ReplyPrimingTokens = 3;

    private static readonly JsonReaderOptions s_options = new() { MaxDepth = 256 };

    public static ParsedRequest Parse(ReadOnlySpan<byte> body, ITokenCounter counter, int mediaTokens, PromptText text)
    {
        var result = new ParsedRequest { ModelTokenStart = -1 };
        var state = new ScanState(counter, mediaTokens, text);
        // JSON text is UTF-8 (RFC 8259); the reader does not check the bytes inside strings, so check them
        // all at once (vectorized) rather than forward text the backend may read differently.
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            result.Error = BodyError.InvalidJson;
            result.ErrorDetail = "the body is not valid UTF-8.";
            return result;
        }

        var reader = new Utf8JsonReader(body, s_options);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                result.Error = BodyError.NotAnObject;
                return result;
            }

            result.ObjectStart = (int)reader.TokenStartIndex;
            result.IsEmptyObject = true;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                result.IsEmptyObject = false;
                if (reader.ValueTextEquals("model"u8))
                {
                    if (!ReadModel(ref reader, ref result))
                    {
                        return result;
                    }
                }
                else if (reader.ValueTextEquals("messages"u8))
                {
                    reader.Read();
                    Walk(ref reader, ref state, schema: false);
                    state.Fixed += ReplyPrimingTokens;
                }
                else if (reader.ValueTextEquals("prompt"u8) || reader.ValueTextEquals("input"u8) || reader.ValueTextEquals("instructions"u8))
                {
                    reader.Read();
                    Walk(ref reader, ref state, schema: false);
                }
                else if (reader.ValueTextEquals("tools"u8) || reader.ValueTextEquals("functions"u8) || reader.ValueTextEquals("response_format"u8))
                {
                    reader.Read();
                    Walk(ref reader, ref state, schema: true);
                }
                else if (reader.ValueTextEquals("max_tokens"u8) || reader.ValueTextEquals("max_completion_tokens"u8) || reader.ValueTextEquals("max_output_tokens"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var n) && n > result.OutputTokens)
                    {
                        result.OutputTokens = n;
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else
                {
                    result.HasMergedAdapters |= reader.ValueTextEquals("merged_adapters"u8);
                    reader.Read();
                    reader.Skip();
                }
            }

            // Reading past the root object validates that only whitespace follows it.
            while (reader.Read())
            {
            }
        }
        catch (JsonException e)
        {
            result.Error = BodyError.InvalidJson;
            result.ErrorDetail = e.Message;
            return result;
        }
        catch (InvalidOperationException e)
        {
            // An escape that does not stand for valid text, e.g. a lone surrogate "\ud800".
            result.Error = BodyError.InvalidJson;
            result.ErrorDetail = e.Message;
            return result;
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

    private static bool ReadModel(ref Utf8JsonReader reader, ref ParsedRequest result)
    {
        if (result.HasModelToken)
        {
            result.Error = BodyError.DuplicateModel;
            return false;
        }

        reader.Read();
        result.ModelTokenStart = (int)reader.TokenStartIndex;
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                result.ModelIsString = true;
                result.ModelIsEscaped = reader.ValueIsEscaped;
                if (result.ModelIsEscaped)
                {
                    // Unescaping throws InvalidOperationException for escapes that are not valid text.
                    Span<char> scratch = stackalloc char[256];
                    _ = reader.ValueSpan.Length <= scratch.Length ? reader.CopyString(scratch) : reader.GetString()!.Length;
                }

                break;
            case JsonTokenType.Null:
                break;
            default:
                result.Error = BodyError.ModelNotString;
                return false;
        }

        result.ModelTokenEnd = (int)reader.BytesConsumed;
        return true;
    }

    /// <summary>
    /// Walks one value. Strings count as text; numbers count one token each (token-id arrays); an object
    /// directly inside an array is a message or item and costs the per-message overhead; media keys cost
    /// the fixed media price and their payload (often base64) is skipped; <c>type</c> tags are not text.
    /// In schema mode (tools, response formats) property names count as text too.
    /// </summary>
    private static void Walk(ref Utf8JsonReader reader, ref ScanState state, bool schema)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                state.CountString(ref reader);
                return;
            case JsonTokenType.Number:
                state.Fixed++;
                return;
            case JsonTokenType.StartObject:
            case JsonTokenType.StartArray:
                break;
            default:
                return;
        }

        var depth = reader.CurrentDepth;
        var arrayRoot = reader.TokenType == JsonTokenType.StartArray;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    if (schema)
                    {
                        state.CountString(ref reader);
                    }
                    else if (IsMediaKey(ref reader))
                    {
                        state.Fixed += state.MediaTokens;
                        reader.Read();
                        reader.Skip();
                    }
                    else if (reader.ValueTextEquals("type"u8))
                    {
                        reader.Read();
                        reader.Skip();
                    }
                    else if (reader.ValueTextEquals("name"u8))
                    {
                        state.Fixed += TokensPerName;
                    }

                    break;
                case JsonTokenType.String:
                    state.CountString(ref reader);
                    break;
                case JsonTokenType.Number:
                    state.Fixed++;
                    break;
                case JsonTokenType.StartObject when !schema && arrayRoot && reader.CurrentDepth == depth + 1:
                    state.Fixed += TokensPerMessage;
                    break;
            }
        }
    }

    private static bool IsMediaKey(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("image_url"u8) || reader.ValueTextEquals("input_audio"u8) || reader.ValueTextEquals("audio"u8)
        || reader.ValueTextEquals("file"u8) || reader.ValueTextEquals("file_data"u8) || reader.ValueTextEquals("file_id"u8)
        || reader.ValueTextEquals("image"u8) || reader.ValueTextEquals("video_url"u8);

    private ref struct ScanState(ITokenCounter counter, int mediaTokens, PromptText ranges)
    {
        private byte[]? _scratch;

        public readonly int MediaTokens = mediaTokens;
        public long Text;
        public long Fixed;

        public void CountString(ref Utf8JsonReader reader)
        {
            var raw = reader.ValueSpan;
            if (raw.IsEmpty)
            {
                return;
            }

            var start = (int)reader.TokenStartIndex + 1;
            if (!reader.ValueIsEscaped)
            {
                ranges.Add(new TextRange(start, raw.Length, false));
                Text += counter.CountTokens(raw);
                return;
            }

            if (_scratch is null || _scratch.Length < raw.Length)
            {
                ReturnScratch();
                _scratch = ArrayPool<byte>.Shared.Rent(Math.Max(raw.Length, 256));
            }

            var written = reader.CopyString(_scratch);
            ranges.Add(new TextRange(start, raw.Length, true));
            Text += counter.CountTokens(_scratch.AsSpan(0, written));
        }

        public void ReturnScratch()
        {
            if (_scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(_scratch);
                _scratch = null;
            }
        }
    }
}
