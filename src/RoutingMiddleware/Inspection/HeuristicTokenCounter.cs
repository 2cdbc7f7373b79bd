namespace ModelRouting.Inspection;

/// <summary>
/// Estimates o200k_base tokens in one pass over UTF-8 bytes, without allocating or decoding to a string.
/// </summary>
/// <remarks>
/// <para>
/// The scan mirrors o200k's pre-tokenizer, whose pieces are never merged by the BPE: letter runs (split at a
/// lower-to-upper case change, as in <c>getUserId</c>), digit runs in groups of three, punctuation runs (which take
/// a leading space and trailing newlines), newline runs and space runs (whose last space joins the next word).
/// Each piece costs about one token plus a part for its length or content; CJK ideographs, kana, Hangul, other scripts,
/// symbols and emoji have their own per-character rates.
/// </para>
/// <para>
/// The rates were fitted against Microsoft.ML.Tokenizers' o200k_base counts on the corpus under
/// tests/RoutingMiddleware.Tests/Inspection/Corpus (English, code, JSON, Japanese, Chinese, chat Markdown,
/// European languages and adversarial text); HeuristicAccuracyTests holds the accuracy targets.
/// </para>
/// <para>
/// The lower bound (SPEC §18): whatever o200k cannot merge is charged at about its real cost, so unusual text is
/// not estimated far below its count. Characters o200k has no token for (rare letters, private use, unassigned
/// code points, most emoji) cost their own tokens (<see cref="CharacterTokenTable"/>); controls, combining marks,
/// joiners and a character repeated where o200k has no token for the repetition cost a token each; runs of one
/// character (rulers, whitespace art) cost at least their share of o200k's longest token of that character.
/// A word costs a token more for each three letters o200k has no token for (random letters, hashes, base64).
/// HeuristicLowerBoundTests holds the bound on a generated adversarial set, and names the shapes it does not always
/// hold for: random sequences of common letters, which three-letter statistics tell from words only mostly.
/// </para>
/// </remarks>
public sealed class HeuristicTokenCounter : ITokenCounter
{
    // A word (letter run) is one token, plus TrigramMissCost for each three letters o200k has no token for past the
    // first: real words are made of o200k's trigrams, random letters (hashes, base64, keyboard mash) are not.
    private const double UpperLetterRate = 0.334;       // each upper-case letter after the first (HTTP, SCREAMING_CASE)
    private const double MixedWordAsciiRate = 0.26;    // ASCII letters in a word that also has accented/other letters
    private const double OtherLetterRate = 0.094;       // accented Latin, Cyrillic, Greek, Hebrew, Arabic, Indic letters
    private const double DigitGroupCost = 1.103;        // per group of up to three digits
    private const double PunctuationFirst = 0.787;
    private const double PunctuationExtra = 0.156;
    private const double PunctuationAttached = 0.3;     // one mark glued to the next word (.get, (self, "name)
    private const double PunctuationNewline = 0.975;    // newlines that follow punctuation (";\n", "{\n")
    private const double NewlineRun = 1.215;
    private const double SpaceRunCost = 0.532;
    private const double SpaceRate = 0.0198;
    private const double SpaceBeforeDigitCost = 1;      // " 2024": the space is a token of its own
    private const double IdeographCost = 0.72;
    private const double KanaCost = 0.743;
    private const double HangulCost = 0.9;
    private const double CjkPunctuationCost = 0.3;       // 、。「」 and full-width forms
    private const double Latin1SymbolCost = 0.5;        // U+0080..U+00BF, ×, ÷
    private const double GeneralPunctuationCost = 0.3;  // U+2000..U+206F: curly quotes, dashes, ellipsis
    private const double SymbolCost = 1.6;              // arrows, maths, box drawing, dingbats, private use
    private const double AstralSymbolCost = 1.843;      // emoji and other four-byte symbols
    private const double JoinerCost = 0.6;              // ZWJ, variation selectors, keycap, after a symbol or emoji

