using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

/// <summary>The <c>/tokenize</c> request Backend mode builds from a client's body, and how it reads the answer.</summary>
public sealed class TokenizeRequestTests
{
    private static string? Build(string body, string upstream = "up/model") =>
        BackendPromptCounter.TokenizeRequestBody(Encoding.UTF8.GetBytes(body), upstream) is { } bytes ? Encoding.UTF8.GetString(bytes) : null;

    [Fact]
    public void Chat_MessagesVerbatim_TemplateMembersCopied_OthersDropped()
    {
        const string messages = """[ {"role":"system","content":"Be brief.\u00e9"}, {"role":"user","content":"hi","name":"a"} ]""";
        var body = $$$"""{"model":"alias","temperature":0.5,"messages":{{{messages}}},"add_generation_prompt":false,"stream":true,"chat_template_kwargs":{"enable_thinking":true}}""";

        Assert.Equal($$$"""{"model":"up/model","messages":{{{messages}}},"add_generation_prompt":false,"chat_template_kwargs":{"enable_thinking":true}}""", Build(body));
    }

    [Fact]
    public void Chat_ToolCallsAreText_ContentPartsOfTextToo()
    {
        const string body = """{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]}]}""";

        Assert.NotNull(Build(body));
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/a.png"}}]}]}""")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}""")]
    [InlineData("""{"messages":"not an array"}""")]
    [InlineData("""{"prompt":["two","prompts"]}""")]
    [InlineData("""{"prompt":[1,2,3]}""")]
    [InlineData("""{"input":"an embedding or a Responses input"}""")]
    [InlineData("""{"model":"m"}""")]
    public void ShapesWithoutATokenizeRequest_ReturnNull(string body) => Assert.Null(Build(body));

    [Fact]
    public void Completion_PromptAndAddSpecialTokensOnly()
    {
        Assert.Equal("""{"model":"up/model","prompt":"Once","add_special_tokens":false}""",
            Build("""{"model":"m","prompt":"Once","max_tokens":5,"add_special_tokens":false,"tools":[]}"""));
    }

    [Fact]
    public void DuplicatedMember_TheLastIsSent_AsTheEngineReadsIt()
    {
        var sent = JsonNode.Parse(Build("""{"messages":[{"role":"user","content":"first"}],"messages":[{"role":"user","content":"second"}]}""")!)!;

        Assert.Equal("second", sent["messages"]![0]!["content"]!.GetValue<string>());
    }

    [Fact]
    public void UpstreamModel_IsEscaped()
    {
        var sent = JsonNode.Parse(Build("""{"prompt":"x"}""", "we\"ird\\model")!)!;

        Assert.Equal("we\"ird\\model", sent["model"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"count":12,"max_model_len":4096,"tokens":[1,2,3,4,5,6,7,8,9,10,11,12]}""", 12L)]
    [InlineData("""{"tokens":[1],"max_model_len":4096,"count":1}""", 1L)]
    [InlineData("""{"count":-1}""", null)]
    [InlineData("""{"count":"12"}""", null)]
    [InlineData("""{"count":1.5}""", null)]
    [InlineData("""{"tokens":[1,2]}""", null)]
    [InlineData("""[12]""", null)]
    [InlineData("""not json""", null)]
    [InlineData("", null)]
    public void ReadCount_OnlyANonNegativeIntegerCount(string answer, long? expected) =>
        Assert.Equal(expected, BackendPromptCounter.ReadCount(Encoding.UTF8.GetBytes(answer)));
}
