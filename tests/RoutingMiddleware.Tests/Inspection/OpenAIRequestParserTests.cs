using System.Text;
using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

public sealed class OpenAIRequestParserTests
{
    private const int Media = 1000;
    private const int Msg = OpenAIRequestParser.TokensPerMessage;
    private const int Priming = OpenAIRequestParser.ReplyPrimingTokens;

    /// <summary>Counts one token per UTF-8 byte, so a test sees exactly which text was counted.</summary>
    private sealed class ByteCounter : ITokenCounter
    {
        public bool IsExact => true;

        public List<string> Seen { get; } = [];

        public int CountTokens(ReadOnlySpan<byte> utf8Text)
        {
            Seen.Add(Encoding.UTF8.GetString(utf8Text));
            return utf8Text.Length;
        }
    }

    private static (ParsedRequest Parsed, ByteCounter Counter, byte[] Body) Parse(string json)
    {
        var body = Encoding.UTF8.GetBytes(json);
        var counter = new ByteCounter();
        using var text = new PromptText();
        var parsed = OpenAIRequestParser.Parse(body, counter, Media, text);
        return (parsed, counter, body);
    }

    [Fact]
    public void Parse_ChatStringContent_CountsTextAndOverheads()
    {
        var (parsed, counter, _) = Parse("""{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}]}""");

        Assert.Equal(BodyError.None, parsed.Error);
        Assert.Equal(["system", "be brief", "user", "hello"], counter.Seen);
        Assert.Equal(6 + 8 + 4 + 5, parsed.TextTokens);
        Assert.Equal(2 * Msg + Priming, parsed.FixedTokens);
    }

    [Fact]
    public void Parse_ContentParts_CountsTextAndFixedCostForMedia()
    {
        var (parsed, counter, _) = Parse("""
            {"messages":[{"role":"user","content":[
              {"type":"text","text":"what is this"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","detail":"high"}},
              {"type":"input_audio","input_audio":{"data":"UklGRiQAAABXQVZF","format":"wav"}},
              {"type":"file","file":{"file_id":"file-123"}}]}]}
            """);

        Assert.Equal(["user", "what is this"], counter.Seen);
        Assert.Equal(Msg + Priming + 3 * Media, parsed.FixedTokens);
    }

    [Fact]
    public void Parse_NameAndToolCalls_AreCounted()
    {
        var (parsed, counter, _) = Parse("""
            {"messages":[
              {"role":"user","name":"ana","content":"weather?"},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"sunny"}]}
            """);

        Assert.Contains("ana", counter.Seen);
        Assert.Contains("get_weather", counter.Seen);
        Assert.Contains("{\"city\":\"Paris\"}", counter.Seen);
        Assert.Contains("sunny", counter.Seen);
        Assert.DoesNotContain("function", counter.Seen);
        Assert.Equal(3 * Msg + Priming + 2 * OpenAIRequestParser.TokensPerName, parsed.FixedTokens);
    }

    [Fact]
    public void Parse_ToolsDefinitions_CountKeysAndValues()
    {
        var (parsed, counter, _) = Parse("""
            {"model":"m","tools":[{"type":"function","function":{"name":"lookup","description":"Find a row","parameters":{"type":"object","properties":{"id":{"type":"integer"}}}}}],"messages":[]}
            """);

        Assert.Contains("lookup", counter.Seen);
        Assert.Contains("Find a row", counter.Seen);
        Assert.Contains("properties", counter.Seen);
        Assert.Contains("integer", counter.Seen);
        Assert.True(parsed.TextTokens > 40);
    }

    [Theory]
    [InlineData("""{"prompt":"hello world"}""", 11, 0)]
    [InlineData("""{"prompt":["ab","cde"]}""", 5, 0)]
    [InlineData("""{"prompt":[1,2,3,4]}""", 0, 4)]
    [InlineData("""{"prompt":[[1,2],[3,4,5]]}""", 0, 5)]
    [InlineData("""{"input":"embed me"}""", 8, 0)]
    [InlineData("""{"input":["a","bb"]}""", 3, 0)]
    [InlineData("""{"input":[[101,102,103]]}""", 0, 3)]
    [InlineData("""{"instructions":"be terse","input":"hi"}""", 10, 0)]
    public void Parse_PromptAndInputShapes_CountTextAndTokenIds(string json, int text, int fixedTokens)
    {
        var (parsed, _, _) = Parse(json);

        Assert.Equal(BodyError.None, parsed.Error);
        Assert.Equal(text, parsed.TextTokens);
        Assert.Equal(fixedTokens, parsed.FixedTokens);
    }

    [Fact]
    public void Parse_ResponsesItemArray_CountsEachItem()
    {
        var (parsed, counter, _) = Parse("""
            {"model":"m","instructions":"sys","input":[{"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"https://x/y.png"}]},{"type":"function_call_output","call_id":"c","output":"42"}]}
            """);

        Assert.Contains("hi", counter.Seen);
        Assert.Contains("42", counter.Seen);
        Assert.DoesNotContain("https://x/y.png", counter.Seen);
        Assert.Equal(2 * Msg + Media, parsed.FixedTokens);
    }

