using System.Buffers;
using System.Buffers.Text;
using System.Text;
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
/// Parses an OpenAI request body in one forward pass: validates it as JSON and finds the top-level
/// <c>model</c> (its exact byte range, for splicing), the output-token fields and an estimate of the prompt's
/// tokens from every prompt-carrying field. No DOM, no re-serialization, no allocation; strings that carry no
/// prompt are skipped with a vectorized search, and prompt strings are recorded as ranges so an exact recount
/// does not parse again.
/// </summary>
/// <remarks>
/// A purpose-built scanner rather than <see cref="Utf8JsonReader"/>: the reader validates every byte of a
/// string that contains an escape one at a time, which made it cost as much as the whole estimate on chat
/// bodies (code and JSON in messages are full of <c>\n</c> and <c>\"</c>). Validation here is RFC 8259: UTF-8
/// (checked once, vectorized), structure, numbers, literals, escapes (with surrogate pairs), no control
/// characters in strings, at most 256 levels of nesting; the differential tests hold it to the reader's
/// verdicts.
/// </remarks>
internal static class OpenAIRequestParser
{
    /// <summary>Per-message overhead of OpenAI's chat format (role and separators), as in OpenAI's cookbook.</summary>
    public const int TokensPerMessage = 3;

    /// <summary>A message's <c>name</c> costs one token beyond its text.</summary>
    public const int TokensPerName = 1;

    /// <summary>Every reply is primed with <c>&lt;|start|&gt;assistant&lt;|message|&gt;</c>.</summary>
    public const int ReplyPrimingTokens = 3;

    private const int MaxDepth = 256;
    private const int Fail = -1;

    private static readonly SearchValues<byte> s_stringSpecials = SearchValues.Create(
        [(byte)'"', (byte)'\\', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]);

    private enum Mode
    {
        Skip,
        Content,
        Schema,
    }

    public static ParsedRequest Parse(ReadOnlySpan<byte> body, ITokenCounter counter, int mediaTokens, PromptText text, TextCountCache? cache = null)
    {
        var result = new ParsedRequest { ModelTokenStart = -1 };

        // JSON text is UTF-8 (RFC 8259); checked once for the whole body, vectorized.
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            return Invalid(ref result, "the body is not valid UTF-8.");
        }

