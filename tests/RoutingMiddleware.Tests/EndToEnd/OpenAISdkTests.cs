using System.ClientModel;
using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>SPEC §1: the official OpenAI .NET SDK, pointed at the gateway, works unchanged.</summary>
public sealed class OpenAISdkTests
{
    private static OpenAIClient Sdk(TestGateway gateway) =>
        new(new ApiKeyCredential("test"), new OpenAIClientOptions { Endpoint = new Uri(gateway.BaseAddress, "/v1"), NetworkTimeout = TimeSpan.FromSeconds(30) });

    // The README's demo: the host with --demo puts an embedded OpenAI-compatible backend behind every destination.
    private static Task<TestGateway> StartDemoAsync() => TestGateway.StartAsync(
        new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["openai"] = new JsonObject { ["ClusterId"] = "qwen-pool", ["Match"] = new JsonObject { ["Path"] = "/v1/{**catch-all}" } },
                },
                ["Clusters"] = new JsonObject
                {
                    ["qwen-pool"] = new JsonObject
                    {
                        ["Destinations"] = new JsonObject
                        {
                            ["vllm-a"] = new JsonObject { ["Address"] = "http://127.0.0.1:9/" },
                            ["vllm-b"] = new JsonObject { ["Address"] = "http://127.0.0.1:9/" },
                        },
                    },
                    ["long-context"] = new JsonObject
                    {
                        ["Destinations"] = new JsonObject { ["vllm-long"] = new JsonObject { ["Address"] = "http://127.0.0.1:9/" } },
                    },
                },
            },
            ["ModelRouting"] = new JsonObject
            {
                ["Endpoints"] = JsonNode.Parse("""
                    [
                      { "Id": "qwen3-8b", "BaseModel": "Qwen/Qwen3-8B", "Cluster": "qwen-pool", "MaxContextLength": 32768, "IsDefault": true, "Aliases": [ "gpt-4o-mini" ] },
                      { "Id": "qwen3-8b:sql", "BaseModel": "Qwen/Qwen3-8B", "Adapter": "sql-lora", "Cluster": "qwen-pool", "MaxContextLength": 32768, "Description": "SQL adapter" },
                      { "Id": "qwen3-8b-128k", "BaseModel": "Qwen/Qwen3-8B", "UpstreamModel": "qwen3-8b-yarn", "Cluster": "long-context", "MaxContextLength": 131072, "Aliases": [ "long" ] },
                      { "Id": "org/model", "BaseModel": "org/model", "Cluster": "long-context", "MaxContextLength": 8192 }
                    ]
                    """),
            },
        },
        "--demo");

    [Fact]
    public async Task Demo_ListModels()
    {
        await using var gateway = await StartDemoAsync();
        var models = Sdk(gateway).GetOpenAIModelClient();

        OpenAIModelCollection list = await models.GetModelsAsync();

        Assert.Equal(["org/model", "qwen3-8b", "qwen3-8b-128k", "qwen3-8b:sql"], list.Select(m => m.Id).Order(StringComparer.Ordinal));
        Assert.All(list, m => Assert.True(m.CreatedAt > DateTimeOffset.UnixEpoch, $"{m.Id}: created {m.CreatedAt}"));
        Assert.All(list, m => Assert.False(string.IsNullOrEmpty(m.OwnedBy), $"{m.Id}: owned_by is empty"));
    }

    [Theory]
    [InlineData("qwen3-8b:sql", "qwen3-8b:sql")]
    [InlineData("org/model", "org/model")]
    [InlineData("gpt-4o-mini", "qwen3-8b")] // an alias resolves to its endpoint
    public async Task Demo_RetrieveModel(string requested, string expectedId)
    {
        await using var gateway = await StartDemoAsync();
        var models = Sdk(gateway).GetOpenAIModelClient();

        OpenAIModel model = await models.GetModelAsync(requested);

        Assert.Equal(expectedId, model.Id);
        Assert.True(model.CreatedAt > DateTimeOffset.UnixEpoch);
    }

    [Fact]
    public async Task Demo_ChatCompletion_ReachesBackendWithUpstreamModel()
    {
        await using var gateway = await StartDemoAsync();
        var chat = Sdk(gateway).GetChatClient("qwen3-8b:sql");

        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("list the tables")]);

        // The demo backend echoes the model it was asked for: the adapter endpoint's upstream model.
        var text = Assert.Single(completion.Content).Text;
        Assert.Contains("You asked model 'sql-lora'", text);
        Assert.Contains("list the tables", text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
    }

    [Fact]
    public async Task Demo_StreamingChat_SdkReassemblesText()
    {
        await using var gateway = await StartDemoAsync();
        var chat = Sdk(gateway).GetChatClient("long");

        var text = new StringBuilder();
        var updates = 0;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream please")]))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            finish ??= update.FinishReason;
        }

        Assert.True(updates > 2, $"expected several chunks, got {updates}");
        Assert.StartsWith("Hello from demo backend long-context/vllm-long.", text.ToString());
        Assert.Contains("You asked model 'qwen3-8b-yarn'", text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
    }

    [Fact]
    public async Task Demo_UnknownModel_IsNotFound()
    {
        await using var gateway = await StartDemoAsync();
        var client = Sdk(gateway);

        var chatError = await Assert.ThrowsAsync<ClientResultException>(() => client.GetChatClient("no-such-model").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, chatError.Status);
        Assert.Contains("no-such-model", chatError.Message);

        var modelError = await Assert.ThrowsAsync<ClientResultException>(() => client.GetOpenAIModelClient().GetModelAsync("no-such:model"));
        Assert.Equal(404, modelError.Status);
        Assert.Contains("model_not_found", modelError.GetRawResponse()!.Content.ToString());
    }

    [Fact]
    public async Task TestBackend_ChatCompletion_BackendSeesUpstreamModel()
    {
        await using var front = await TestBackend.StartAsync("front", OpenAIChatResponder("front"));
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("pool"));
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["front"] = [front.Url], ["pool"] = [pool.Url] },
            [TestGateway.Endpoint("front-model", "front", isDefault: true), TestGateway.Endpoint("base:tuned", "pool", upstream: "tuned-upstream", aliases: "friendly")]));

        ChatCompletion completion = await Sdk(gateway).GetChatClient("friendly").CompleteChatAsync(
            [new SystemChatMessage("be brief"), new UserChatMessage("hello")],
            new ChatCompletionOptions { MaxOutputTokenCount = 16 });

        Assert.Equal("pool model=tuned-upstream", Assert.Single(completion.Content).Text);
        Assert.Equal("tuned-upstream", completion.Model);
        var seen = Assert.Single(pool.Requests);
        Assert.Equal("tuned-upstream", seen.Model);
        Assert.Equal("/v1/chat/completions", seen.Path);
        Assert.False(seen.Headers.ContainsKey("Authorization"), "the client's key reached the backend (SPEC §12)");
        Assert.Empty(front.Requests);
    }

    [Fact]
    public async Task TestBackend_StreamingChat_SdkReassemblesText()
    {
        await using var front = await TestBackend.StartAsync("front", OpenAIChatResponder("front"));
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("streamed reply from pool"));
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["front"] = [front.Url], ["pool"] = [pool.Url] },
            [TestGateway.Endpoint("front-model", "front", isDefault: true), TestGateway.Endpoint("base:tuned", "pool", upstream: "tuned-upstream")]));

        var text = new StringBuilder();
        var updates = 0;
        ChatTokenUsage? usage = null;
        await foreach (var update in Sdk(gateway).GetChatClient("base:tuned").CompleteChatStreamingAsync([new UserChatMessage("hello")]))
        {
            updates++;
            usage ??= update.Usage;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal("streamed reply from pool model=tuned-upstream", text.ToString());

        // The SDK asks for the usage chunk (stream_options.include_usage), so it gets it: 6 chunks and the usage one.
        Assert.Equal(7, updates);
        Assert.Equal(5, usage?.OutputTokenCount);
        var seen = Assert.Single(pool.Requests);
        Assert.Equal("tuned-upstream", seen.Model);
        Assert.True(JsonNode.Parse(seen.Body)?["stream"]?.GetValue<bool>());
        Assert.Empty(front.Requests);
    }
}
