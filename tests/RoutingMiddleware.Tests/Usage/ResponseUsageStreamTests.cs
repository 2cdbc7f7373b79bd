using System.Text;
using Microsoft.AspNetCore.Http;
using ModelRouting.Usage;

namespace ModelRouting.Tests.Usage;

/// <summary>SPEC §14/§15: the response tap reads usage and first-token time and strips the usage chunk only when asked.</summary>
public sealed class ResponseUsageStreamTests
{
    private const string Json = """{"id":"x","choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 999}"}}],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,"prompt_tokens_details":{"cached_tokens":5}}}""";

    private const string Events =
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
        + "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}],\"usage\":null}\r\n\r\n"
        + ": a comment\n\n"
        + "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n"
        + "data: [DONE]\n\n";

    private const string EventsWithoutUsageChunk =
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
        + "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}],\"usage\":null}\r\n\r\n"
        + ": a comment\n\n"
        + "data: [DONE]\n\n";

    public static TheoryData<int> SplitPoints()
    {
        var data = new TheoryData<int>();
        for (var i = 1; i < Events.Length; i += 3)
        {
            data.Add(i);
        }

        return data;
    }

    [Fact]
    public async Task Json_UsageIsRead_AtEverySplitOfTheBody()
    {
        var bytes = Encoding.UTF8.GetBytes(Json);
        for (var split = 1; split < bytes.Length; split++)
        {
            var (request, written) = await WriteAsync("application/json", strip: false, bytes[..split], bytes[split..]);
            Assert.True(request.HasUsage, $"split at {split}");
            Assert.Equal((12, 34), (request.PromptTokens, request.CompletionTokens));
            Assert.Equal(bytes, written);
            Assert.NotEqual(0, request.FirstByte);
        }
    }

    [Fact]
    public async Task Json_AUsageNameThatIsNoUsageObject_IsSkipped_TheLaterOneRead_AtEverySplit()
    {
        var bytes = """{"meta":{"usage":null},"tag":"usage","usage":{"prompt_tokens":5,"completion_tokens":6}}"""u8.ToArray();
        for (var split = 1; split < bytes.Length; split++)
        {
            var (request, written) = await WriteAsync("application/json", strip: false, bytes[..split], bytes[split..]);
            Assert.True(request.HasUsage, $"split at {split}");
            Assert.Equal((5, 6), (request.PromptTokens, request.CompletionTokens));
            Assert.Equal(bytes, written);
        }
    }

    [Fact]
    public async Task Json_WithoutUsage_KeepsNone()
    {
        var (request, _) = await WriteAsync("application/json; charset=utf-8", strip: false, """{"choices":[],"usage":null,"x":"usage"}"""u8.ToArray());
        Assert.False(request.HasUsage);
    }

    [Theory]
    [MemberData(nameof(SplitPoints))]
    public async Task EventStream_Stripped_AtAnySplit_LosesOnlyTheUsageChunk(int split)
    {
        var bytes = Encoding.UTF8.GetBytes(Events);
        var (request, written) = await WriteAsync("text/event-stream", strip: true, bytes[..split], bytes[split..]);
        Assert.Equal(EventsWithoutUsageChunk, Encoding.UTF8.GetString(written));
        Assert.True(request.HasUsage);
        Assert.Equal((7, 2), (request.PromptTokens, request.CompletionTokens));
        Assert.Equal(2, request.StreamedEvents);
        Assert.NotEqual(0, request.FirstToken);
    }

    [Theory]
    [MemberData(nameof(SplitPoints))]
    public async Task EventStream_ClientAsked_PassesEveryByte(int split)
    {
        var bytes = Encoding.UTF8.GetBytes(Events);
        var (request, written) = await WriteAsync("text/event-stream", strip: false, bytes[..split], bytes[split..]);
        Assert.Equal(Events, Encoding.UTF8.GetString(written));
        Assert.Equal((7, 2), (request.PromptTokens, request.CompletionTokens));
    }

    [Fact]
    public async Task EventStream_ByteByByte_StillStripsAndReads()
    {
        var bytes = Encoding.UTF8.GetBytes(Events);
        var (request, written) = await WriteAsync("text/event-stream", strip: true, [.. bytes.Select(b => new[] { b })]);
        Assert.Equal(EventsWithoutUsageChunk, Encoding.UTF8.GetString(written));
        Assert.True(request.HasUsage);
    }

    [Fact]
    public async Task OtherContent_PassesUnread()
    {
        var (request, written) = await WriteAsync("audio/mpeg", strip: true, """{"usage":{"prompt_tokens":1}}"""u8.ToArray());
        Assert.False(request.HasUsage);
        Assert.Equal("""{"usage":{"prompt_tokens":1}}""", Encoding.UTF8.GetString(written));
    }

    private static async Task<(GatewayRequest Request, byte[] Written)> WriteAsync(string contentType, bool strip, params byte[][] writes)
    {
        var context = new DefaultHttpContext();
        context.Response.ContentType = contentType;
        var request = new GatewayRequest { StripUsageChunk = strip };
        using var sink = new MemoryStream();
        var tap = new ResponseUsageStream(sink, context.Response, request);
        foreach (var write in writes)
        {
            await tap.WriteAsync(write);
        }

        tap.Release();
        return (request, sink.ToArray());
    }
}
