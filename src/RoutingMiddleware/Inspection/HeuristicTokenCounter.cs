namespace ModelRouting.Inspection;

/// <summary>
/// Estimates o200k_base tokens in one pass over UTF-8 bytes, without allocating or decoding to a string.
/// </summary>
/// <remarks>
/// <para>
/// The scan mirrors o200k's pre-tokenizer, whose pieces are never merged by the BPE: letter runs (split at a
/// lower-to-upper case change, as in <c>getUserId</c>), digit runs in groups of three, punctuation runs (which take
/// a leading space and trailing newlines), newline runs and space runs (whose last space joins the next word).
/// Each piece costs about one token plus a length-dependent part; CJK ideographs, kana, Hangul, other scripts,
/// symbols and emoji have their own per-character rates.
/// </para>
/// <para>
/// The rates were fitted against Microsoft.ML.Tokenizers' o200k_base counts on the corpus under
/// tests/RoutingMiddleware.Tests/Inspection/Corpus (English, code, JSON, Japanese, Chinese, chat Markdown,
/// European languages and adversarial text); HeuristicAccuracyTests holds the accuracy targets.
/// </para>
/// </remarks>
public sealed class HeuristicTokenCounter : ITokenCounter
{
    // A word (letter run) of up to WordFreeLetters ASCII letters is usually one token; longer ones cost a little more.
    private const double WordFreeLetters = 6.33;
    private const double WordLetterRate = 0.039;
    private const double UpperLetterRate = 0.334;       // each upper-case letter after the first (HTTP, SCREAMING_CASE)
    private const double MixedWordAsciiRate = 0.336;    // ASCII letters in a word that also has accented/other letters
    private const double OtherLetterRate = 0.094;       // accented Latin, Cyrillic, Greek, Hebrew, Arabic, Indic letters
    private const double DigitGroupCost = 1.103;        // per group of up to three digits
    private const double PunctuationFirst = 0.787;
    private const double PunctuationExtra = 0.156;
    private const double PunctuationAttached = 0.3;     // one mark glued to the next word (.get, (self, "name)
    private const double PunctuationNewline = 0.975;    // newlines that follow punctuation (";\n", "{\n")
    private const double NewlineRun = 1.215;
    private const double SpaceRunCost = 0.532;
    private const double SpaceRate = 0.0198;
    private const double IdeographCost = 0.8;
    private const double KanaCost = 0.743;
    private const double HangulCost = 1.33;
    private const double CjkPunctuationCost = 0.3;       // 、。「」 and full-width forms
    private const double Latin1SymbolCost = 0.5;        // U+0080..U+00BF, ×, ÷
    private const double GeneralPunctuationCost = 0.3;  // U+2000..U+206F: curly quotes, dashes, ellipsis
    private const double SymbolCost = 1.6;              // arrows, maths, box drawing, dingbats, private use
    private const double AstralSymbolCost = 1.843;      // emoji and other four-byte symbols
    private const double JoinerCost = 0.3;              // ZWJ, variation selectors, keycap

    // Very long runs (rare in real text, common in adversarial input): o200k has long tokens for repeated
    // characters ("=====", "    ", "\n\n\n\n") but not for random letters or accented letters.
    private const int LongRun = 24;
    private const double LongRepeatedRate = 0.12;
    private const double LongAsciiRate = 0.25;
    private const double LongOtherRate = 0.8;
    private const double LongPunctuationRepeatedRate = 0.015;
    private const double LongSpaceRate = 0.008;
    private const double ExtraNewlineRate = 0.0625;

    /// <summary>The class of each ASCII byte: letters, digits, newlines (\n, \r), spaces (space, \t, \v, \f), punctuation.</summary>
    private static ReadOnlySpan<byte> AsciiClasses =>
    [
        5, 5, 5, 5, 5, 5, 5, 5, 5, 3, 4, 3, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
        3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5,
        5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 5,
        5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 5,
    ];

    private enum CharClass : byte
    {
        Letter,
        OtherLetter,
        Digit,
        Space,
        Newline,
        Punctuation,
        Ideograph,
        Kana,
        Hangul,
        CjkPunctuation,
        Latin1Symbol,
        GeneralPunctuation,
        Symbol,
        AstralSymbol,
        Joiner,
    }

    /// <summary>The shared instance.</summary>
    public static HeuristicTokenCounter Instance { get; } = new();

    /// <inheritdoc />
    public bool IsExact => false;

