using System.Text;
using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

/// <summary>
/// The field rules alone: what one value under a prompt-carrying field costs, counted with a counter of one token per
/// two bytes (roles and schema property names are text too: "user" is 2, "parameters" 5).
/// </summary>
public sealed class OpenAIFieldRulesTests
{
    [Theory]
    [InlineData("""[{"role":"user","content":"abcd"}]""", "Content", true, 4, OpenAIFieldRules.TokensPerMessage)]
    [InlineData("""[{"role":"user","name":"ab","content":"abcd"}]""", "Content", true, 5, OpenAIFieldRules.TokensPerMessage + OpenAIFieldRules.TokensPerName)]
    [InlineData("""[{"type":"image_url","image_url":{"url":"data:AAAA"}}]""", "Content", true, 0, OpenAIFieldRules.TokensPerMessage + 100)]
    [InlineData("""[[1,2,3],[4]]""", "Content", true, 0, 4)]
    [InlineData("""{"name":"f","parameters":{}}""", "Schema", false, 8, 0)]
    [InlineData("""{"anything":"here"}""", "Skip", false, 0, 0)]
    public void Value_Table_CountsTextAndFixedTokens(string json, string modeName, bool rootArray, long text, long fixedTokens)
    {
        var body = Encoding.UTF8.GetBytes(json);
        using var ranges = new PromptText();
        var state = new PromptCountState(OneTokenPerTwoBytes.Instance, 100, ranges, null);
        try
        {
            var end = OpenAIFieldRules.Value(body, 0, 1, Enum.Parse<OpenAIFieldRules.Mode>(modeName), rootArray, ref state);

            Assert.Equal(body.Length, end);
            Assert.Equal(text, state.Text);
            Assert.Equal(fixedTokens, state.Fixed);
        }
        finally
        {
            state.ReturnScratch();
        }
    }

    [Fact]
    public void Value_NestedPastMaxDepth_Fails()
    {
        var body = Encoding.UTF8.GetBytes(new string('[', JsonScanner.MaxDepth + 1) + new string(']', JsonScanner.MaxDepth + 1));
        var state = default(PromptCountState);

        Assert.Equal(JsonScanner.Fail, OpenAIFieldRules.Value(body, 0, 1, OpenAIFieldRules.Mode.Skip, false, ref state));
    }

    private sealed class OneTokenPerTwoBytes : ITokenCounter
    {
        public static OneTokenPerTwoBytes Instance { get; } = new();

        public bool IsExact => false;

        public int CountTokens(ReadOnlySpan<byte> utf8Text) => (utf8Text.Length + 1) / 2;
    }
}