        var state = new ScanState(counter, mediaTokens, text, cache);
        try
        {
            var i = SkipWhitespace(body, 0);
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
            i = SkipWhitespace(body, i + 1);
            if (i < body.Length && body[i] == '}')
            {
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
                    var keyEnd = ScanString(body, keyStart, out var keyEscaped);
                    if (keyEnd == Fail)
                    {
                        return Invalid(ref result, $"invalid string at byte {i}.");
                    }

                    i = ExpectColon(body, keyEnd + 1);
                    if (i == Fail)
                    {
                        return Invalid(ref result, $"expected ':' after the property name at byte {keyStart - 1}.");
                    }

                    var key = KeyText(body, keyStart, keyEnd, keyEscaped, keyBuffer);
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
                        i = Value(body, i, 1, Mode.Content, rootArray: true, ref state);
                        state.Fixed += ReplyPrimingTokens;
                    }
                    else if (key.SequenceEqual("prompt"u8) || key.SequenceEqual("input"u8) || key.SequenceEqual("instructions"u8))
                    {
                        i = Value(body, i, 1, Mode.Content, rootArray: true, ref state);
                    }
                    else if (key.SequenceEqual("tools"u8) || key.SequenceEqual("functions"u8) || key.SequenceEqual("response_format"u8))
                    {
                        i = Value(body, i, 1, Mode.Schema, rootArray: false, ref state);
                    }
                    else if (key.SequenceEqual("max_tokens"u8) || key.SequenceEqual("max_completion_tokens"u8) || key.SequenceEqual("max_output_tokens"u8))
                    {
                        var start = i;
                        i = Value(body, i, 1, Mode.Skip, rootArray: false, ref state);
                        if (i != Fail && OutputTokenValue(body[start..i]) is var n && n > result.OutputTokens)
                        {
                            result.OutputTokens = n;
                        }
                    }
                    else
                    {
                        result.HasMergedAdapters |= key.SequenceEqual("merged_adapters"u8);
                        i = Value(body, i, 1, Mode.Skip, rootArray: false, ref state);
                    }

                    if (i == Fail)
                    {
                        return Invalid(ref result, $"invalid JSON in the value of the property at byte {keyStart - 1}.");
                    }

                    i = SkipWhitespace(body, i);
                    if (i < body.Length && body[i] == ',')
                    {
                        i = SkipWhitespace(body, i + 1);
                        continue;
                    }

                    if (i < body.Length && body[i] == '}')
                    {
                        i++;
                        break;
                    }

                    return Invalid(ref result, $"expected ',' or '}}' at byte {i}.");
                }
            }

            if (SkipWhitespace(body, i) != body.Length)
            {
                return Invalid(ref result, $"unexpected content after the JSON object at byte {SkipWhitespace(body, i)}.");
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
            var end = ScanString(body, i + 1, out var escaped);
            if (end == Fail)
            {
                Invalid(ref result, "the model value is not a valid string.");
                return Fail;
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
        var state = default(ScanState);
        var next = Value(body, i, 1, Mode.Skip, rootArray: false, ref state);
        if (next == Fail)
        {
            Invalid(ref result, "invalid JSON value for model.");
        }
        else
        {
            result.Error = BodyError.ModelNotString;
        }

        return Fail;
    }

    // Returns the property name's unescaped bytes when short enough to be one of ours, else the raw bytes.
    private static ReadOnlySpan<byte> KeyText(ReadOnlySpan<byte> body, int start, int end, bool escaped, Span<byte> buffer)
    {
        var raw = body[start..end];
        if (!escaped)
        {
            return raw;
        }

        var written = Unescape(raw, buffer);
        return written < 0 ? raw : buffer[..written];
    }

    private static int SkipWhitespace(ReadOnlySpan<byte> body, int i)
    {
        while (i < body.Length && body[i] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
        {
            i++;
        }

        return i;
    }

    private static int ExpectColon(ReadOnlySpan<byte> body, int i)
    {
        i = SkipWhitespace(body, i);
        if (i >= body.Length || body[i] != ':')
        {
            return Fail;
        }

        i = SkipWhitespace(body, i + 1);
        return i < body.Length ? i : Fail;
    }

    /// <summary>
    /// Parses one value starting at <paramref name="i"/> (not whitespace) and returns the index after it, or
    /// <see cref="Fail"/>. Content mode counts strings as text and numbers as one token each (token-id arrays);
    /// an object directly inside the field's root array is a message or item and costs the per-message
    /// overhead; media keys cost the fixed media price and their payload (often base64) is skipped;
    /// <c>type</c> tags are not text. Schema mode (tools, response formats) counts property names too.
    /// </summary>
    private static int Value(ReadOnlySpan<byte> body, int i, int depth, Mode mode, bool rootArray, ref ScanState state)
    {
        switch (body[i])
        {
            case (byte)'"':
                {
                    if (mode != Mode.Skip && state.TryCountCached(body, i + 1))
                    {
                        return state.CachedEnd + 1;
                    }

                    var end = ScanString(body, i + 1, out var escaped);
                    if (end != Fail && mode != Mode.Skip)
                    {
                        state.CountString(body, i + 1, end, escaped);
                    }

                    return end == Fail ? Fail : end + 1;
                }

            case (byte)'{':
                return depth >= MaxDepth ? Fail : Object(body, i, depth + 1, mode, ref state);

            case (byte)'[':
                return depth >= MaxDepth ? Fail : Array(body, i, depth + 1, mode, rootArray, ref state);

            case (byte)'t':
                return body[i..].StartsWith("true"u8) ? i + 4 : Fail;

            case (byte)'f':
                return body[i..].StartsWith("false"u8) ? i + 5 : Fail;

            case (byte)'n':
                return body[i..].StartsWith("null"u8) ? i + 4 : Fail;

            default:
                var next = ScanNumber(body, i);
                if (next != Fail && mode != Mode.Skip)
                {
                    state.Fixed++;
                }

                return next;
        }
    }

    private static int Object(ReadOnlySpan<byte> body, int i, int depth, Mode mode, ref ScanState state)
    {
        Span<byte> keyBuffer = stackalloc byte[32];
        i = SkipWhitespace(body, i + 1);
        if (i < body.Length && body[i] == '}')
        {
            return i + 1;
        }

        while (true)
        {
            if (i >= body.Length || body[i] != '"')
            {
                return Fail;
            }

            var keyStart = i + 1;
            var keyEnd = ScanString(body, keyStart, out var keyEscaped);
            if (keyEnd == Fail)
            {
                return Fail;
            }

            i = ExpectColon(body, keyEnd + 1);
            if (i == Fail)
            {
                return Fail;
            }

            var valueMode = mode;
            if (mode == Mode.Schema)
            {
                state.CountString(body, keyStart, keyEnd, keyEscaped);
            }
            else if (mode == Mode.Content)
            {
                var key = KeyText(body, keyStart, keyEnd, keyEscaped, keyBuffer);
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
            if (i == Fail)
            {
                return Fail;
            }

            i = SkipWhitespace(body, i);
            if (i >= body.Length)
            {
                return Fail;
            }

            if (body[i] == '}')
            {
                return i + 1;
            }

            if (body[i] != ',')
            {
                return Fail;
            }

            i = SkipWhitespace(body, i + 1);
        }
    }

    private static int Array(ReadOnlySpan<byte> body, int i, int depth, Mode mode, bool rootArray, ref ScanState state)
    {
        i = SkipWhitespace(body, i + 1);
        if (i < body.Length && body[i] == ']')
        {
            return i + 1;
        }

        while (true)
        {
            if (i >= body.Length)
            {
                return Fail;
            }

            if (rootArray && mode == Mode.Content && body[i] == '{')
            {
                state.Fixed += TokensPerMessage;
            }

            i = Value(body, i, depth, mode, rootArray: false, ref state);
            if (i == Fail)
            {
                return Fail;
            }

            i = SkipWhitespace(body, i);
            if (i >= body.Length)
            {
                return Fail;
            }

            if (body[i] == ']')
            {
                return i + 1;
            }

            if (body[i] != ',')
            {
                return Fail;
            }

            i = SkipWhitespace(body, i + 1);
        }
    }

    /// <summary>Scans a string's content from <paramref name="i"/> (after the opening quote); returns the closing quote's index.</summary>
    private static int ScanString(ReadOnlySpan<byte> body, int i, out bool escaped)
    {
        escaped = false;
        while (true)
        {
            // A few bytes one by one first: escapes often come close together (\" in JSON, \n in code),
            // and a vectorized search costs more to start than it saves on short stretches.
            var probeEnd = Math.Min(i + 16, body.Length);
            while (i < probeEnd && !IsStringSpecial(body[i]))
            {
                i++;
            }

            if (i == probeEnd)
            {
                var k = body[i..].IndexOfAny(s_stringSpecials);
                if (k < 0)
                {
                    return Fail;
                }

                i += k;
            }

            var c = body[i];
            if (c == '"')
            {
                return i;
            }

            if (c != '\\')
            {
                return Fail; // a control character
            }

            escaped = true;
            i = ScanEscape(body, i);
            if (i == Fail)
            {
                return Fail;
            }
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool IsStringSpecial(byte c) => c < 0x20 || c == '"' || c == '\\';

    // Validates the escape at i (a backslash); returns the index after it. \u escapes must pair surrogates.
    private static int ScanEscape(ReadOnlySpan<byte> body, int i)
    {
        if (i + 1 >= body.Length)
        {
            return Fail;
        }

        switch (body[i + 1])
        {
            case (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t':
                return i + 2;
            case (byte)'u':
                var unit = Hex4(body, i + 2);
                if (unit < 0)
                {
                    return Fail;
                }

                if (unit is >= 0xDC00 and <= 0xDFFF)
                {
                    return Fail; // a low surrogate without its high one
                }

                if (unit is >= 0xD800 and <= 0xDBFF)
                {
                    if (i + 11 >= body.Length || body[i + 6] != '\\' || body[i + 7] != 'u' || Hex4(body, i + 8) is < 0xDC00 or > 0xDFFF)
                    {
                        return Fail; // a high surrogate without its low one
                    }

                    return i + 12;
                }

                return i + 6;
            default:
                return Fail;
        }
    }

    private static int Hex4(ReadOnlySpan<byte> body, int i)
    {
        if (i + 4 > body.Length)
        {
            return -1;
        }

        var value = 0;
        for (var k = 0; k < 4; k++)
        {
            var c = body[i + k];
            var digit = c switch
            {
                >= (byte)'0' and <= (byte)'9' => c - '0',
                >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
                _ => -1,
            };
            if (digit < 0)
            {
                return -1;
            }

            value = (value << 4) | digit;
        }

        return value;
    }

    private static int ScanNumber(ReadOnlySpan<byte> body, int i)
    {
        if (body[i] == '-')
        {
            i++;
        }

        if (i >= body.Length)
        {
            return Fail;
        }

        if (body[i] == '0')
        {
            i++;
        }
        else if (body[i] is >= (byte)'1' and <= (byte)'9')
        {
            i = Digits(body, i + 1);
        }
        else
        {
            return Fail;
        }

        if (i < body.Length && body[i] == '.')
        {
            var start = i + 1;
            i = Digits(body, start);
            if (i == start)
            {
                return Fail;
            }
        }

        if (i < body.Length && body[i] is (byte)'e' or (byte)'E')
        {
            i++;
            if (i < body.Length && body[i] is (byte)'+' or (byte)'-')
            {
                i++;
            }

            var start = i;
            i = Digits(body, start);
            if (i == start)
            {
                return Fail;
            }
        }

        return i;
    }

    private static int Digits(ReadOnlySpan<byte> body, int i)
    {
        while (i < body.Length && body[i] is >= (byte)'0' and <= (byte)'9')
        {
            i++;
        }

        return i;
    }

    /// <summary>Unescapes a validated JSON string's raw content into UTF-8; returns the bytes written, or -1 if it does not fit.</summary>
    internal static int Unescape(ReadOnlySpan<byte> raw, Span<byte> destination)
    {
        var written = 0;
        var i = 0;
        while (i < raw.Length)
        {
            var backslash = raw[i..].IndexOf((byte)'\\');
            var plain = backslash < 0 ? raw.Length - i : backslash;
            if (written + plain > destination.Length)
            {
                return -1;
            }

            raw.Slice(i, plain).CopyTo(destination[written..]);
            written += plain;
            i += plain;
            if (i >= raw.Length)
            {
                break;
            }

            int codePoint;
            switch (raw[i + 1])
            {
                case (byte)'u':
                    codePoint = Hex4(raw, i + 2);
                    i += 6;
                    if (codePoint is >= 0xD800 and <= 0xDBFF)
                    {
                        codePoint = 0x10000 + ((codePoint - 0xD800) << 10) + (Hex4(raw, i + 2) - 0xDC00);
                        i += 6;
                    }

                    break;
                case var c:
                    codePoint = c switch { (byte)'b' => '\b', (byte)'f' => '\f', (byte)'n' => '\n', (byte)'r' => '\r', (byte)'t' => '\t', _ => c };
                    i += 2;
                    break;
            }

            var rune = new Rune(codePoint);
            if (written + rune.Utf8SequenceLength > destination.Length)
            {
                return -1;
            }

            written += rune.EncodeToUtf8(destination[written..]);
        }

        return written;
    }

    private static bool IsMediaKey(ReadOnlySpan<byte> key) =>
        key.SequenceEqual("image_url"u8) || key.SequenceEqual("input_audio"u8) || key.SequenceEqual("audio"u8)
        || key.SequenceEqual("file"u8) || key.SequenceEqual("file_data"u8) || key.SequenceEqual("file_id"u8)
        || key.SequenceEqual("image"u8) || key.SequenceEqual("video_url"u8);

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

        return counter.CountTokens(scratch.AsSpan(0, Unescape(raw, scratch)));
    }

    private ref struct ScanState(ITokenCounter counter, int mediaTokens, PromptText ranges, TextCountCache? cache)
    {
        private byte[]? _scratch;

        public readonly int MediaTokens = mediaTokens;
        public long Text;
        public long Fixed;

        /// <summary>Gets the index of the closing quote of the string <see cref="TryCountCached"/> took.</summary>
        public int CachedEnd { get; private set; }

        /// <summary>
        /// Counts a long prompt string from the cache when its raw bytes were seen before: those bytes were
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
    }
}
