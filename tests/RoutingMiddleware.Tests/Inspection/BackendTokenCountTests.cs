using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Inspection;

/// <summary>
/// SPEC §18, Backend mode, through the real host: near a limit the decision follows the serving engine's
/// <c>POST /tokenize</c> count (a fake vLLM whose tokenizer is unlike o200k), sent with the cluster's key and cached by
/// content; a slow or failed count decides on the local count lowered by the margin; far from every limit the
/// engine is never asked.
/// </summary>
public sealed class BackendTokenCountTests
{
    private const string Upstream = "Qwen/Qwen3-8B";
    private const string BackendKey = "tokenize-key-42";
    private const int Limit = 400;
    private static readonly Tokenizer s_o200k = TiktokenTokenizer.CreateForEncoding("o200k_base");

    private const string Sentence = "The gateway routes each request to a model that can hold its prompt and its reply. ";

    // Prose whose o200k count is about `tokens`.
    private static string Prose(int tokens)
    {
        var text = new StringBuilder();
        while (s_o200k.CountTokens(text.ToString()) < tokens)
        {
            text.Append(Sentence);
        }

        return text.ToString();
    }

    // What the gateway's local exact count of a one-message chat is (OpenAI's chat accounting, as TokenEstimationHttpTests check).
    private static long LocalChatCount(string content) => s_o200k.CountTokens("user") + s_o200k.CountTokens(content) + 3 + 3;

    private static string Chat(string? model, string content, string extra = "") =>
        (model is null ? "{" : "{\"model\":" + JsonSerializer.Serialize(model) + ",")
        + "\"messages\":[{\"role\":\"user\",\"content\":" + JsonSerializer.Serialize(content) + "}]" + extra + "}";

    private static JsonObject Endpoint(string id, int limit, bool isDefault = false, string? mode = null, string upstream = Upstream)
    {
        var node = TestGateway.Endpoint(id, "vllm", limit, isDefault, upstream: upstream);
        if (mode is not null)
        {
            node["TokenEstimation"] = new JsonObject { ["Mode"] = mode };
        }

        return node;
    }

