using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Inspection;
using ModelRouting.Usage;

namespace ModelRouting.Tests.Usage;

/// <summary>SPEC §14: a stream's backend is asked for the usage chunk, whatever shape the client's stream_options had.</summary>
public sealed class StreamUsageRequestTests
{
    [Theory]
    [InlineData("""{"model":"m","stream":true}""", null)]
    [InlineData("""{"stream":true,"model":"m","stream_options":null}""", null)]
    [InlineData("""{"stream":true,"stream_options":{}}""", null)]
    [InlineData("""{"stream":true,"stream_options":{ }}""", null)]
    [InlineData("""{"stream":true,"stream_options":{"continuous_usage_stats":false}}""", "continuous_usage_stats")]
    [InlineData("""{"stream":true,"stream_options":{"include_usage":false,"x":1}}""", "x")]
    [InlineData("""{"stream":true,"stream_options":{"x":[1,{"include_usage":false}],"include_usage":null}}""", "x")]
    [InlineData("""{ "stream" : true , "stream_options" : { "include_usage" : false } } """, null)]
    public void Edit_SetsIncludeUsage_AndKeepsEverythingElse(string json, string? kept)
    {
        var body = Encoding.UTF8.GetBytes(json);
        var parsed = Parse(body);
        Assert.True(StreamUsageRequest.Applies(parsed));

        var edit = StreamUsageRequest.Edit(body, parsed);
        var edited = Apply(body, edit);

        var node = JsonNode.Parse(edited)!.AsObject();
        Assert.True(node["stream_options"]!["include_usage"]!.GetValue<bool>());
        Assert.True(node["stream"]!.GetValue<bool>());
        if (kept is not null)
        {
            Assert.NotNull(node["stream_options"]![kept]);
        }
    }

    [Theory]
    [InlineData("""{"model":"m"}""")]
    [InlineData("""{"model":"m","stream":false}""")]
    [InlineData("""{"stream":true,"stream_options":{"include_usage":true}}""")]
    [InlineData("""{"stream":true,"stream_options":{"include_usage":false},"stream_options":{}}""")]
    [InlineData("""{"stream":true,"stream_options":"yes"}""")]
    [InlineData("""{"stream":true,"stream_options":{"include_usage":false,"include_usage":true}}""")]
    public void Applies_NotToRequestsThatAreNoStream_AskAlready_OrAreAmbiguous(string json)
    {
        Assert.False(StreamUsageRequest.Applies(Parse(Encoding.UTF8.GetBytes(json))));
    }

    [Fact]
    public void ForwardedBody_WithModelAndUsageEdits_InEitherOrder_IsTheSpliceOfBoth()
    {
        var body = Encoding.UTF8.GetBytes("""{"stream":true,"model":"alias","messages":[]}""");
        var parsed = Parse(body);
        var usage = StreamUsageRequest.Edit(body, parsed);
        var model = new BodyEdit(parsed.ModelTokenStart, parsed.ModelTokenEnd, Encoding.UTF8.GetBytes("\"Upstream/Model\""));
        foreach (var (first, second) in new[] { (model, usage), (usage, model) })
        {
            using var pooled = Pooled(body);
            using var stream = new ForwardedBodyStream(pooled, first, second);
            var read = new byte[stream.Length];
            var n = 0;
            while (n < read.Length)
            {
                n += stream.Read(read, n, Math.Min(3, read.Length - n)); // small reads cross every segment boundary
            }

            var node = JsonNode.Parse(read)!.AsObject();
            Assert.Equal("Upstream/Model", node["model"]!.GetValue<string>());
            Assert.True(node["stream_options"]!["include_usage"]!.GetValue<bool>());
            Assert.Equal(0, stream.Read(new byte[1], 0, 1));
        }
    }

    private static ParsedRequest Parse(byte[] body)
    {
        using var text = new PromptText();
        return OpenAIRequestParser.Parse(body, new HeuristicTokenCounter(), 85, text);
    }

    private static byte[] Apply(byte[] body, BodyEdit edit) =>
        [.. body.AsSpan(0, edit.Start), .. edit.Insert!, .. body.AsSpan(edit.End)];

    private static PooledBody Pooled(byte[] body)
    {
        var buffer = RequestBodyReader.BodyBufferPool.Rent(body.Length);
        body.CopyTo(buffer, 0);
        return new PooledBody(buffer, body.Length);
    }
}
