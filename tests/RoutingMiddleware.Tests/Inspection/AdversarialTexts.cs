using System.Globalization;
using System.Text;

namespace ModelRouting.Tests.Inspection;

/// <summary>
/// A deterministic (seeded) generator of unusual but legal texts for the heuristic's lower bound (SPEC §18):
/// code points of every Unicode general category, alone, in runs and repetitions, and the shapes a tokenizer
/// treats specially (combining-mark runs on a base, zero-width joiners, variation selectors, box drawing and
/// whitespace art, rulers, repeated punctuation, emoji ZWJ sequences and flags, digits with separators, mixed
/// scripts, very long words, base64 and hex blobs, URLs).
/// </summary>
internal static class AdversarialTexts
{
    /// <summary>The seed of the committed set; a different seed gives a different set of the same shapes.</summary>
    public const int DefaultSeed = 20261130;

    private const string AsciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    private static readonly Lazy<Dictionary<UnicodeCategory, int[]>> s_byCategory = new(IndexCategories);

    /// <summary>Gets the assigned and unassigned code points of each general category (surrogates excluded: not encodable).</summary>
    public static IReadOnlyDictionary<UnicodeCategory, int[]> ByCategory => s_byCategory.Value;

    /// <summary>Generates the set: every shape, for every category, with lengths and samples drawn from <paramref name="seed"/>.</summary>
    public static IReadOnlyList<(string Label, string Text)> Generate(int seed = DefaultSeed)
    {
        var random = new Random(seed);
        var texts = new List<(string, string)>();

        // Every general category: one code point, a run of one code point, a random sequence, spaced, pairs.
        foreach (var (category, points) in ByCategory.OrderBy(p => p.Key))
        {
            for (var s = 0; s < 40; s++)
            {
                var c = Pick(random, points);
                var length = Length(random);
                texts.Add(($"{category}: U+{c:X4}", Str(c)));
                texts.Add(($"{category}: U+{c:X4} x{length}", Repeat(Str(c), length)));
                texts.Add(($"{category}: random x{length}", Sequence(random, points, length, "")));
                texts.Add(($"{category}: spaced x{length}", Sequence(random, points, length, " ")));
                var pair = Str(Pick(random, points)) + Str(Pick(random, points));
                texts.Add(($"{category}: pair x{length}", Repeat(pair, length)));
                texts.Add(($"{category}: after a word x{length}", "word " + Sequence(random, points, length, "") + " word"));
            }
        }

        // Combining marks on a base (Zalgo), with and without spaces between the clusters.
        var marks = ByCategory[UnicodeCategory.NonSpacingMark];
        var enclosing = ByCategory[UnicodeCategory.EnclosingMark];
        var spacing = ByCategory[UnicodeCategory.SpacingCombiningMark];
        string[] bases = ["a", "e", "Z", "o", "\u0905", "\u0627", "\u4E00", "\u3042", "1", "-", " ", "\U0001F600"];
        for (var s = 0; s < 300; s++)
        {
            var b = bases[random.Next(bases.Length)];
            var run = Length(random);
            var source = (s % 3) switch { 0 => marks, 1 => enclosing, _ => spacing };
            texts.Add(($"marks on '{b}' x{run}", b + Sequence(random, source, run, "")));
            var one = Str(Pick(random, marks));
            texts.Add(($"one mark on '{b}' x{run}", b + Repeat(one, run)));
            texts.Add(($"zalgo clusters x{run}", Clusters(random, bases, marks, run)));
        }

        // Joiners, variation selectors, emoji (ZWJ sequences, skin tones, flags, keycaps).
        string[] joiners = ["\u200D", "\u200C", "\u200B", "\u2060", "\uFEFF", "\uFE0F", "\uFE0E", "\u034F", "\u180E", "\u2063"];
        var selectorsSupplement = Enumerable.Range(0xE0100, 240).ToArray();
        var emoji = Enumerable.Range(0x1F300, 0x1F6FF - 0x1F300).Concat(Enumerable.Range(0x1F900, 0x1F9FF - 0x1F900)).ToArray();
        string[] zwjSequences =
        [
            "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466", "\U0001F3F3\uFE0F\u200D\U0001F308",
            "\U0001F9D1\U0001F3FD\u200D\U0001F4BB", "\U0001F469\U0001F3FF\u200D\u2764\uFE0F\u200D\U0001F48B\u200D\U0001F468\U0001F3FB",
            "\u0031\uFE0F\u20E3", "#\uFE0F\u20E3", "\U0001F44D\U0001F3FE", "\u2764\uFE0F\u200D\U0001F525",
        ];
        for (var s = 0; s < 300; s++)
        {
            var run = Length(random);
            var joiner = joiners[random.Next(joiners.Length)];
            texts.Add(($"joiner U+{(int)joiner[0]:X4} x{run}", Repeat(joiner, run)));
            texts.Add(($"letters joined by U+{(int)joiner[0]:X4} x{run}", string.Join(joiner, Enumerable.Range(0, run).Select(_ => (char)('a' + random.Next(26))))));
            texts.Add(($"emoji joined x{run}", string.Join("\u200D", Enumerable.Range(0, run).Select(_ => Str(Pick(random, emoji))))));
            texts.Add(($"emoji with selectors x{run}", string.Concat(Enumerable.Range(0, run).Select(_ => Str(Pick(random, emoji)) + "\uFE0F"))));
            texts.Add(($"supplementary selectors x{run}", "\u845B" + Sequence(random, selectorsSupplement, run, "")));
            texts.Add(($"zwj sequences x{run}", string.Concat(Enumerable.Range(0, run).Select(_ => zwjSequences[random.Next(zwjSequences.Length)]))));
            texts.Add(($"flags x{run}", string.Concat(Enumerable.Range(0, run).Select(_ => Str(0x1F1E6 + random.Next(26)) + Str(0x1F1E6 + random.Next(26))))));
            texts.Add(($"tag sequence x{run}", "\U0001F3F4" + string.Concat(Enumerable.Range(0, run).Select(_ => Str(0xE0061 + random.Next(26)))) + "\U000E007F"));
            texts.Add(($"emoji x{run}", Sequence(random, emoji, run, "")));
        }

        // Box drawing, block elements and whitespace art; rulers; repeated punctuation.
        var box = Enumerable.Range(0x2500, 0x80).Concat(Enumerable.Range(0x2580, 0x20)).ToArray();
        string[] whitespace = [" ", "\t", "\n", "\r\n", "\u00A0", "\u2003", "\u3000", "\u2028", "\u000B", "\u000C", "\u0085", "\u202F"];
        for (var s = 0; s < 300; s++)
        {
            var width = 1 + random.Next(80);
            var lines = 1 + random.Next(20);
            texts.Add(($"box art {width}x{lines}", BoxArt(random, box, whitespace, width, lines)));
            texts.Add(($"box ruler x{width}", Repeat(Str(Pick(random, box)), width)));
            var ws = whitespace[random.Next(whitespace.Length)];
            texts.Add(($"whitespace U+{(int)ws[0]:X4} x{width}", Repeat(ws, width * lines)));
            texts.Add(($"whitespace art {width}x{lines}", string.Concat(Enumerable.Range(0, width * lines).Select(_ => random.Next(3) == 0 ? "*" : whitespace[random.Next(whitespace.Length)]))));
            var p = AsciiPunctuation[random.Next(AsciiPunctuation.Length)];
            var run = Length(random);
            texts.Add(($"ruler '{p}' x{run}", new string(p, run)));
            texts.Add(($"ruler '{p}' x{run} in text", "Title\n" + new string(p, run) + "\nBody text here.\n" + new string(p, run)));
            var q = AsciiPunctuation[random.Next(AsciiPunctuation.Length)];
            texts.Add(($"punctuation pair '{p}{q}' x{run}", Repeat($"{p}{q}", run)));
            texts.Add(($"punctuation spaced '{p}' x{run}", Repeat($"{p} ", run)));
            texts.Add(($"random punctuation x{run}", new string(Enumerable.Range(0, run).Select(_ => AsciiPunctuation[random.Next(AsciiPunctuation.Length)]).ToArray())));
            texts.Add(($"punctuation with newlines x{run}", string.Concat(Enumerable.Range(0, run).Select(_ => $"{AsciiPunctuation[random.Next(AsciiPunctuation.Length)]}\n"))));
            texts.Add(($"letter run '{(char)('a' + s % 26)}' x{run}", new string((char)('a' + s % 26), run)));
            texts.Add(($"digit run x{run}", new string((char)('0' + s % 10), run)));
        }

        // Digits with separators, other digit systems; very long words; blobs; URLs; mixed scripts.
        var decimals = ByCategory[UnicodeCategory.DecimalDigitNumber];
        string[] separators = [",", ".", " ", "'", "_", "\u00A0", "\u202F", ":", "/", "-", "\u066C"];
        var letters = ByCategory[UnicodeCategory.LowercaseLetter].Concat(ByCategory[UnicodeCategory.UppercaseLetter]).Concat(ByCategory[UnicodeCategory.OtherLetter]).ToArray();
        for (var s = 0; s < 400; s++)
        {
            var run = Length(random);
            var separator = separators[random.Next(separators.Length)];
            texts.Add(($"digits separated by '{separator}' x{run}", string.Join(separator, Enumerable.Range(0, run).Select(_ => random.Next(1000).ToString("D3", CultureInfo.InvariantCulture)))));
            texts.Add(($"other digits x{run}", Sequence(random, decimals, run, random.Next(2) == 0 ? "" : separator)));
            texts.Add(($"long ascii word x{run * 4}", RandomAscii(random, run * 4, "abcdefghijklmnopqrstuvwxyz")));
            texts.Add(($"long mixed-case word x{run * 4}", RandomAscii(random, run * 4, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")));
            texts.Add(($"long word of letters x{run}", Sequence(random, letters, run, "")));
            texts.Add(($"base64 x{run * 4}", Convert.ToBase64String(Bytes(random, run * 3))));
            texts.Add(($"hex x{run * 2}", Convert.ToHexString(Bytes(random, run))));
            texts.Add(($"lower hex x{run * 2}", Convert.ToHexStringLower(Bytes(random, run))));
            texts.Add(($"url x{run}", Url(random, run)));
            texts.Add(($"mixed scripts x{run}", MixedScripts(random, run)));
            texts.Add(($"any code points x{run}", Sequence(random, s_allPoints.Value, run, "")));
            texts.Add(($"any code points spaced x{run}", Sequence(random, s_allPoints.Value, run, " ")));
        }

        return texts;
    }

    private static readonly Lazy<int[]> s_allPoints = new(() => [.. ByCategory.Values.SelectMany(p => p)]);

    private static Dictionary<UnicodeCategory, int[]> IndexCategories()
    {
        var lists = new Dictionary<UnicodeCategory, List<int>>();
        for (var c = 0; c <= 0x10FFFF; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF)
            {
                continue;
            }

            var category = CharUnicodeInfo.GetUnicodeCategory(c);
            if (!lists.TryGetValue(category, out var list))
            {
                lists[category] = list = [];
            }

            list.Add(c);
        }

        return lists.ToDictionary(p => p.Key, p => p.Value.ToArray());
    }

    // Mostly short runs, some long ones: 1..8, 1..64, 1..512.
    private static int Length(Random random) => random.Next(3) switch
    {
        0 => 1 + random.Next(8),
        1 => 1 + random.Next(64),
        _ => 1 + random.Next(512),
    };

    private static int Pick(Random random, int[] points) => points[random.Next(points.Length)];

    private static string Str(int codePoint) => char.ConvertFromUtf32(codePoint);

    private static string Repeat(string s, int count) => new StringBuilder(s.Length * count).Insert(0, s, count).ToString();

    private static string Sequence(Random random, int[] points, int length, string separator)
    {
        var builder = new StringBuilder();
        for (var k = 0; k < length; k++)
        {
            if (k > 0)
            {
                builder.Append(separator);
            }

            builder.Append(Str(Pick(random, points)));
        }

        return builder.ToString();
    }

    private static string Clusters(Random random, string[] bases, int[] marks, int count)
    {
        var builder = new StringBuilder();
        for (var k = 0; k < count; k++)
        {
            builder.Append(bases[random.Next(bases.Length)]);
            var n = random.Next(12);
            for (var m = 0; m < n; m++)
            {
                builder.Append(Str(Pick(random, marks)));
            }

            if (random.Next(3) == 0)
            {
                builder.Append(' ');
            }
        }

        return builder.ToString();
    }

    private static string BoxArt(Random random, int[] box, string[] whitespace, int width, int lines)
    {
        var builder = new StringBuilder();
        var horizontal = Str(Pick(random, box));
        for (var line = 0; line < lines; line++)
        {
            builder.Append(Str(Pick(random, box)));
            for (var k = 0; k < width; k++)
            {
                builder.Append(line == 0 || line == lines - 1 ? horizontal : random.Next(4) == 0 ? Str(Pick(random, box)) : whitespace[random.Next(2)]);
            }

            builder.Append(Str(Pick(random, box))).Append('\n');
        }

        return builder.ToString();
    }

    private static string RandomAscii(Random random, int length, string alphabet) =>
        new([.. Enumerable.Range(0, length).Select(_ => alphabet[random.Next(alphabet.Length)])]);

    private static byte[] Bytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static string Url(Random random, int segments)
    {
        var builder = new StringBuilder("https://");
        builder.Append(RandomAscii(random, 3 + random.Next(12), "abcdefghijklmnopqrstuvwxyz0123456789-")).Append(".example.com");
        for (var k = 0; k < segments; k++)
        {
            builder.Append(random.Next(4) switch
            {
                0 => "/" + RandomAscii(random, 1 + random.Next(16), "abcdefghijklmnopqrstuvwxyz0123456789-_."),
                1 => (k == 0 ? "?" : "&") + RandomAscii(random, 1 + random.Next(8), "abcdefghijklmnopqrstuvwxyz") + "=" + RandomAscii(random, 1 + random.Next(24), "ABCDEFabcdef0123456789%"),
                2 => "/%" + RandomAscii(random, 2, "0123456789ABCDEF") + "%" + RandomAscii(random, 2, "0123456789ABCDEF"),
                _ => "/" + Convert.ToBase64String(Bytes(random, 1 + random.Next(24))).Replace('+', '-').Replace('/', '_'),
            });
        }

        return builder.ToString();
    }

    private static string MixedScripts(Random random, int words)
    {
        // Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai, Georgian, Armenian, Ethiopic, CJK, kana, Hangul, Tamil, Cherokee.
        (int Start, int Count)[] scripts =
        [
            (0x61, 26), (0x430, 32), (0x3B1, 25), (0x627, 26), (0x5D0, 27), (0x915, 37), (0xE01, 46), (0x10D0, 33),
            (0x561, 38), (0x1200, 90), (0x4E00, 2000), (0x3041, 86), (0xAC00, 2000), (0xB85, 30), (0x13A0, 80),
        ];
        var builder = new StringBuilder();
        for (var w = 0; w < words; w++)
        {
            var length = 1 + random.Next(10);
            for (var k = 0; k < length; k++)
            {
                var (start, count) = scripts[random.Next(scripts.Length)];
                builder.Append(Str(start + random.Next(count)));
            }

            builder.Append(random.Next(5) == 0 ? ", " : " ");
        }

        return builder.ToString();
    }
}
