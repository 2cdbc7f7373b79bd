using System.Buffers;
using System.Text;
using System.Text.Json;

namespace ModelRouting.Inspection;

/// <summary>
/// The JSON lexer under <see cref="OpenAIRequestParser"/>: whitespace, strings (with their escapes validated),
/// numbers and literals, each scanned from an index and returning the index after it, or <see cref="Fail"/>.
/// Knows nothing of OpenAI fields or tokens.
/// </summary>
/// <remarks>
/// A purpose-built scanner rather than <see cref="Utf8JsonReader"/>: the reader validates every byte of a
/// string that contains an escape one at a time, which made it cost as much as the whole estimate on chat
/// bodies (code and JSON in messages are full of <c>\n</c> and <c>\"</c>); this one skips to the next quote,
/// backslash or control character with a vectorized search. Validation is RFC 8259: structure, numbers,
/// literals, escapes (with surrogate pairs), no control characters in strings, at most <see cref="MaxDepth"/>
/// levels of nesting (UTF-8 is checked once for the whole body by the parser). ParserDifferentialTests hold it
/// to System.Text.Json's verdicts; the inspection benchmarks measure it against JsonDocument.
/// </remarks>
internal static class JsonScanner
{
    /// <summary>The index a scan returns when the JSON is not valid.</summary>
    public const int Fail = -1;

    /// <summary>The deepest nesting accepted, as Utf8JsonReader's default.</summary>
    public const int MaxDepth = 256;

    private static readonly SearchValues<byte> s_stringSpecials = SearchValues.Create(
        [(byte)'"', (byte)'\\', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]);

    // Returns the property name's unescaped bytes when short enough to be one of ours, else the raw bytes.
    internal static ReadOnlySpan<byte> KeyText(ReadOnlySpan<byte> body, int start, int end, bool escaped, Span<byte> buffer)
    {
        var raw = body[start..end];
        if (!escaped)
        {
            return raw;
        }

        var written = Unescape(raw, buffer);
        return written < 0 ? raw : buffer[..written];
    }

    internal static int SkipWhitespace(ReadOnlySpan<byte> body, int i)
    {
        while (i < body.Length && body[i] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
        {
            i++;
        }

        return i;
    }

    internal static int ExpectColon(ReadOnlySpan<byte> body, int i)
    {
        i = SkipWhitespace(body, i);
        if (i >= body.Length || body[i] != ':')
        {
            return Fail;
        }

        i = SkipWhitespace(body, i + 1);
        return i < body.Length ? i : Fail;
    }

    /// <summary>Scans a string's content from <paramref name="i"/> (after the opening quote); returns the closing quote's index.</summary>
    internal static int ScanString(ReadOnlySpan<byte> body, int i, out bool escaped)
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

    internal static int ScanNumber(ReadOnlySpan<byte> body, int i)
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
}
