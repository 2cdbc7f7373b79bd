using System.Globalization;

namespace ModelRouting.Inspection;

/// <summary>
/// How many o200k_base tokens each code point below U+20000 takes on its own (1 to 4), so the heuristic knows
/// which characters the encoding has as a token and which it spells out in byte pieces (rare letters, marks,
/// symbols, private use, unassigned code points), and whether a code point is punctuation or a symbol (Unicode
/// general categories P and S) or a combining mark (M). Code points from U+20000 take four.
/// </summary>
/// <remarks>
/// The counts, <c>o200k-character-tokens.bin</c> (an embedded resource, 2 bits per code point, 32 KiB), are generated
/// from Microsoft.ML.Tokenizers' o200k_base; CharacterTokenTableTests regenerates them and fails on any difference.
/// Unpacked once, with the categories, into one byte per code point (128 KiB). Read-only: thread-safe.
/// </remarks>
internal sealed class CharacterTokenTable
{
    /// <summary>The first code point the table does not cover.</summary>
    public const int Limit = 0x20000;

    /// <summary>The embedded resource's name.</summary>
    public const string ResourceName = "ModelRouting.Inspection.o200k-character-tokens.bin";

    /// <summary>The embedded resource of the three-letter table (<see cref="IsTrigramToken"/>).</summary>
    public const string TrigramResourceName = "ModelRouting.Inspection.o200k-trigrams.bin";

    /// <summary>The bit of an <see cref="Entry"/> set for punctuation and symbols.</summary>
    public const byte PunctuationFlag = 0x80;

    /// <summary>The bit of an <see cref="Entry"/> set for combining marks.</summary>
    public const byte MarkFlag = 0x40;

    /// <summary>The bits of an <see cref="Entry"/> that hold the tokens alone.</summary>
    public const byte TokensMask = 0x07;

    private readonly byte[] _entries;
    private readonly byte[] _trigrams;

    private CharacterTokenTable(byte[] packed, byte[] trigrams)
    {
        Packed = packed;
        _trigrams = trigrams;
        _entries = new byte[Limit];
        for (var c = 0; c < Limit; c++)
        {
            var tokens = (byte)(1 + ((packed[c >> 2] >> ((c & 3) << 1)) & 3));
            var isPunctuation = c is < 0xD800 or > 0xDFFF && CharUnicodeInfo.GetUnicodeCategory(c) is
                UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
                or UnicodeCategory.OtherPunctuation or UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol
                or UnicodeCategory.ModifierSymbol or UnicodeCategory.OtherSymbol;
            var isMark = c is < 0xD800 or > 0xDFFF && CharUnicodeInfo.GetUnicodeCategory(c) is
                UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;
            _entries[c] = (byte)(tokens | (isPunctuation ? PunctuationFlag : 0) | (isMark ? MarkFlag : 0));
        }
    }

    /// <summary>Gets the table of o200k_base, loaded once.</summary>
    public static CharacterTokenTable O200k { get; } = Load();

    /// <summary>Gets the embedded data, for the test that regenerates it.</summary>
    public byte[] Packed { get; }

    /// <summary>Gets the embedded three-letter table, for the test that regenerates it.</summary>
    public ReadOnlySpan<byte> Trigrams => _trigrams;

    /// <summary>
    /// Gets whether three ASCII letters, each given as <c>letter &amp; 0x1F</c> (1 to 26, case-insensitive) and packed
    /// five bits apiece (<c>(a &lt;&lt; 10) | (b &lt;&lt; 5) | c</c>), are one o200k token (alone or after a space);
    /// a leading 0 (fewer than three letters so far) always is. Real words are made of such trigrams (92% of the
    /// English corpus's), random letters mostly not (27%).
    /// </summary>
    public bool IsTrigramToken(int packed) => (_trigrams[packed >> 3] & (1 << (packed & 7))) != 0;

    /// <summary>Gets the entry of <paramref name="codePoint"/>: its tokens alone (<see cref="TokensMask"/>) and its flags.</summary>
    public byte Entry(int codePoint) => (uint)codePoint < Limit ? _entries[codePoint] : (byte)4;

    /// <summary>Gets the o200k_base tokens of <paramref name="codePoint"/> alone.</summary>
    public int TokensAlone(int codePoint) => (uint)codePoint < Limit ? _entries[codePoint] & 7 : 4;

    /// <summary>Gets whether <paramref name="codePoint"/> is punctuation or a symbol.</summary>
    public bool IsPunctuation(int codePoint) => (uint)codePoint < Limit && (_entries[codePoint] & PunctuationFlag) != 0;

    /// <summary>Gets whether <paramref name="codePoint"/> is a combining mark (Unicode general categories Mn, Mc, Me).</summary>
    public bool IsMark(int codePoint) => (uint)codePoint < Limit && (_entries[codePoint] & MarkFlag) != 0;

    /// <summary>Packs per-code-point counts (1 to 4, index = code point) the way the resource stores them.</summary>
    public static byte[] Pack(ReadOnlySpan<byte> tokensAlone)
    {
        var packed = new byte[Limit / 4];
        for (var c = 0; c < Limit; c++)
        {
            packed[c >> 2] |= (byte)((Math.Clamp((int)tokensAlone[c], 1, 4) - 1) << ((c & 3) << 1));
        }

        return packed;
    }

    private static CharacterTokenTable Load() => new(Read(ResourceName, Limit / 4), Read(TrigramResourceName, 1 << 12));

    private static byte[] Read(string name, int length)
    {
        using var stream = typeof(CharacterTokenTable).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The embedded resource {name} is missing.");
        var data = new byte[length];
        stream.ReadExactly(data);
        return data;
    }
}