    /// <inheritdoc />
    public int CountTokens(ReadOnlySpan<byte> utf8Text)
    {
        if (utf8Text.IsEmpty)
        {
            return 0;
        }

        var estimate = Estimate(utf8Text);
        return Math.Max(1, (int)Math.Round(estimate, MidpointRounding.AwayFromZero));
    }

    private static double Estimate(ReadOnlySpan<byte> text)
    {
        double tokens = 0;
        var i = 0;
        var afterSpace = true;
        while (i < text.Length)
        {
            var charClass = Classify(text, i, out var length);
            switch (charClass)
            {
                case CharClass.Letter:
                case CharClass.OtherLetter:
                    tokens += ScanWord(text, ref i);
                    afterSpace = false;
                    break;

                case CharClass.Digit:
                    {
                        var start = i;
                        while (i < text.Length && IsDigit(text[i]))
                        {
                            i++;
                        }

                        tokens += DigitGroupCost * ((i - start + 2) / 3);
                        afterSpace = false;
                        break;
                    }

                case CharClass.Space:
                case CharClass.Newline:
                    tokens += ScanWhitespace(text, ref i);
                    afterSpace = true;
                    break;

                case CharClass.Punctuation:
                    {
                        var start = i;
                        var repeated = 0;
                        while (i < text.Length && text[i] < 0x80 && AsciiClasses[text[i]] == (byte)CharClass.Punctuation)
                        {
                            if (i - start >= LongRun && text[i] == text[i - 1])
                            {
                                repeated++;
                            }

                            i++;
                        }

                        var runLength = i - start - repeated;
                        if (runLength == 1 && !afterSpace && i < text.Length && IsWordStart(Classify(text, i, out _)))
                        {
                            tokens += PunctuationAttached;
                        }
                        else
                        {
                            tokens += PunctuationFirst + (runLength - 1) * PunctuationExtra + repeated * LongPunctuationRepeatedRate;
                        }

                        afterSpace = false;
                        if (i < text.Length && IsNewline(text[i]))
                        {
                            while (i < text.Length && IsNewline(text[i]))
                            {
                                i++;
                            }

                            tokens += PunctuationNewline;
                            afterSpace = true;
                        }

                        break;
                    }

                default:
                    tokens += charClass switch
                    {
                        CharClass.Ideograph => IdeographCost,
                        CharClass.Kana => KanaCost,
                        CharClass.Hangul => HangulCost,
                        CharClass.CjkPunctuation => CjkPunctuationCost,
                        CharClass.Latin1Symbol => Latin1SymbolCost,
                        CharClass.GeneralPunctuation => GeneralPunctuationCost,
                        CharClass.Symbol => SymbolCost,
                        CharClass.AstralSymbol => AstralSymbolCost,
                        _ => JoinerCost,
                    };
                    i += length;
                    afterSpace = false;
                    break;
            }
        }

        return tokens;
    }

    // A run of letters, split where a lower-case letter is followed by an upper-case one.
    private static double ScanWord(ReadOnlySpan<byte> text, ref int i)
    {
        double tokens = 0;
        int ascii = 0, upper = 0, other = 0;
        var previousLower = false;
        byte previous = 0;
        while (i < text.Length)
        {
            var b = text[i];

            // Fast path: a run of lower-case letters that stays short of the long-run rates.
            if (b - (uint)'a' <= 'z' - 'a' && ascii + other < LongRun - 1)
            {
                var end = i + 1;
                var limit = Math.Min(text.Length, i + (LongRun - ascii - other));
                while (end < limit && text[end] - (uint)'a' <= 'z' - 'a')
                {
                    end++;
                }

                ascii += end - i;
                previous = text[end - 1];
                previousLower = true;
                i = end;
                continue;
            }

            if (b < 0x80)
            {
                if (!IsAsciiLetter(b))
                {
                    break;
                }

                var isUpper = b <= 'Z';
                if (isUpper && previousLower)
                {
                    tokens += WordCost(ascii, upper, other);
                    ascii = 0;
                    upper = 0;
                    other = 0;
                }

                if (ascii + other >= LongRun)
                {
                    tokens += b == previous ? LongRepeatedRate : LongAsciiRate;
                    previous = b;
                    previousLower = !isUpper;
                    i++;
                    continue;
                }

                previous = b;
                ascii++;
                if (isUpper)
                {
                    upper++;
                }

                previousLower = !isUpper;
                i++;
            }
            else
            {
                if (Classify(text, i, out var length) != CharClass.OtherLetter)
                {
                    break;
                }

                if (ascii + other >= LongRun)
                {
                    tokens += LongOtherRate;
                }
                else
                {
                    other++;
                }

                previous = 0;
                i += length;
                previousLower = true;
            }
        }

        return tokens + WordCost(ascii, upper, other);
    }

