namespace ModelRouting.Inspection;

/// <summary>
/// Estimates tokens from the text's length and character classes, in one pass over UTF-8 bytes without
/// allocating: letter runs (words), digit runs (split in groups of three, as o200k and cl100k do),
/// whitespace runs, punctuation, CJK characters and other scripts each have their own rate.
/// </summary>
public sealed class HeuristicTokenCounter : ITokenCounter
{
    /// <summary>The shared instance.</summary>
    public static HeuristicTokenCounter Instance { get; } = new();

    /// <inheritdoc />
    public bool IsExact => false;

    /// <inheritdoc />
    public int CountTokens(ReadOnlySpan<byte> utf8Text)
    {
        double tokens = 0;
        var i = 0;
        while (i < utf8Text.Length)
        {
            var b = utf8Text[i];
            if (IsAsciiLetter(b))
            {
                var start = i;
                while (i < utf8Text.Length && (IsAsciiLetter(utf8Text[i]) || utf8Text[i] >= 0x80 && !IsCjkLead(utf8Text, i)))
                {
                    i++;
                }

                var length = i - start;
                tokens += length <= 6 ? 1 : 1 + (length - 6) / 4.0;
            }
            else if (b is >= (byte)'0' and <= (byte)'9')
            {
                var start = i;
                while (i < utf8Text.Length && utf8Text[i] is >= (byte)'0' and <= (byte)'9')
                {
                    i++;
                }

                tokens += Math.Ceiling((i - start) / 3.0);
            }
            else if (b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
            {
                var start = i;
                while (i < utf8Text.Length && utf8Text[i] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
                {
                    i++;
                }

                var length = i - start;
                var followedByWord = i < utf8Text.Length && IsAsciiLetter(utf8Text[i]);
                if (length == 1 && (b == ' ' || followedByWord))
                {
                    continue;
                }

                tokens += Math.Ceiling(length / 16.0);
            }
            else if (b < 0x80)
            {
                tokens += 0.8;
                i++;
            }
            else if (IsCjkLead(utf8Text, i))
            {
                tokens += 0.9;
                i += 3;
            }
            else
            {
                var length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
                tokens += length == 4 ? 1.5 : 0.5;
                i += length;
            }
        }

        return (int)Math.Ceiling(tokens);
    }

    private static bool IsAsciiLetter(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    // Three-byte sequences for U+2E80..U+9FFF (CJK radicals, kana, ideographs) and U+AC00..U+D7AF (Hangul).
    private static bool IsCjkLead(ReadOnlySpan<byte> text, int i)
    {
        var b = text[i];
        if (b < 0xE2 || b > 0xED || i + 2 >= text.Length)
        {
            return false;
        }

        var codePoint = ((b & 0x0F) << 12) | ((text[i + 1] & 0x3F) << 6) | (text[i + 2] & 0x3F);
        return codePoint is >= 0x2E80 and <= 0x9FFF or >= 0xAC00 and <= 0xD7AF;
    }
}
