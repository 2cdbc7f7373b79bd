using ModelRouting.Logging;

namespace ModelRouting.Tests.Logging;

/// <summary>SPEC §12: client-supplied values are logged escaped and truncated to at most 256 characters.</summary>
public sealed class LogValueTests
{
    [Theory]
    [InlineData("qwen3-8b:sql", "qwen3-8b:sql")]
    [InlineData("org/model", "org/model")]
    [InlineData("日本語モデル", "日本語モデル")]
    [InlineData("emoji 🙂 ok", "emoji 🙂 ok")]
    [InlineData("", "")]
    [InlineData(null, "")]
    public void Sanitize_PrintableValue_Unchanged(string? value, string expected) =>
        Assert.Equal(expected, LogValue.Sanitize(value));

    [Theory]
    [InlineData("a\nb", @"a\u000Ab")]
    [InlineData("a\r\nFAKE LOG LINE", @"a\u000D\u000AFAKE LOG LINE")]
    [InlineData("tab\there", @"tab\u0009here")]
    [InlineData("esc\u001B[31mred", @"esc\u001B[31mred")]
    [InlineData("del\u007F", @"del\u007F")]
    [InlineData("c1\u0085next", @"c1\u0085next")]
    [InlineData("bidi\u202Egnp.exe", @"bidi\u202Egnp.exe")]
    [InlineData("zero\u200Bwidth", @"zero\u200Bwidth")]
    [InlineData("line\u2028sep", @"line\u2028sep")]
    [InlineData("back\\slash", @"back\\slash")]
    public void Sanitize_ControlAndFormatCharacters_Escaped(string value, string expected) =>
        Assert.Equal(expected, LogValue.Sanitize(value));

    [Fact]
    public void Sanitize_UnpairedSurrogate_Escaped()
    {
        Assert.Equal(@"x\uD800y", LogValue.Sanitize("x\uD800y"));
        Assert.Equal(@"x\uDC00", LogValue.Sanitize("x\uDC00"));
    }

    [Fact]
    public void Sanitize_LongValue_TruncatedTo256WithEllipsis()
    {
        var result = LogValue.Sanitize(new string('a', 10_000));

        Assert.Equal(LogValue.MaxLength, result.Length);
        Assert.EndsWith("…", result);
        Assert.Equal(new string('a', 255), result[..255]);
    }

    [Fact]
    public void Sanitize_Exactly256_NotTruncated()
    {
        var value = new string('b', 256);
        Assert.Same(value, LogValue.Sanitize(value));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(250)]
    public void Sanitize_LongEscapedValue_NeverCutsAnEscapeOrAPair(int prefix)
    {
        var value = new string('p', prefix) + string.Concat(Enumerable.Repeat("\n🙂", 200));

        var result = LogValue.Sanitize(value);

        Assert.True(result.Length <= LogValue.MaxLength, result.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.EndsWith("…", result);
        var body = result[..^1];
        Assert.Matches(@"^p*(\\u000A🙂)*(\\u000A)?$", body);
        Assert.DoesNotContain('\n', result);
    }
}
