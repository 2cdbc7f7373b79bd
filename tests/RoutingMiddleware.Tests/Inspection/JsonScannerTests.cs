using System.Text;
using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

/// <summary>The lexer alone: each scan returns the index after what it read, or Fail.</summary>
public sealed class JsonScannerTests
{
    [Theory]
    [InlineData("\"plain\"", 6, false)]
    [InlineData("\"a\\\"b\"", 5, true)]
    [InlineData("\"caf\\u00e9\"", 10, true)]
    [InlineData("\"\\ud83d\\ude00\"", 13, true)]
    [InlineData("\"\\ud83d\"", JsonScanner.Fail, true)]
    [InlineData("\"\\ude00\"", JsonScanner.Fail, true)]
    [InlineData("\"tab\there\"", JsonScanner.Fail, false)]
    [InlineData("\"\\x\"", JsonScanner.Fail, true)]
    [InlineData("\"unterminated", JsonScanner.Fail, false)]
    public void ScanString_Table_ReturnsClosingQuoteOrFail(string json, int expected, bool escapedIfValid)
    {
        var end = JsonScanner.ScanString(Encoding.UTF8.GetBytes(json), 1, out var escaped);

        Assert.Equal(expected, end);
        if (end != JsonScanner.Fail)
        {
            Assert.Equal(escapedIfValid, escaped);
        }
    }

    [Theory]
    [InlineData("0", 1)]
    [InlineData("-12.5e+3,", 8)]
    [InlineData("01", 1)]
    [InlineData("1.", JsonScanner.Fail)]
    [InlineData("-", JsonScanner.Fail)]
    [InlineData("1e", JsonScanner.Fail)]
    public void ScanNumber_Table_ReturnsEndOrFail(string json, int expected) =>
        Assert.Equal(expected, JsonScanner.ScanNumber(Encoding.UTF8.GetBytes(json), 0));

    [Theory]
    [InlineData("a\\nb", "a\nb")]
    [InlineData("caf\\u00e9", "café")]
    [InlineData("\\ud83d\\ude00!", "😀!")]
    [InlineData("\\\"\\\\\\/", "\"\\/")]
    public void Unescape_Table_DecodesToUtf8(string raw, string expected)
    {
        var destination = new byte[64];

        var written = JsonScanner.Unescape(Encoding.UTF8.GetBytes(raw), destination);

        Assert.Equal(expected, Encoding.UTF8.GetString(destination, 0, written));
    }

    [Fact]
    public void ExpectColon_SkipsWhitespaceAroundIt() =>
        Assert.Equal(5, JsonScanner.ExpectColon(" \t: \n1"u8, 0));
}
