using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>Every error of SPEC §9 through real HTTP: status, Content-Type, error.type, error.code and message.</summary>
public sealed partial class ErrorTests
{
    private const string InvalidRequestError = "invalid_request_error";
    private const string ServerError = "server_error";

    private static readonly string LongMessage = string.Concat(Enumerable.Repeat("hello world ", 200));

    [Theory]
    [InlineData("nope")]
    [InlineData("team/unknown:v1")]
    [InlineData("M1")] // resolution is case-sensitive
    [InlineData("FRIENDLY")]
    public async Task UnknownModelOrAlias_Returns404ModelNotFound(string model)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true, aliases: "friendly")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat(model));

        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.NotFound, InvalidRequestError, "model_not_found");
        Assert.Contains(model, error.Message, StringComparison.Ordinal);
        Assert.Empty(backend.Requests);
    }

    [Theory]
    [InlineData(10_000)]
    [InlineData(300)]
    [InlineData(257)]
    public async Task UnknownModel_VeryLongName_Returns404ModelNotFound(int length)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true)]));
        var model = new string('q', length);

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat(model));

        await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.NotFound, InvalidRequestError, "model_not_found");
        Assert.Empty(backend.Requests);
    }

    [Theory]
    [InlineData("""{"model":"m\u0000x"}""")]
    [InlineData("""{"model":"\"quoted\""}""")]
    [InlineData("""{"model":"\ud83d\ude00"}""")]
    [InlineData("""{"model":""}""")]
    [InlineData("""{"model":" m1"}""")]
    public async Task UnknownModel_UnusualNames_Returns404ModelNotFound(string body)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true)]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);

        await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.NotFound, InvalidRequestError, "model_not_found");
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task ContextTooLong_NamedModel_LongMessage_Returns400WithBothNumbers()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("small", "ca", maxContext: 50), TestGateway.Endpoint("big", "ca", maxContext: 100_000, isDefault: true)]));

        var body = new JsonObject
        {
            ["model"] = "small",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = LongMessage }),
        }.ToJsonString();
        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);

        // No silent switch to "big": the client chose "small".
        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, InvalidRequestError, "context_length_exceeded");
        Assert.Contains("small", error.Message, StringComparison.Ordinal);
        var numbers = Numbers(error.Message!);
        Assert.Contains(50L, numbers);
        Assert.Contains(numbers, n => n > 100);
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task ContextTooLong_NamedModel_MaxTokensOverLimit_Returns400WithBothNumbers()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("small", "ca", maxContext: 50, isDefault: true)]));

        using var response = await gateway.PostRawAsync(
            "/v1/chat/completions", """{"model":"small","messages":[{"role":"user","content":"hi"}],"max_tokens":1000}""");

        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, InvalidRequestError, "context_length_exceeded");
        Assert.Contains("small", error.Message, StringComparison.Ordinal);
        var numbers = Numbers(error.Message!);
        Assert.Contains(50L, numbers);
        Assert.Contains(numbers, n => n >= 1000);
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task ContextTooLong_NoModel_NothingFits_Returns400()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("tiny", "ca", maxContext: 50, isDefault: true), TestGateway.Endpoint("small", "ca", maxContext: 60)]));

        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = LongMessage }),
        }.ToJsonString();
        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);

        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, InvalidRequestError, "context_length_exceeded");
        Assert.Contains(Numbers(error.Message!), n => n > 100);
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task EndpointLoading_Returns503ModelNotReady_WithRetryAfter()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true), TestGateway.Endpoint("warming", "ca", status: "Loading")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("warming"));

        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, ServerError, "model_not_ready");
        Assert.Contains("warming", error.Message, StringComparison.Ordinal);
        var retryAfter = response.Headers.RetryAfter;
        Assert.NotNull(retryAfter);
        Assert.NotNull(retryAfter.Delta);
        Assert.True(retryAfter.Delta > TimeSpan.Zero, "Retry-After must be a positive number of seconds");
        Assert.Empty(backend.Requests);
    }

    [Theory]
    [InlineData("Error")]
    [InlineData("Disabled")]
    [InlineData("disabled")] // statuses are case-insensitive
    public async Task EndpointErrorOrDisabled_Returns503ModelNotReady_WithoutRetryAfter(string status)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true), TestGateway.Endpoint("off", "ca", status: status, aliases: "off-alias")]));

        foreach (var model in new[] { "off", "off-alias" })
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat(model));

            var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, ServerError, "model_not_ready");
            Assert.Contains("off", error.Message, StringComparison.Ordinal);
            Assert.Null(response.Headers.RetryAfter);
        }

        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task NoModel_DefaultNotReady_Returns503ModelNotReady()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true, status: "Disabled"), TestGateway.Endpoint("m2", "ca")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""");

        await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, ServerError, "model_not_ready");
        Assert.Empty(backend.Requests);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"model":null,"messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("{}")]
    public async Task NoModel_NoDefault_Returns400MissingModel(string body)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca"), TestGateway.Endpoint("m2", "ca")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);

        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, InvalidRequestError, "missing_model");
        Assert.Contains("model", error.Message, StringComparison.Ordinal);
        Assert.Empty(backend.Requests);
    }

    [Theory]
    [InlineData("this is not json")]
    [InlineData("""[{"model":"m1","messages":[]}]""")]
    [InlineData("""{"model":42,"messages":[]}""")]
    [InlineData("""{"model":true,"messages":[]}""")]
    [InlineData("""{"model":{"id":"m1"},"messages":[]}""")]
    [InlineData("""{"model":["m1"],"messages":[]}""")]
    [InlineData("""{"model":"m1","messages":[],"model":"m2"}""")]
    [InlineData("""{"model":"m1","model":"m1"}""")]
    [InlineData("""{"model":null,"model":"m1"}""")]
    [InlineData("""{"m\u006fdel":"m1","model":"m2"}""")] // the same key, escaped: still given twice
    public async Task InvalidBody_Returns400InvalidRequest(string body)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true), TestGateway.Endpoint("m2", "ca")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);

        await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, InvalidRequestError, "invalid_request");
        Assert.Empty(backend.Requests);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BodyLargerThanLimit_Returns413RequestTooLarge(bool chunked)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true)],
            new JsonObject { ["MaxRequestBodyBytes"] = 1000 }));

        using var response = await gateway.PostBytesAsync("/v1/chat/completions", ChatOfLength(2500), chunked);

        await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.RequestEntityTooLarge, InvalidRequestError, "request_too_large");
        Assert.Empty(backend.Requests);

        // The gateway is still serving afterwards.
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m1"));
    }

    [Theory]
    [InlineData(false, int.MaxValue)]
    [InlineData(true, int.MaxValue)]
    [InlineData(true, 100)] // ten chunks: chunk framing must not count against the limit
    [InlineData(true, 7)]
    public async Task BodyAtTheLimit_IsForwarded_OneByteMoreIsRefused(bool chunked, int maxChunk)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true)],
            new JsonObject { ["MaxRequestBodyBytes"] = 1000 }));

        using (var atLimit = await gateway.PostBytesAsync("/v1/chat/completions", ChatOfLength(1000), chunked, maxChunk: maxChunk))
        {
            Assert.Equal(HttpStatusCode.OK, atLimit.StatusCode);
        }

        using var over = await gateway.PostBytesAsync("/v1/chat/completions", ChatOfLength(1001), chunked, maxChunk: maxChunk);
        await E2EHelpers.AssertErrorAsync(over, HttpStatusCode.RequestEntityTooLarge, InvalidRequestError, "request_too_large");
        Assert.Single(backend.Requests);
    }

    [Fact]
    public async Task BackendUnreachable_Returns502Or503UpstreamUnavailable()
    {
        var closedPort = E2EHelpers.ClosedLoopbackPort();
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url], ["dead"] = [$"http://127.0.0.1:{closedPort}"] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true), TestGateway.Endpoint("gone", "dead")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("gone"));

        Assert.True(
            response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable,
            $"expected 502 or 503, got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        await E2EHelpers.AssertErrorAsync(response, response.StatusCode, ServerError, "upstream_unavailable");
        Assert.Empty(backend.Requests);
    }

    public static TheoryData<string, byte[]> MalformedBodies() => new()
    {
        { "truncated", Encoding.UTF8.GetBytes("""{"model":"m1","messages":[{"role":"user","content":"hi""") },
        { "truncated-in-model", Encoding.UTF8.GetBytes("""{"model":"m""") },
        { "trailing-garbage", Encoding.UTF8.GetBytes("""{"model":"m1","messages":[]} trailing""") },
        { "second-object", Encoding.UTF8.GetBytes("""{"model":"m1"}{"model":"m2"}""") },
        { "invalid-utf8-in-model", [.. "{\"model\":\"m"u8, 0xFF, 0xFE, .. "1\",\"messages\":[]}"u8] },
        { "invalid-utf8-in-content", [.. "{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"a"u8, 0xC3, 0x28, .. "b\"}]}"u8] },
        { "invalid-utf8-outside-strings", [.. "{\"model\":\"m1\", "u8, 0xFF, .. "}"u8] },
        { "deep-nesting-array", Encoding.UTF8.GetBytes("{\"model\":\"m1\",\"x\":" + new string('[', 5000) + new string(']', 5000) + "}") },
        { "deep-nesting-messages", Encoding.UTF8.GetBytes("{\"model\":\"m1\",\"messages\":" + string.Concat(Enumerable.Repeat("[{\"a\":", 2000)) + "1" + string.Concat(Enumerable.Repeat("}]", 2000)) + "}") },
        { "deep-nesting-root", Encoding.UTF8.GetBytes(new string('[', 5000) + new string(']', 5000)) },
        { "empty", [] },
        { "whitespace-only", Encoding.UTF8.GetBytes("   \n ") },
        { "null", Encoding.UTF8.GetBytes("null") },
        { "string", Encoding.UTF8.GetBytes("\"m1\"") },
        { "number", Encoding.UTF8.GetBytes("42") },
        { "unterminated-string", Encoding.UTF8.GetBytes("""{"model":"m1""") },
        { "bad-escape", Encoding.UTF8.GetBytes("""{"model":"m\x31"}""") },
        { "lone-surrogate-escape-in-model", Encoding.UTF8.GetBytes("""{"model":"\ud800","messages":[]}""") },
        { "control-char-in-string", Encoding.UTF8.GetBytes("{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"a\u0001b\"}]}") },
        { "comment", Encoding.UTF8.GetBytes("""{"model":"m1" /* c */}""") },
        { "trailing-comma", Encoding.UTF8.GetBytes("""{"model":"m1",}""") },
        { "single-quotes", Encoding.UTF8.GetBytes("{'model':'m1'}") },
        { "nan", Encoding.UTF8.GetBytes("""{"model":"m1","temperature":NaN}""") },
        { "bom-then-garbage", [0xEF, 0xBB, 0xBF, .. "{"u8] },
    };

    [Theory]
    [MemberData(nameof(MalformedBodies))]
    public async Task MalformedBody_Never500_Returns4xxOpenAIError(string name, byte[] body)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true)]));

        using var response = await gateway.PostBytesAsync("/v1/chat/completions", body);

        var status = (int)response.StatusCode;
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status is >= 400 and < 500, $"{name}: expected a 4xx OpenAI error, got {status}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonNode.Parse(text)?["error"];
        Assert.NotNull(error);
        Assert.Equal(InvalidRequestError, error["type"]?.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(error["code"]?.GetValue<string>()));
        Assert.False(string.IsNullOrEmpty(error["message"]?.GetValue<string>()));
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task PassThroughRequest_WithoutModel_GoesToRouteCluster_Untouched()
    {
        await using var first = await TestBackend.StartAsync("first");
        await using var second = await TestBackend.StartAsync("second");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["c1"] = [first.Url], ["c2"] = [second.Url] },
            [TestGateway.Endpoint("m2", "c2", isDefault: true)],
            new JsonObject { ["PassThroughPaths"] = new JsonArray("/v1/files") }));

        // A GET on a pass-through path: straight to the route's cluster, not to the default endpoint's cluster.
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/v1/files?purpose=fine-tune"))
        {
            request.Headers.Add("x-custom", "kept");
            using var response = await gateway.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("first", response.Headers.GetValues("x-backend").Single());
            Assert.False(response.Headers.Contains("x-gateway-endpoint"));
        }

        // A POST on a path that is not inspected, with a body that is not even JSON: forwarded byte for byte.
        byte[] body = [.. "not json {\"model\":\"m2\"} "u8, 0xFF, 0x00, 0x80];
        using (var response = await gateway.PostBytesAsync("/v1/files", body))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("first", response.Headers.GetValues("x-backend").Single());
        }

        Assert.Empty(second.Requests);
        var seen = first.Requests.ToArray();
        Assert.Equal(2, seen.Length);
        Assert.Equal("GET", seen[0].Method);
        Assert.Equal("/v1/files?purpose=fine-tune", seen[0].Path);
        Assert.Equal("kept", seen[0].Headers["x-custom"]);
        Assert.Equal("POST", seen[1].Method);
        Assert.Equal("/v1/files", seen[1].Path);
        Assert.Equal(body, seen[1].Body);
    }

    /// <summary>A valid chat body naming m1 of exactly <paramref name="length"/> bytes.</summary>
    private static byte[] ChatOfLength(int length)
    {
        const string Head = "{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"";
        const string Tail = "\"}]}";
        var padding = length - Head.Length - Tail.Length;
        Assert.True(padding >= 0);
        var body = Encoding.UTF8.GetBytes(Head + new string('x', padding) + Tail);
        Assert.Equal(length, body.Length);
        return body;
    }

    private static List<long> Numbers(string message) =>
        [.. NumberPattern().Matches(message).Select(m => long.Parse(m.Value, System.Globalization.CultureInfo.InvariantCulture))];

    [GeneratedRegex(@"\d+")]
    private static partial Regex NumberPattern();
}
