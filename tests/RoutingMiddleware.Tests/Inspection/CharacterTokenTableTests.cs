using Microsoft.ML.Tokenizers;
using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

/// <summary>
/// The heuristic's data tables are o200k_base facts, regenerated here from Microsoft.ML.Tokenizers: a table that
/// drifted from the encoding fails the build rather than quietly skewing the estimate.
/// </summary>
public sealed class CharacterTokenTableTests
{
    private static readonly Lazy<Tokenizer> s_o200k = new(() => TiktokenTokenizer.CreateForEncoding("o200k_base"));

    private const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    [Fact]
    public void TokensAlone_EveryCodePointBelowLimit_EqualsO200k()
    {
        var counts = new byte[CharacterTokenTable.Limit];
        for (var c = 0; c < CharacterTokenTable.Limit; c++)
        {
            counts[c] = c is >= 0xD800 and <= 0xDFFF ? (byte)3 : (byte)Math.Min(4, s_o200k.Value.CountTokens(char.ConvertFromUtf32(c)));
        }

        var expected = CharacterTokenTable.Pack(counts);
        if (!expected.AsSpan().SequenceEqual(CharacterTokenTable.O200k.Packed))
        {
            var path = Path.Combine(Path.GetTempPath(), "o200k-character-tokens.bin");
            File.WriteAllBytes(path, expected);
            Assert.Fail($"src/RoutingMiddleware/Inspection/o200k-character-tokens.bin differs from o200k_base; the regenerated table is at {path}.");
        }
    }

    [Theory]
    [InlineData(0x41, 1)]
    [InlineData(0x4E2D, 1)]
    [InlineData(0xE000, 2)]
    [InlineData(0x0301, 1)]
    [InlineData(0x2FFFE, 4)]
    [InlineData(0x10FFFD, 4)]
    public void TokensAlone_Samples_MatchO200k(int codePoint, int expected)
    {
        Assert.Equal(expected, CharacterTokenTable.O200k.TokensAlone(codePoint));
        Assert.Equal(expected, Math.Min(4, s_o200k.Value.CountTokens(char.ConvertFromUtf32(codePoint))));
    }

    [Fact]
    public void AsciiRunLengths_EqualO200kLongRuns()
    {
        const int Run = 480;
        for (var b = 0; b < 128; b++)
        {
            var tokens = s_o200k.Value.CountTokens(new string((char)b, Run));
            Assert.True(Math.Round((double)Run / tokens) == HeuristicTokenCounter.AsciiRunLengths[b], $"byte 0x{b:X2}: {Run} repeated are {tokens} tokens");
        }
    }

    [Fact]
    public void PunctuationPairs_EqualO200kTwoMarkTokens()
    {
        for (var a = 0; a < Punctuation.Length; a++)
        {
            Assert.Equal(a, HeuristicTokenCounter.PunctuationIndex((byte)Punctuation[a]));
            for (var b = 0; b < Punctuation.Length; b++)
            {
                var isToken = s_o200k.Value.CountTokens(string.Concat(Punctuation[a], Punctuation[b])) == 1;
                Assert.True(isToken == ((HeuristicTokenCounter.PunctuationPairs[a] & (1u << b)) != 0), $"'{Punctuation[a]}{Punctuation[b]}'");
            }
        }
    }

    [Fact]
    public void Trigrams_EveryThreeLetters_EqualO200k()
    {
        var expected = new byte[1 << 12];
        for (var a = 0; a <= 26; a++)
        {
            for (var b = 0; b <= 26; b++)
            {
                for (var c = 1; c <= 26; c++)
                {
                    // A leading 0 is a word's first or second letter: always a token.
                    var text = new string([(char)('a' + a - 1), (char)('a' + b - 1), (char)('a' + c - 1)]);
                    if (a == 0 || b == 0 || s_o200k.Value.CountTokens(text) == 1 || s_o200k.Value.CountTokens(" " + text) == 1)
                    {
                        var packed = (a << 10) | (b << 5) | c;
                        expected[packed >> 3] |= (byte)(1 << (packed & 7));
                    }
                }
            }
        }

        if (!expected.AsSpan().SequenceEqual(CharacterTokenTable.O200k.Trigrams))
        {
            var path = Path.Combine(Path.GetTempPath(), "o200k-trigrams.bin");
            File.WriteAllBytes(path, expected);
            Assert.Fail($"src/RoutingMiddleware/Inspection/o200k-trigrams.bin differs from o200k_base; the regenerated table is at {path}.");
        }
    }

    [Theory]
    [InlineData("the", true)]
    [InlineData("ing", true)]
    [InlineData("qxz", false)]
    public void IsTrigramToken_Samples(string letters, bool expected) =>
        Assert.Equal(expected, CharacterTokenTable.O200k.IsTrigramToken(((letters[0] & 0x1F) << 10) | ((letters[1] & 0x1F) << 5) | (letters[2] & 0x1F)));
}