    // The lower bound (SPEC §18): what o200k cannot merge is charged at about its real cost, whatever the fitted
    // rates say: RareRate of its own tokens for a character o200k spells out in pieces (rare letters, private use,
    // unassigned, most emoji), a token each for what o200k never merges.
    private const double ControlCost = 1;               // C0 controls, \v, \f, DEL: one token each, never merged
    private const double MarkCost = 0.95;               // a combining mark (U+0300..U+036F and the like): one token each
    private const double LoneJoinerCost = 1;            // a joiner or selector that follows no symbol
    private const double RareRate = 0.95;
    private const double RepeatedOtherLetterCost = 0.85; // ééé, ַַַ: o200k has few tokens for a non-ASCII letter repeated
    private const double RepeatedCjkCost = 0.95;        // 中中中: one token each
    private const double FloorShare = 0.85;             // run floors aim at 85% of the real count
    private const double WhitespaceChangeCost = 1;      // space to tab and back: a new token at each change
    private const double LineChangeCost = 0.5;          // space to newline and back
    private const double CrLfRate = 1;                  // each further \r\n pair of a run
    private const double StandaloneCost = 0.95;         // a quote, dash or CJK mark that follows no letter: its own token
    private const double AfterSpaceCost = 0.85;         // the same after a space, which it takes into its token
    private const double PunctuationBreak = 1;          // two marks o200k has no token for: a token boundary between them
    private const double LongPunctuationRate = 0.5;     // o200k has few tokens of more than two mixed marks
    private const double TrigramMissCost = 0.7;         // each three letters of a word o200k has no token for, past the first

    // Very long runs (rare in real text, common in adversarial input): o200k has long tokens for repeated
    // characters ("=====", "    ", "\n\n\n\n") but not for random letters or accented letters.
    private const int LongRun = 24;
    private const double LongRepeatedRate = 0.12;
    private const double LongAsciiRate = 0.25;
    private const double LongOtherRate = 0.8;
    private const double LongSpaceRate = 0.008;
    private const double ExtraNewlineRate = 0.0625;

    /// <summary>The class of each ASCII byte: letters, digits, newlines (\n, \r), spaces (space, \t), punctuation, controls.</summary>
    private static ReadOnlySpan<byte> AsciiClasses =>
    [
        15, 15, 15, 15, 15, 15, 15, 15, 15, 3, 4, 15, 15, 4, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
        3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5,
        5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 5,
        5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 15,
    ];

    /// <summary>
    /// The longest o200k token made of one ASCII character repeated (<c>=</c>: 69 of them, <c>[</c>: 2), for the
    /// floor of a run of that character; generated from Microsoft.ML.Tokenizers and checked by CharacterTokenTableTests.
    /// </summary>
    internal static ReadOnlySpan<byte> AsciiRunLengths =>
    [
        2, 1, 1, 1, 1, 1, 1, 1, 1, 16, 16, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        96, 16, 4, 60, 4, 32, 2, 4, 4, 4, 69, 32, 4, 69, 60, 60, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 16, 16, 8, 69, 8, 8,
        8, 8, 4, 4, 2, 4, 8, 2, 2, 4, 2, 2, 4, 4, 2, 4, 2, 2, 2, 2, 2, 2, 2, 2, 16, 4, 2, 2, 4, 2, 8, 60,
        2, 8, 4, 4, 4, 4, 8, 2, 4, 4, 2, 4, 8, 4, 2, 8, 2, 2, 4, 4, 2, 2, 4, 2, 8, 4, 2, 2, 4, 2, 32, 1,
    ];

    /// <summary>
    /// Bit <c>b</c> of entry <c>a</c>: the two ASCII punctuation marks <c>a</c>, <c>b</c> (indexed in ASCII order,
    /// see <see cref="PunctuationIndex"/>) are one o200k token; generated from Microsoft.ML.Tokenizers and checked by
    /// CharacterTokenTableTests.
    /// </summary>
    internal static ReadOnlySpan<uint> PunctuationPairs => s_punctuationPairs;