    private static double WordCost(int ascii, int upper, int other)
    {
        if (ascii + other == 0)
        {
            return 0;
        }

        var letters = other > 0 ? ascii * MixedWordAsciiRate : Math.Max(0, ascii - WordFreeLetters) * WordLetterRate;
        return 1 + letters + Math.Max(0, upper - 1) * UpperLetterRate + other * OtherLetterRate;
    }

    // Newlines (with any spaces before them) are one piece; the spaces after the last newline are another, except
    // the last one, which joins the following word or punctuation (but not a digit).
    private static double ScanWhitespace(ReadOnlySpan<byte> text, ref int i)
    {
        int newlines = 0, trailing = 0;
        while (i < text.Length)
        {
            var b = text[i];
            if (IsNewline(b))
            {
                newlines++;
                trailing = 0;
            }
            else if (IsSpace(b))
            {
                trailing++;
            }
            else
            {
                break;
            }

            i++;
        }

        double tokens = newlines > 0 ? NewlineRun + (newlines - 1) * ExtraNewlineRate : 0;
        if (trailing > 0 && i < text.Length && !IsDigit(text[i]))
        {
            trailing--;
        }

        if (trailing > 0)
        {
            tokens += SpaceRunCost + Math.Min(trailing, LongRun) * SpaceRate + Math.Max(0, trailing - LongRun) * LongSpaceRate;
        }

        return tokens;
    }

    private static CharClass Classify(ReadOnlySpan<byte> text, int i, out int length)
    {
        var b = text[i];
        if (b < 0x80)
        {
            length = 1;
            return (CharClass)AsciiClasses[b];
        }

        int codePoint;
        if (b >= 0xF0 && i + 3 < text.Length)
        {
            length = 4;
            codePoint = ((b & 0x07) << 18) | ((text[i + 1] & 0x3F) << 12) | ((text[i + 2] & 0x3F) << 6) | (text[i + 3] & 0x3F);
            return codePoint >= 0x20000 ? CharClass.Ideograph : CharClass.AstralSymbol;
        }

        if (b >= 0xE0 && i + 2 < text.Length)
        {
            length = 3;
            codePoint = ((b & 0x0F) << 12) | ((text[i + 1] & 0x3F) << 6) | (text[i + 2] & 0x3F);
            return ClassifyBmp(codePoint);
        }

        if (b >= 0xC0 && i + 1 < text.Length)
        {
            length = 2;
            codePoint = ((b & 0x1F) << 6) | (text[i + 1] & 0x3F);
            return codePoint is < 0xC0 or 0xD7 or 0xF7 ? CharClass.Latin1Symbol : CharClass.OtherLetter;
        }

        // A continuation byte or a truncated sequence: count it like a rare symbol byte.
        length = 1;
        return CharClass.Latin1Symbol;
    }

    private static CharClass ClassifyBmp(int codePoint) => codePoint switch
    {
        < 0x2000 => CharClass.OtherLetter,
        0x200D or 0x20E3 or (>= 0xFE00 and <= 0xFE0F) => CharClass.Joiner,
        < 0x2070 => CharClass.GeneralPunctuation,
        >= 0x2C00 and < 0x2E00 => CharClass.OtherLetter,
        < 0x2E80 => CharClass.Symbol,
        < 0x3000 => CharClass.Ideograph,
        < 0x3040 => CharClass.CjkPunctuation,
        < 0x3200 => CharClass.Kana,
        < 0x3400 => CharClass.Symbol,
        < 0xA000 => CharClass.Ideograph,
        < 0xAC00 => CharClass.OtherLetter,
        < 0xD7B0 => CharClass.Hangul,
        < 0xF900 => CharClass.Symbol,
        < 0xFB00 => CharClass.Ideograph,
        < 0xFE00 => CharClass.OtherLetter,
        < 0xFFF0 => CharClass.CjkPunctuation,
        _ => CharClass.Symbol,
    };

    private static bool IsWordStart(CharClass charClass) =>
        charClass is CharClass.Letter or CharClass.OtherLetter or CharClass.Ideograph or CharClass.Kana or CharClass.Hangul;

    private static bool IsAsciiLetter(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static bool IsNewline(byte b) => b is (byte)'\n' or (byte)'\r';

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or 0x0B or 0x0C;

}