    [Fact]
    public void Parse_Escapes_CountAsTheTextTheyStandFor()
    {
        var (parsed, counter, _) = Parse("""{"prompt":"a\nb\u00e9\ud83d\ude00\"q\""}""");

        Assert.Equal("a\nbé😀\"q\"", Assert.Single(counter.Seen));
        Assert.Equal(Encoding.UTF8.GetByteCount("a\nbé😀\"q\""), parsed.TextTokens);
    }

    [Fact]
    public void Parse_Model_RecordsExactTokenRange()
    {
        const string json = """{ "temperature" : 1.5e0, "model" : "my\/model" , "x":1}""";
        var (parsed, _, body) = Parse(json);

        Assert.True(parsed.ModelIsString);
        Assert.True(parsed.ModelIsEscaped);
        Assert.Equal("\"my\\/model\"", Encoding.UTF8.GetString(body[parsed.ModelTokenStart..parsed.ModelTokenEnd]));
        var name = new char[64];
        var written = OpenAIRequestParser.GetModelName(body, parsed, name);
        Assert.Equal("my/model", new string(name, 0, written));
    }

    [Fact]
    public void Parse_ModelNull_IsNotNamedButHasRange()
    {
        var (parsed, _, body) = Parse("""{"model":null,"prompt":"x"}""");

        Assert.False(parsed.ModelIsString);
        Assert.True(parsed.HasModelToken);
        Assert.Equal("null", Encoding.UTF8.GetString(body[parsed.ModelTokenStart..parsed.ModelTokenEnd]));
    }

    [Fact]
    public void Parse_NoModel_ReportsObjectStartAndEmptiness()
    {
        var (parsed, _, _) = Parse("  {}  ");
        Assert.False(parsed.HasModelToken);
        Assert.Equal(2, parsed.ObjectStart);
        Assert.True(parsed.IsEmptyObject);
    }

    [Theory]
    [InlineData("""{"max_tokens":100}""", 100)]
    [InlineData("""{"max_completion_tokens":200}""", 200)]
    [InlineData("""{"max_output_tokens":300}""", 300)]
    [InlineData("""{"max_tokens":100,"max_completion_tokens":250}""", 250)]
    [InlineData("""{"max_tokens":null}""", 0)]
    [InlineData("""{"max_tokens":-5}""", 0)]
    [InlineData("""{"max_tokens":"12"}""", 0)]
    [InlineData("""{"messages":[{"role":"user","content":"x","max_tokens":99}]}""", 0)]
    public void Parse_OutputTokenFields_TakesLargestTopLevel(string json, long expected)
    {
        Assert.Equal(expected, Parse(json).Parsed.OutputTokens);
    }

    [Theory]
    [InlineData("""{"model":"a","model":"b"}""", nameof(BodyError.DuplicateModel))]
    [InlineData("""{"model":"a","mod\u0065l":"b"}""", nameof(BodyError.DuplicateModel))]
    [InlineData("""{"model":42}""", nameof(BodyError.ModelNotString))]
    [InlineData("""{"model":["a"]}""", nameof(BodyError.ModelNotString))]
    [InlineData("""[{"model":"a"}]""", nameof(BodyError.NotAnObject))]
    [InlineData("\"text\"", nameof(BodyError.NotAnObject))]
    [InlineData("", nameof(BodyError.InvalidJson))]
    [InlineData("""{"model":"a",}""", nameof(BodyError.InvalidJson))]
    [InlineData("""{"model":"a"} trailing""", nameof(BodyError.InvalidJson))]
    [InlineData("""{"model":"a" """, nameof(BodyError.InvalidJson))]
    [InlineData("""{"messages":[{"content":"x"]}""", nameof(BodyError.InvalidJson))]
    public void Parse_BadBodies_ReportTheError(string json, string expected)
    {
        Assert.Equal(Enum.Parse<BodyError>(expected), Parse(json).Parsed.Error);
    }

    [Fact]
    public void Parse_NestedModelKeys_AreNotTheModel()
    {
        var (parsed, _, _) = Parse("""{"metadata":{"model":"inner"},"messages":[{"role":"user","content":"x","model":"y"}],"model":"outer"}""");

        Assert.Equal(BodyError.None, parsed.Error);
        Assert.True(parsed.ModelIsString);
    }

    [Fact]
    public void Parse_RecordsRangesForExactRecount()
    {
        var body = Encoding.UTF8.GetBytes("""{"messages":[{"role":"user","content":"caf\u00e9"}]}""");
        using var text = new PromptText();
        OpenAIRequestParser.Parse(body, new ByteCounter(), Media, text);

        Assert.Equal(2, text.Count);
        var escaped = text.Ranges[1];
        Assert.True(escaped.IsEscaped);
        Assert.Equal("caf\\u00e9", Encoding.UTF8.GetString(body, escaped.Start, escaped.Length));
    }
}