    // An array, not a span over constant data: a collection expression of uint allocated on every read in Debug builds.

    private static readonly uint[] s_punctuationPairs =
    [
        0x01D4FBC3, 0x7DDBFFFF, 0x1040EC0F, 0x1480E888, 0x02A539D3, 0x040009A4, 0x57DFFFDE, 0xBEF3F7FF,
        0x7FDFFFFF, 0x04ECFBAB, 0x01C4FDCE, 0x16E2FFFF, 0x34CC7BFA, 0xBFF7FFFF, 0x97FEFFFE, 0x1FF6FFFE,
        0x40837DFA, 0x145E50ED, 0x5CFEF2FF, 0x79FFFBFE, 0x24DAF9CF, 0x00E0808A, 0x1FE0DADE, 0x00C2F8CA,
        0x77DFFFF3, 0x12C03180, 0x37C7FBDA, 0x4981A900, 0x70A0D05A, 0x208010C2, 0x7DFFFDFB, 0x80045800,
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
        Control,
        Mark,
        Rare,
        OtherSpace,
    }

    // Loaded with the counter (not on the first non-ASCII text), so counting never allocates.
    private static readonly CharacterTokenTable s_characters = CharacterTokenTable.O200k;

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

        // Rounded up: a short text's fraction of a token is a whole token to the tokenizer.
        return Math.Max(1, (int)Math.Ceiling(Estimate(utf8Text)));
    }

    private static double Estimate(ReadOnlySpan<byte> text)
    {
        double tokens = 0;
        var i = 0;
        var afterSpace = true;
        var previousClass = CharClass.Space;
        var previousCodePoint = -1;
        while (i < text.Length)
        {
            var charClass = Classify(text, i, out var length, out var codePoint, out var entry);
            switch (charClass)
            {
                case CharClass.Letter:
                case CharClass.OtherLetter:
                case CharClass.Mark:
                    tokens += ScanWord(text, ref i);
                    afterSpace = false;
                    codePoint = -1;
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
                    tokens += ScanPunctuation(text, ref i, afterSpace, out afterSpace);
                    break;

                default:
                    tokens += charClass switch
                    {
                        CharClass.Ideograph => codePoint == previousCodePoint ? RepeatedCjkCost : IdeographCost,
                        CharClass.Kana => codePoint == previousCodePoint ? RepeatedCjkCost : KanaCost,
                        CharClass.Hangul => HangulCost,
                        CharClass.CjkPunctuation => FollowsLetter(previousClass) ? CjkPunctuationCost : StandaloneCost,
                        CharClass.Latin1Symbol => FollowsLetter(previousClass) ? Latin1SymbolCost : Standalone(previousClass),
                        CharClass.GeneralPunctuation => FollowsLetter(previousClass) ? GeneralPunctuationCost : Standalone(previousClass),
                        CharClass.Symbol => SymbolCost,
                        CharClass.AstralSymbol => AstralSymbolCost,
                        CharClass.Control => ControlCost,
                        CharClass.OtherSpace => StandaloneCost,
                        CharClass.Rare => RareRate * (entry & CharacterTokenTable.TokensMask),
                        _ => previousClass is CharClass.Symbol or CharClass.AstralSymbol or CharClass.Rare ? JoinerCost : LoneJoinerCost,
                    };
                    i += length;
                    afterSpace = false;
                    break;
            }

            previousClass = charClass;
            previousCodePoint = codePoint;
        }

        return tokens;
    }

    // A run of ASCII punctuation: the fitted cost, or, for runs of one character repeated (rulers), the floor of
    // the run at o200k's longest token of that character, whichever is more.
    private static double ScanPunctuation(ReadOnlySpan<byte> text, ref int i, bool afterSpace, out bool afterNewline)
    {
        var start = i;
        double floor = 1, breaks = 0;
        while (i < text.Length && text[i] < 0x80 && AsciiClasses[text[i]] == (byte)CharClass.Punctuation)
        {
            if (i > start)
            {
                if (text[i] == text[i - 1])
                {
                    floor += 1.0 / AsciiRunLengths[text[i]];
                }
                else
                {
                    floor += LongPunctuationRate;
                    if (!IsPunctuationPair(text[i - 1], text[i]))
                    {
                        breaks += PunctuationBreak;
                    }
                }
            }

            i++;
        }

        var runLength = i - start;
        double tokens;
        if (runLength == 1 && !afterSpace && i < text.Length && IsWordStart(Classify(text, i, out _, out _, out _)))
        {
            tokens = PunctuationAttached;
        }
        else
        {
            tokens = PunctuationFirst + (runLength - 1) * PunctuationExtra + breaks;
            // Past four marks, or four that repeat a pair (-=-=): o200k's mixed-mark tokens are short.
            if (runLength > 4 || (runLength == 4 && text[start] == text[start + 2] && text[start + 1] == text[start + 3]))
            {
                tokens = Math.Max(tokens, FloorShare * floor);
            }
        }

        afterNewline = false;
        if (i < text.Length && IsNewline(text[i]))
        {
            while (i < text.Length && IsNewline(text[i]))
            {
                i++;
            }

            tokens += PunctuationNewline;
            afterNewline = true;
        }

        return tokens;
    }

    // A run of letters, split where a lower-case letter is followed by an upper-case one. Combining marks stay in the
    // word but cost a token each; a letter repeated three times or more costs its share of o200k's longest token of it.
    private static double ScanWord(ReadOnlySpan<byte> text, ref int i)
    {
        double tokens = 0;
        int ascii = 0, upper = 0, other = 0;
        var previousLower = false;
        byte previous = 0, beforePrevious = 0;
        int previousCodePoint = -1, beforePreviousCodePoint = -1, marksInRow = 0, trigram = 0, misses = 0;

        // The last three ASCII letters, five bits each; misses counts those o200k has no token for.
        var trigrams = s_characters.Trigrams;
        while (i < text.Length)
        {
            var b = text[i];

            // Fast path: a run of lower-case letters that stays short of the long-run rates (a letter tripled leaves it).
            if (b - (uint)'a' <= 'z' - 'a' && ascii + other < LongRun - 1 && !(b == previous && b == beforePrevious))
            {
                var end = i + 1;
                var limit = Math.Min(text.Length, i + (LongRun - ascii - other));
                byte last = b, beforeLast = previous;
                trigram = ((trigram << 5) | (b & 0x1F)) & 0x7FFF;
                misses += ((trigrams[trigram >> 3] >> (trigram & 7)) & 1) ^ 1;
                while (end < limit)
                {
                    var c = text[end];
                    if (c - (uint)'a' > 'z' - 'a' || (c == last && c == beforeLast))
                    {
                        break;
                    }

                    trigram = ((trigram << 5) | (c & 0x1F)) & 0x7FFF;
                    misses += ((trigrams[trigram >> 3] >> (trigram & 7)) & 1) ^ 1;
                    beforeLast = last;
                    last = c;
                    end++;
                }

                ascii += end - i;
                beforePrevious = beforeLast;
                previous = last;
                previousLower = true;
                previousCodePoint = -1;
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
                    tokens += WordCost(ascii, upper, other, misses);
                    ascii = 0;
                    upper = 0;
                    other = 0;
                    misses = 0;
                    trigram = 0;
                }

                trigram = ((trigram << 5) | (b & 0x1F)) & 0x7FFF;
                misses += ((trigrams[trigram >> 3] >> (trigram & 7)) & 1) ^ 1;

                var tripled = b == previous && b == beforePrevious;
                beforePrevious = previous;
                previous = b;
                previousCodePoint = -1;
                if (ascii + other >= LongRun)
                {
                    tokens += b == beforePrevious ? Math.Max(LongRepeatedRate, FloorShare / AsciiRunLengths[b]) : LongAsciiRate;
                    previousLower = !isUpper;
                    i++;
                    continue;
                }

                if (tripled)
                {
                    tokens += FloorShare / AsciiRunLengths[b];
                }

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
                var charClass = Classify(text, i, out var length, out var codePoint, out var entry);
                var isMark = (entry & CharacterTokenTable.MarkFlag) != 0;
                if (charClass == CharClass.Mark)
                {
                    tokens += MarkCost;
                }
                else if (charClass != CharClass.OtherLetter)
                {
                    break;
                }
                else if (isMark && (codePoint == previousCodePoint || ++marksInRow >= 3))
                {
                    // A script's vowel sign or virama doubled, or a third in a row: o200k has no token for them.
                    tokens += RepeatedOtherLetterCost;
                }
                else if (codePoint == previousCodePoint && codePoint == beforePreviousCodePoint)
                {
                    tokens += RepeatedOtherLetterCost;
                }
                else if (ascii + other >= LongRun)
                {
                    tokens += LongOtherRate;
                }
                else
                {
                    other++;
                }

                if (!isMark)
                {
                    marksInRow = 0;
                }

                beforePreviousCodePoint = previousCodePoint;
                previousCodePoint = codePoint;
                beforePrevious = previous = 0;
                trigram = 0;
                i += length;
                previousLower = true;
            }
        }

        return tokens + WordCost(ascii, upper, other, misses);
    }

    private static double WordCost(int ascii, int upper, int other, int trigramMisses)
    {
        if (ascii + other == 0)
        {
            return 0;
        }

        var letters = other > 0 ? ascii * MixedWordAsciiRate : 0;
        return 1 + letters + Math.Max(0, upper - 1) * UpperLetterRate + other * OtherLetterRate + Math.Max(0, trigramMisses - 1) * TrigramMissCost;
    }


    // Newlines (with any spaces before them) are one piece; the spaces after the last newline are another, except
    // the last one, which joins the following word or punctuation (but not a digit, an ideograph or a character
    // o200k spells out). The floor: o200k merges a run of one whitespace character, not a mix of them.
    private static double ScanWhitespace(ReadOnlySpan<byte> text, ref int i)
    {
        var start = i;
        int newlines = 0, trailing = 0;
        double floor = 0;
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

            if (i > start)
            {
                var previous = text[i - 1];
                floor += b == previous ? 1.0 / AsciiRunLengths[b]
                    : previous == '\r' && b == '\n' ? 0
                    : previous == '\n' && b == '\r' ? CrLfRate
                    : IsNewline(b) != IsNewline(previous) ? LineChangeCost
                    : WhitespaceChangeCost;
            }

            i++;
        }

        double tokens = newlines > 0 ? NewlineRun + (newlines - 1) * ExtraNewlineRate : 0;
        if (trailing > 0 && i < text.Length)
        {
            if (IsDigit(text[i]))
            {
                // o200k's digits take no space: the last space before a number is a token of its own.
                tokens += SpaceBeforeDigitCost;
                trailing--;
            }
            else if (JoinsPrecedingSpace(text, i))
            {
                trailing--;
            }
        }

        if (trailing > 0)
        {
            tokens += SpaceRunCost + Math.Min(trailing, LongRun) * SpaceRate + Math.Max(0, trailing - LongRun) * LongSpaceRate;
        }

        return Math.Max(tokens, FloorShare * floor);
    }

    private static bool JoinsPrecedingSpace(ReadOnlySpan<byte> text, int i)
    {
        var b = text[i];
        if (b < 0x80)
        {
            return !IsDigit(b) && AsciiClasses[b] != (byte)CharClass.Control;
        }

        var next = Classify(text, i, out _, out _, out var entry);
        return next is not (CharClass.Ideograph or CharClass.Kana or CharClass.Rare or CharClass.Mark or CharClass.Joiner or CharClass.OtherSpace)
            && !(next == CharClass.OtherLetter && (entry & CharacterTokenTable.MarkFlag) != 0);
    }

    private static CharClass Classify(ReadOnlySpan<byte> text, int i, out int length, out int codePoint, out int entry)
    {
        var b = text[i];
        entry = 1;
        if (b < 0x80)
        {
            length = 1;
            codePoint = b;
            return (CharClass)AsciiClasses[b];
        }

        CharClass charClass;
        if (b >= 0xF0 && i + 3 < text.Length)
        {
            length = 4;
            codePoint = ((b & 0x07) << 18) | ((text[i + 1] & 0x3F) << 12) | ((text[i + 2] & 0x3F) << 6) | (text[i + 3] & 0x3F);
            charClass = codePoint >= 0x20000 ? CharClass.Ideograph : CharClass.AstralSymbol;
        }
        else if (b >= 0xE0 && i + 2 < text.Length)
        {
            length = 3;
            codePoint = ((b & 0x0F) << 12) | ((text[i + 1] & 0x3F) << 6) | (text[i + 2] & 0x3F);
            charClass = ClassifyBmp(codePoint);
        }
        else if (b >= 0xC0 && i + 1 < text.Length)
        {
            length = 2;
            codePoint = ((b & 0x1F) << 6) | (text[i + 1] & 0x3F);
            charClass = codePoint < 0xA0 ? CharClass.Control
                : codePoint == 0xA0 ? CharClass.OtherSpace
                : codePoint is < 0xC0 or 0xD7 or 0xF7 ? CharClass.Latin1Symbol
                : codePoint is >= 0x300 and < 0x370 ? CharClass.Mark
                : CharClass.OtherLetter;
        }
        else
        {
            // A continuation byte or a truncated sequence: a byte of its own.
            length = 1;
            codePoint = -1;
            entry = 1;
            return CharClass.Rare;
        }

        // What o200k has no token for is spelled out in pieces, whatever its class; punctuation in a letter block
        // (Hebrew maqaf, Myanmar section marks, Greek question mark) is punctuation.
        entry = s_characters.Entry(codePoint);
        return (entry & CharacterTokenTable.TokensMask) > 1 ? CharClass.Rare
            : charClass is CharClass.OtherLetter or CharClass.Kana && (entry & CharacterTokenTable.PunctuationFlag) != 0 ? CharClass.GeneralPunctuation
            : charClass;
    }

    private static CharClass ClassifyBmp(int codePoint) => codePoint switch
    {
        0x1680 or (>= 0x2000 and <= 0x200A) or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => CharClass.OtherSpace,
        0x200B or 0x200C or (>= 0x2060 and <= 0x2064) or 0xFEFF => CharClass.Joiner,
        (>= 0x1AB0 and < 0x1B00) or (>= 0x1DC0 and < 0x1E00) or (>= 0x20D0 and < 0x20E3) or (> 0x20E3 and < 0x2100) or (>= 0xFE20 and < 0xFE30) => CharClass.Mark,
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

    private static bool IsPunctuationPair(byte first, byte second) => (PunctuationPairs[PunctuationIndex(first)] & (1u << PunctuationIndex(second))) != 0;

    /// <summary>The index of an ASCII punctuation mark among the 32, in ASCII order.</summary>
    internal static int PunctuationIndex(byte b) => b switch
    {
        < 0x30 => b - 0x21,
        < 0x41 => b - 0x3A + 15,
        < 0x61 => b - 0x5B + 22,
        _ => b - 0x7B + 28,
    };

    private static double Standalone(CharClass previous) => previous == CharClass.Space ? AfterSpaceCost : StandaloneCost;

    // Whether a mark can be part of the token before it: a letter or an ideograph (o200k keeps digits apart).
    private static bool FollowsLetter(CharClass previous) =>
        previous is CharClass.Letter or CharClass.OtherLetter or CharClass.Mark or CharClass.Ideograph or CharClass.Kana or CharClass.Hangul;

    private static bool IsWordStart(CharClass charClass) =>
        charClass is CharClass.Letter or CharClass.OtherLetter or CharClass.Ideograph or CharClass.Kana or CharClass.Hangul;

    private static bool IsAsciiLetter(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static bool IsNewline(byte b) => b is (byte)'\n' or (byte)'\r';

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t';

}
