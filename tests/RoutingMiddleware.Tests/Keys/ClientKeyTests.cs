using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Keys;
using ModelRouting.Tests.EndToEnd.Support;
using OpenAI;
using OpenAI.Chat;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.Keys;

/// <summary>SPEC §14 end to end: client keys at the front door, with the official OpenAI .NET SDK.</summary>
public sealed class ClientKeyTests
{
    public const string TeamSecret = "sk-team-a-0123456789";
    public const string PlainSecret = "sk-plain-in-config";

    internal static OpenAIClient Sdk(TestGateway gateway, string key) =>
        new(new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(gateway.BaseAddress, "/v1"),
            NetworkTimeout = TimeSpan.FromSeconds(30),
            RetryPolicy = new ClientRetryPolicy(0), // a 429 reaches the test as the SDK surfaces it, not retried
        });

    internal static JsonObject Key(string id, string? secret, string[] models, JsonObject? limits = null, bool plain = false, bool enabled = true, string? expires = null)
    {
        var node = new JsonObject
        {
            ["Id"] = id,
            ["Models"] = new JsonArray([.. models.Select(m => (JsonNode)m)]),
            ["Enabled"] = enabled,
        };
        if (secret is not null)
        {
            node[plain ? "Key" : "KeyHash"] = plain ? secret : ClientKeyValidator.HashHex(secret);
        }

        if (limits is not null)
        {
            node["Limits"] = limits;
        }

        if (expires is not null)
        {
            node["ExpiresAt"] = expires;
        }

        return node;
    }

    private static JsonObject Deployment(TestBackend pool, JsonArray keys, JsonObject? modelRouting = null)
    {
        modelRouting ??= [];
        modelRouting["Keys"] = keys;
        return TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [pool.Url] },
            [
                TestGateway.Endpoint("small", "pool", maxContext: 100, isDefault: true, aliases: "gpt-4o-mini"),
                TestGateway.Endpoint("big", "pool", maxContext: 100_000),
                TestGateway.Endpoint("qwen", "pool"),
                TestGateway.Endpoint("qwen:sql", "pool", adapter: "sql"),
            ],
            modelRouting);
    }

    private static JsonArray StandardKeys() =>
    [
        Key("team-a", TeamSecret, ["gpt-4o-mini", "qwen:*"]),
        Key("plain", PlainSecret, ["*"], plain: true),
        Key("off", "sk-disabled-key", ["*"], enabled: false),
        Key("old", "sk-expired-key", ["*"], expires: "2020-01-01T00:00:00Z"),
    ];

    [Fact]
    public async Task Sdk_ValidKey_IsServed_BothHeaderForms()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await TestGateway.StartAsync(Deployment(pool, StandardKeys()));

        ChatCompletion reply = await Sdk(gateway, TeamSecret).GetChatClient("gpt-4o-mini").CompleteChatAsync("hello");
        Assert.Contains("model=small", reply.Content[0].Text, StringComparison.Ordinal);
        reply = await Sdk(gateway, PlainSecret).GetChatClient("big").CompleteChatAsync("hello");
        Assert.Contains("model=big", reply.Content[0].Text, StringComparison.Ordinal);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(E2EHelpers.Chat("qwen:sql"), Encoding.UTF8, "application/json") };
        request.Headers.Add("api-key", TeamSecret);
        using var response = await gateway.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // The client's key never reaches a backend.
        Assert.All(pool.Requests, r => Assert.False(r.Headers.ContainsKey("Authorization") || r.Headers.ContainsKey("api-key")));
    }

    [Theory]
    [InlineData("sk-not-a-key")]
    [InlineData("sk-disabled-key")]
    [InlineData("sk-expired-key")]
    public async Task Sdk_UnknownDisabledOrExpiredKey_Is401InvalidApiKey(string key)
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await TestGateway.StartAsync(Deployment(pool, StandardKeys()));

        var e = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(gateway, key).GetChatClient("small").CompleteChatAsync("hello"));
        Assert.Equal(401, e.Status);
        Assert.Contains("invalid_api_key", e.Message, StringComparison.Ordinal);
        Assert.Empty(pool.Requests);
    }

    public static TheoryData<string?, string?> BadHeaders() => new()
    {
        { null, null },
        { "Basic dXNlcjpwYXNz", null },
        { "Bearer", null },
        { "Bearer ", null },
        { "", null },
        { "Bearer " + new string('k', 10 * 1024), null },
        { null, "" },
        { null, new string('k', 10 * 1024) },
        { "Token " + TeamSecret, null },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public async Task BadAuthorization_Is401_Never500(string? authorization, string? apiKey)
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await TestGateway.StartAsync(Deployment(pool, StandardKeys()));
        foreach (var path in new[] { "/v1/chat/completions", "/v1/models" })
        {
            using var request = new HttpRequestMessage(path.EndsWith("models", StringComparison.Ordinal) ? HttpMethod.Get : HttpMethod.Post, path);
            if (request.Method == HttpMethod.Post)
            {
                request.Content = new StringContent(E2EHelpers.Chat("small"), Encoding.UTF8, "application/json");
            }

            if (authorization is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", authorization);
            }

            if (apiKey is not null)
            {
                request.Headers.TryAddWithoutValidation("api-key", apiKey);
            }

            using var response = await gateway.Client.SendAsync(request);
            await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.Unauthorized, "invalid_request_error", "invalid_api_key");
        }

        Assert.Empty(pool.Requests);
    }

    [Fact]
    public async Task Sdk_ModelOutsideAllowlist_Is404_AndModelsListsOnlyTheKeys()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await TestGateway.StartAsync(Deployment(pool, StandardKeys()));
        var sdk = Sdk(gateway, TeamSecret);

        var e = await Assert.ThrowsAsync<ClientResultException>(() => sdk.GetChatClient("big").CompleteChatAsync("hello"));
        Assert.Equal(404, e.Status);
        Assert.Contains("model_not_found", e.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist or you do not have access to it", e.Message, StringComparison.Ordinal);

        var models = (await sdk.GetOpenAIModelClient().GetModelsAsync()).Value.Select(m => m.Id).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["qwen", "qwen:sql", "small"], models);
        var all = (await Sdk(gateway, PlainSecret).GetOpenAIModelClient().GetModelsAsync()).Value.Count;
        Assert.Equal(4, all);

        var hidden = await Assert.ThrowsAsync<ClientResultException>(() => sdk.GetOpenAIModelClient().GetModelAsync("big"));
        Assert.Equal(404, hidden.Status);
        Assert.Equal("qwen:sql", (await sdk.GetOpenAIModelClient().GetModelAsync("qwen:sql")).Value.Id);
        Assert.Empty(pool.Requests);
    }

    [Fact]
    public async Task ContextFallbackToAModelTheKeyMayNotUse_IsAContextError_NotTheOtherModel()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await TestGateway.StartAsync(Deployment(pool, StandardKeys()));

        // No model: the default (small, 100 tokens) is too small; the context fallback is big, which team-a may not use.
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = string.Concat(Enumerable.Repeat("word ", 400)) }) }.ToJsonString();
        foreach (var (secret, expected) in new[] { (TeamSecret, HttpStatusCode.BadRequest), (PlainSecret, HttpStatusCode.OK) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
            using var response = await gateway.Client.SendAsync(request);
            if (expected == HttpStatusCode.OK)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("big", response.Headers.GetValues("x-gateway-endpoint").Single());
            }
            else
            {
                await E2EHelpers.AssertErrorAsync(response, expected, "invalid_request_error", "context_length_exceeded");
            }
        }

        Assert.Equal("big", Assert.Single(pool.Requests).Model);
    }

    [Fact]
    public async Task NoKeysConfigured_GatewayIsOpen_AnyAuthorizationIgnored()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [pool.Url] }, [TestGateway.Endpoint("small", "pool", isDefault: true)]));

        ChatCompletion reply = await Sdk(gateway, "anything").GetChatClient("small").CompleteChatAsync("hello");
        Assert.Contains("model=small", reply.Content[0].Text, StringComparison.Ordinal);
        using var response = await gateway.Client.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task PlainKeyInConfiguration_StartsWithAWarning_NamingTheKey()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        var config = Deployment(pool, StandardKeys());
        using var dir = E2EHelpers.TempDir();
        dir.Write("gateway.json", config.ToJsonString());
        using var host = HostProcess.Start(["--urls", "http://127.0.0.1:0", "--config", dir.File("gateway.json"), "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + dir.File("state.json")], dir.Path);
        Assert.True(await host.WaitForListeningAsync(HostProcess.ExitBound) is not null, "the host did not start: " + host.Output);
        await E2EHelpers.PollAsync(() => Task.FromResult(host.Output), o => o.Contains("PlainClientKey", StringComparison.Ordinal) || o.Contains("'plain' is configured with its secret", StringComparison.Ordinal), "the plain-key warning");
        Assert.DoesNotContain(PlainSecret, host.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FailoverFallback_ToAModelTheKeyMayNotUse_IsNotTried()
    {
        await using var spare = await TestBackend.StartAsync("spare", OpenAIChatResponder("spare"));
        var dead = $"http://127.0.0.1:{E2EHelpers.ClosedLoopbackPort()}";
        var primary = TestGateway.Endpoint("primary", "dead", isDefault: true);
        primary["Fallbacks"] = new JsonArray("backup");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["dead"] = [dead], ["spare"] = [spare.Url] },
            [primary, TestGateway.Endpoint("backup", "spare")],
            new JsonObject { ["Keys"] = new JsonArray(Key("narrow", "sk-narrow", ["primary"]), Key("wide", "sk-wide", ["*"])) }));

        var e = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(gateway, "sk-narrow").GetChatClient("primary").CompleteChatAsync("hello"));
        Assert.InRange(e.Status, 502, 503);
        Assert.Empty(spare.Requests);

        ChatCompletion reply = await Sdk(gateway, "sk-wide").GetChatClient("primary").CompleteChatAsync("hello");
        Assert.Contains("spare", reply.Content[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PassThroughPath_WithoutAModel_NeedsAKey()
    {
        await using var pool = await TestBackend.StartAsync("pool");
        var config = Deployment(pool, StandardKeys(), new JsonObject { ["PassThroughPaths"] = new JsonArray("/v1/files") });
        await using var gateway = await TestGateway.StartAsync(config);

        using (var anonymous = await gateway.Client.GetAsync("/v1/files"))
        {
            await E2EHelpers.AssertErrorAsync(anonymous, HttpStatusCode.Unauthorized, "invalid_request_error", "invalid_api_key");
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/files");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TeamSecret);
        using var keyed = await gateway.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, keyed.StatusCode);
        var seen = Assert.Single(pool.Requests);
        Assert.Equal("/v1/files", seen.Path);
        Assert.False(seen.Headers.ContainsKey("Authorization"));
    }
}
