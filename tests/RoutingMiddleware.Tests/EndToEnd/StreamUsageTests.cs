using System.Net;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>
/// SPEC §14: a stream's usage comes from the backend's final usage chunk; the gateway asks for it upstream and
/// gives it to the client only when the client asked.
/// </summary>
public sealed class StreamUsageTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Stream_BackendIsAskedForUsage_ClientSeesItOnlyIfItAsked(bool clientAsks)
    {
        await using var backend = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true)]));

        var body = new JsonObject
        {
            ["model"] = "m",
            ["stream"] = true,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello" }),
        };
        if (clientAsks)
        {
            body["stream_options"] = new JsonObject { ["include_usage"] = true };
        }

        using var request = StreamingPost("/v1/chat/completions", body.ToJsonString());
        using var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Prompt);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var stream = await response.Content.ReadAsStreamAsync();
        using var reader = new SseReader(stream);
        var events = await reader.ReadAllAsync().WaitAsync(Prompt);

        Assert.Equal("[DONE]", events[^1]);
        var usageChunks = events.Where(e => e != "[DONE]" && JsonNode.Parse(e)?["usage"] is JsonObject).ToList();
        Assert.Equal(clientAsks ? 1 : 0, usageChunks.Count);
        if (!clientAsks)
        {
            Assert.All(events.Where(e => e != "[DONE]"), e => Assert.NotEmpty(JsonNode.Parse(e)!["choices"]!.AsArray()));
        }

        var seen = JsonNode.Parse(Assert.Single(backend.Requests).Body)!;
        Assert.True(seen["stream_options"]!["include_usage"]!.GetValue<bool>());
    }
}