    // A generous count timeout unless a test is about timeouts: the first count of a fresh gateway (a new connection,
    // code not yet jitted) can take longer than half a second on a CI machine running other tests at once.
    private static Task<TestGateway> StartAsync(FakeTokenizingVllm vllm, string globalMode = "Backend", string timeout = "00:00:05", params JsonObject[] endpoints) =>
        TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["vllm"] = [vllm.Url] },
            endpoints.Length > 0 ? [.. endpoints] : [Endpoint("small", Limit, isDefault: true)],
            new JsonObject
            {
                ["TokenEstimation"] = new JsonObject { ["Mode"] = globalMode, ["BackendTimeout"] = timeout },
                ["Backends"] = new JsonObject { ["vllm"] = new JsonObject { ["ApiKey"] = BackendKey } },
            }));

    private static long EstimatedTokens(HttpResponseMessage response) =>
        long.Parse(response.Headers.GetValues("x-gateway-estimated-tokens").Single(), CultureInfo.InvariantCulture);

    [Fact]
    public async Task NearTheLimit_LocalSaysFits_EngineSaysNot_Refused()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        await using var gateway = await StartAsync(vllm);
        var content = Prose(Limit * 85 / 100);
        Assert.InRange(LocalChatCount(content), Limit * 3 / 4, Limit - 1);

        using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", content));

        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error", "context_length_exceeded");
        var engineCount = FakeTokenizingVllm.TemplateTokens + content.Length;
        Assert.Contains($"about {engineCount} tokens", error.Message, StringComparison.Ordinal);
        Assert.Single(vllm.Tokenizes);
        Assert.Empty(vllm.Forwarded);
    }

    [Fact]
    public async Task LocalSaysTooLong_EngineSaysFits_Forwarded_HeaderShowsEngineCount()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        vllm.CharsPerToken = 10;
        await using var gateway = await StartAsync(vllm);
        var content = Prose(Limit * 120 / 100);
        Assert.True(LocalChatCount(content) > Limit);

        using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", content));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(FakeTokenizingVllm.TemplateTokens + vllm.Tokens(content), EstimatedTokens(response));
        Assert.Single(vllm.Tokenizes);
        Assert.Single(vllm.Forwarded);
    }

    [Fact]
    public async Task NoModelNamed_EngineSaysDefaultTooSmall_ContextFallback()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        await using var gateway = await StartAsync(vllm, endpoints: [Endpoint("small", Limit, isDefault: true), Endpoint("big", 100_000)]);
        var content = Prose(Limit * 85 / 100);
        Assert.True(LocalChatCount(content) < Limit);

        using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat(null, content));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("big", response.Headers.GetValues("x-gateway-endpoint").Single());
        Assert.Equal("context", response.Headers.GetValues("x-gateway-fallback").Single());
        Assert.Equal(FakeTokenizingVllm.TemplateTokens + content.Length, EstimatedTokens(response));
    }

    [Fact]
    public async Task Tokenize_HasUpstreamModelClientBytesAndClusterKey_NotTheClientsKey()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        vllm.CharsPerToken = 10;
        await using var gateway = await StartAsync(vllm);
        const string tools = ""","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"chat_template_kwargs":{"enable_thinking":false},"temperature":0.2""";
        var body = Chat("small", Prose(Limit), tools);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer client-key");

        using var response = await gateway.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var tokenize = Assert.Single(vllm.Tokenizes);
        Assert.Equal("POST", tokenize.Method);
        Assert.Equal("Bearer " + BackendKey, tokenize.Headers["Authorization"]);
        var sent = JsonNode.Parse(tokenize.Body)!.AsObject();
        var client = JsonNode.Parse(body)!.AsObject();
        Assert.Equal(Upstream, sent["model"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(client["messages"], sent["messages"]));
        Assert.True(JsonNode.DeepEquals(client["tools"], sent["tools"]));
        Assert.True(JsonNode.DeepEquals(client["chat_template_kwargs"], sent["chat_template_kwargs"]));
        Assert.Equal(["model", "messages", "tools", "chat_template_kwargs"], sent.Select(p => p.Key).ToArray());
    }

    [Fact]
    public async Task Completions_PromptStringIsCounted()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        await using var gateway = await StartAsync(vllm);
        var prompt = Prose(Limit * 85 / 100);

        using var response = await gateway.PostRawAsync("/v1/completions", "{\"model\":\"small\",\"prompt\":" + JsonSerializer.Serialize(prompt) + "}");

        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error", "context_length_exceeded");
        Assert.Contains($"about {prompt.Length} tokens", error.Message, StringComparison.Ordinal);
        var sent = JsonNode.Parse(Assert.Single(vllm.Tokenizes).Body)!.AsObject();
        Assert.Equal(["model", "prompt"], sent.Select(p => p.Key).ToArray());
        Assert.Equal(prompt, sent["prompt"]!.GetValue<string>());
    }

    [Fact]
    public async Task SameBytesTwice_CountedOnce_OtherBytesCountedAgain()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        vllm.CharsPerToken = 10;
        await using var gateway = await StartAsync(vllm);
        var content = Prose(Limit);

        using var first = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", content));
        using var second = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", content));

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(EstimatedTokens(first), EstimatedTokens(second));
        Assert.Single(vllm.Tokenizes);

        using var third = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", content + "!"));
        Assert.Equal(2, vllm.Tokenizes.Count);
    }

    [Fact]
    public async Task SameBytesAtTheSameTime_ShareOneCall()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        vllm.CharsPerToken = 10;
        vllm.Delay = TimeSpan.FromMilliseconds(400);
        await using var gateway = await StartAsync(vllm, timeout: "00:00:05");
        var content = Prose(Limit);

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => gateway.PostRawAsync("/v1/chat/completions", Chat("small", content))));

        Assert.All(responses, r => Assert.Equal(FakeTokenizingVllm.TemplateTokens + vllm.Tokens(content), EstimatedTokens(r)));
        Assert.Single(vllm.Tokenizes);
        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    [Fact]
    public async Task SameBytesForAnotherUpstreamModel_CountedAgain()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        vllm.CharsPerToken = 10;
        await using var gateway = await StartAsync(vllm, endpoints: [Endpoint("small", Limit, isDefault: true), Endpoint("other", Limit, upstream: "meta-llama/Llama-3.1-8B")]);
        var content = Prose(Limit);

        using var first = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", content));
        using var second = await gateway.PostRawAsync("/v1/chat/completions", Chat("other", content));

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(new[] { Upstream, "meta-llama/Llama-3.1-8B" }, vllm.Tokenizes.Select(r => r.Model ?? "").ToArray());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(503)]
    public async Task SlowOrFailedCount_DecidesOnLocalCountLessMargin_ThenBacksOff(int failWith)
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        vllm.Delay = failWith == 0 ? TimeSpan.FromSeconds(10) : TimeSpan.Zero;
        vllm.FailWith = failWith == 0 ? null : failWith;
        await using var gateway = await StartAsync(vllm, timeout: "00:00:00.300");

        // 110% of the limit locally: lowered by the 25% margin it fits (the engine, which would refuse it, judges it).
        var content = Prose(Limit * 110 / 100);
        var local = LocalChatCount(content);
        Assert.True(local > Limit);
        var clock = Stopwatch.StartNew();
        using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", content));
        clock.Stop();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((long)Math.Ceiling(local * 0.75), EstimatedTokens(response));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Single(vllm.Tokenizes);

        // 150% locally exceeds the limit even lowered by the margin: refused, and the failing engine is not asked again.
        using var refused = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", Prose(Limit * 150 / 100)));
        await E2EHelpers.AssertErrorAsync(refused, HttpStatusCode.BadRequest, "invalid_request_error", "context_length_exceeded");
        Assert.Single(vllm.Tokenizes);
    }

    [Fact]
    public async Task AfterAFailure_CachedCountsStillDecide_NewTextsUseTheLocalCount()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        vllm.CharsPerToken = 10;
        await using var gateway = await StartAsync(vllm);
        var counted = Prose(Limit * 120 / 100);
        using (var first = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", counted)))
        {
            Assert.Equal(FakeTokenizingVllm.TemplateTokens + vllm.Tokens(counted), EstimatedTokens(first));
        }

        vllm.FailWith = 500;
        var other = counted + "Another sentence. ";
        using (var failed = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", other)))
        {
            Assert.Equal((long)Math.Ceiling(LocalChatCount(other) * 0.75), EstimatedTokens(failed));
        }

        using var again = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", counted));

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(FakeTokenizingVllm.TemplateTokens + vllm.Tokens(counted), EstimatedTokens(again));
        Assert.Equal(2, vllm.Tokenizes.Count);
    }

    [Fact]
    public async Task FarFromEveryLimit_EngineNeverAsked()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        await using var gateway = await StartAsync(vllm, endpoints: [Endpoint("small", 100_000, isDefault: true)]);

        for (var i = 0; i < 5; i++)
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", Prose(300) + i));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using (var completion = await gateway.PostRawAsync("/v1/completions", "{\"model\":\"small\",\"prompt\":\"Once upon a time\"}"))
        {
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        }

        Assert.Empty(vllm.Tokenizes);
        Assert.Equal(6, vllm.Forwarded.Count);
    }

    [Theory]
    [InlineData("Heuristic", "Backend", true)]
    [InlineData("Tiktoken", "Backend", true)]
    [InlineData("Backend", "Heuristic", false)]
    [InlineData("Backend", "Tiktoken", false)]
    [InlineData("Heuristic", null, false)]
    public async Task EndpointMode_OverridesGlobalMode(string global, string? endpoint, bool engineCounts)
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        await using var gateway = await StartAsync(vllm, globalMode: global, endpoints: [Endpoint("small", Limit, isDefault: true, mode: endpoint)]);
        var content = Prose(Limit * 85 / 100);

        using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat("small", content));

        Assert.Equal(engineCounts ? HttpStatusCode.BadRequest : HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(engineCounts ? 1 : 0, vllm.Tokenizes.Count);
        if (!engineCounts)
        {
            Assert.Equal(LocalChatCount(content), EstimatedTokens(response));
        }
    }

    [Fact]
    public async Task MediaParts_NotSentToTheEngine_LocalCountWithMargin()
    {
        await using var vllm = await FakeTokenizingVllm.StartAsync();
        await using var gateway = await StartAsync(vllm, endpoints: [Endpoint("small", 1200, isDefault: true)]);
        var text = Prose(300);
        var body = "{\"model\":\"small\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":" + JsonSerializer.Serialize(text)
            + "},{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://127.0.0.1:1/cat.png\"}}]}]}";
        var local = s_o200k.CountTokens("user") + s_o200k.CountTokens(text) + 765 + 3 + 3;

        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((long)Math.Ceiling(local * 0.75), EstimatedTokens(response));
        Assert.Empty(vllm.Tokenizes);
    }
}
