using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>SPEC §7: what the backend receives, byte for byte, and the gateway's response headers.</summary>
public sealed class ForwardingTests
{
    // Unicode escapes (incl. a surrogate pair), raw non-ASCII, unknown fields, odd number formats, nesting,
    // whitespace and newlines, and model as the last key.
    private const string OddBodyTemplate =
        "{\n  \"messages\" : [ {\"role\":\"user\", \"content\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\/ \\n é 日本 😀\"} ],\r\n"
        + "\t\"temperature\":1.50, \"top_p\" : 1e5, \"presence_penalty\":-0.0, \"seed\":12345678901234567890, \"n\":1E-2,\n"
        + "  \"x_unknown\": {\"nested\": {\"deeper\": [1, 2.0, {\"k\": null, \"b\": true}], \"s\": \"\\u0041\"}, \"empty\": {}, \"arr\": []},\n"
        + "  \"stream\" : false ,   \"model\"  :  MODEL   \n}\n";

    [Theory]
    [InlineData("friendly", "up-2")] // alias → explicit UpstreamModel
    [InlineData("m2", "up-2")] // id → explicit UpstreamModel
    [InlineData("base:sql", "sql")] // adapter endpoint: UpstreamModel defaults to Adapter
    [InlineData("base", "base-weights")] // base endpoint: UpstreamModel defaults to BaseModel
    [InlineData("org/model", "org/real-model")] // ids with '/' and upstream names with '/'
    [InlineData("fr\\u0069endly", "up-2")] // an escaped name is the same name
    public async Task Body_IsForwardedByteExact_WithOnlyTheModelValueReplaced(string model, string upstream)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);
        var sent = Encoding.UTF8.GetBytes(OddBodyTemplate.Replace("MODEL", "\"" + model + "\"", StringComparison.Ordinal));

        using var response = await gateway.PostBytesAsync("/v1/chat/completions", sent);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        E2EHelpers.AssertOnlyModelReplaced(sent, seen.Body, "\"" + model + "\"", upstream);
        Assert.Equal(seen.Body.Length.ToString(CultureInfo.InvariantCulture), seen.Headers["Content-Length"]);
        Assert.Equal(upstream, seen.Model);
    }

    [Fact]
    public async Task Body_ModelFirst_IsForwardedWithTheExpectedBytes()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);

        using var response = await gateway.PostRawAsync(
            "/v1/chat/completions", """{"model":"friendly","messages":[{"role":"user","content":"h\u00e9 \ud83d\ude00"}],"temperature":1.50}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Equal("""{"model":"up-2","messages":[{"role":"user","content":"h\u00e9 \ud83d\ude00"}],"temperature":1.50}""", seen.BodyText);
        Assert.Equal(seen.Body.Length.ToString(CultureInfo.InvariantCulture), seen.Headers["Content-Length"]);
    }

    [Theory]
    [InlineData("same")]
    [InlineData("org/model-x")]
    public async Task Body_NameEqualsUpstream_IsForwardedByteIdentical(string id)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint(id, "ca", isDefault: true)]));
        var sent = Encoding.UTF8.GetBytes(OddBodyTemplate.Replace("MODEL", "\"" + id + "\"", StringComparison.Ordinal));

        using var response = await gateway.PostBytesAsync("/v1/chat/completions", sent);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Equal(sent, seen.Body);
        Assert.Equal(sent.Length.ToString(CultureInfo.InvariantCulture), seen.Headers["Content-Length"]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Body_SentChunked_ReachesBackendWithContentLength(bool chunked)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);
        var sent = Encoding.UTF8.GetBytes(OddBodyTemplate.Replace("MODEL", "\"friendly\"", StringComparison.Ordinal));

        using var response = await gateway.PostBytesAsync("/v1/chat/completions", sent, chunked);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        E2EHelpers.AssertOnlyModelReplaced(sent, seen.Body, "\"friendly\"", "up-2");
        Assert.Equal(seen.Body.Length.ToString(CultureInfo.InvariantCulture), seen.Headers["Content-Length"]);
        Assert.False(seen.Headers.ContainsKey("Transfer-Encoding"), "the forwarded body must carry a Content-Length, not be chunked");
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", """{"model":"default-up","messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("{}", """{"model":"default-up"}""")]
    [InlineData("""{"model":null,"messages":[{"role":"user","content":"hi"}]}""", """{"model":"default-up","messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"messages":[],"model":null}""", """{"messages":[],"model":"default-up"}""")]
    public async Task MissingModel_GoesToDefault_WithUpstreamModelInserted(string sent, string expected)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var other = await TestBackend.StartAsync("b");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["cb"] = [other.Url], ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("other", "cb"), TestGateway.Endpoint("dflt", "ca", isDefault: true, upstream: "default-up")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", sent);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("dflt", response.Headers.GetValues("x-gateway-endpoint").Single());
        var seen = Assert.Single(backend.Requests);
        Assert.Equal(expected, seen.BodyText);
        Assert.Equal(seen.Body.Length.ToString(CultureInfo.InvariantCulture), seen.Headers["Content-Length"]);
        Assert.Empty(other.Requests);
    }

    [Theory]
    [InlineData("{ \n\t\"messages\": [] }")]
    [InlineData("{ }")]
    [InlineData("\n  {\"input\":\"x\"}  \n")]
    public async Task MissingModel_WithWhitespace_GetsAValidBodyWithTheUpstreamModel(string sent)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("dflt", "ca", isDefault: true, upstream: "default-up")]));

        using var response = await gateway.PostRawAsync("/v1/embeddings", sent);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        var forwarded = JsonNode.Parse(seen.Body)!.AsObject();
        var original = JsonNode.Parse(sent)!.AsObject();
        Assert.Equal("model", forwarded.First().Key);
        Assert.Equal("default-up", forwarded["model"]!.GetValue<string>());
        original.Insert(0, "model", "default-up");
        Assert.True(JsonNode.DeepEquals(original, forwarded), seen.BodyText);
        Assert.Equal(seen.Body.Length.ToString(CultureInfo.InvariantCulture), seen.Headers["Content-Length"]);
    }

    [Fact]
    public async Task ContextFallback_NoModel_DefaultTooSmall_GoesToLargestReadyEndpoint()
    {
        await using var small = await TestBackend.StartAsync("small");
        await using var medium = await TestBackend.StartAsync("medium");
        await using var large = await TestBackend.StartAsync("large");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["cs"] = [small.Url], ["cm"] = [medium.Url], ["cl"] = [large.Url] },
            [
                TestGateway.Endpoint("tiny", "cs", maxContext: 50, isDefault: true),
                TestGateway.Endpoint("medium", "cm", maxContext: 20_000),
                TestGateway.Endpoint("large", "cl", maxContext: 100_000, upstream: "large-up"),
                TestGateway.Endpoint("huge-but-off", "cs", maxContext: 1_000_000, status: "Disabled"),
            ]));
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = string.Concat(Enumerable.Repeat("hello world ", 200)) }),
        }.ToJsonString();

        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("large", response.Headers.GetValues("x-gateway-endpoint").Single());
        Assert.Equal("context", response.Headers.GetValues("x-gateway-fallback").Single());
        var tokens = long.Parse(response.Headers.GetValues("x-gateway-estimated-tokens").Single(), NumberStyles.None, CultureInfo.InvariantCulture);
        Assert.True(tokens > 50, $"estimated {tokens} tokens for a ~2400-character prompt");
        var seen = Assert.Single(large.Requests);
        Assert.Equal("large-up", seen.Model);
        Assert.Equal(body.Insert(1, "\"model\":\"large-up\","), seen.BodyText);
        Assert.Empty(small.Requests);
        Assert.Empty(medium.Requests);
    }

    [Theory]
    [InlineData(40)]
    [InlineData(45)]
    [InlineData(50)]
    [InlineData(55)]
    [InlineData(60)]
    public async Task NearTheContextLimit_IsDecidedWithoutServerError(int words)
    {
        // Estimates within the exact-count margin of the limit (SPEC §6): the decision is made on an exact
        // count, and is either forwarded or refused with context_length_exceeded, never a server error.
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m50", "ca", maxContext: 50, isDefault: true)]));
        var body = new JsonObject
        {
            ["model"] = "m50",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = string.Join(' ', Enumerable.Repeat("hello", words)) }),
        }.ToJsonString();

        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);

        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode == HttpStatusCode.OK)
        {
            var tokens = long.Parse(response.Headers.GetValues("x-gateway-estimated-tokens").Single(), NumberStyles.None, CultureInfo.InvariantCulture);
            Assert.InRange(tokens, 1, 50);
            Assert.Single(backend.Requests);
        }
        else
        {
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"expected 200 or 400, got {(int)response.StatusCode}: {text}");
            await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error", "context_length_exceeded");
            Assert.Empty(backend.Requests);
        }
    }

    [Fact]
    public async Task Response_CarriesGatewayHeaders_WithoutFallbackWhenNotNeeded()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("friendly"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("m2", response.Headers.GetValues("x-gateway-endpoint").Single());
        var estimate = response.Headers.GetValues("x-gateway-estimated-tokens").Single();
        Assert.True(long.TryParse(estimate, NumberStyles.None, CultureInfo.InvariantCulture, out var tokens) && tokens > 0, "x-gateway-estimated-tokens: " + estimate);
        Assert.False(response.Headers.Contains("x-gateway-fallback"));
        Assert.Equal("a", response.Headers.GetValues("x-backend").Single());
    }

    [Theory]
    [InlineData("org/model", "org-backend", "org/model")]
    [InlineData("base:adapter", "adapter-backend", "adapter")]
    [InlineData("team/alias:v2", "adapter-backend", "adapter")]
    [InlineData("base", "base-backend", "base")]
    [InlineData("a:b/c:d", "odd-backend", "a:b/c:d-up")]
    public async Task IdsAndAliasesWithColonAndSlash_RouteCorrectly(string model, string expectedBackend, string expectedUpstream)
    {
        await using var baseBackend = await TestBackend.StartAsync("base-backend");
        await using var adapterBackend = await TestBackend.StartAsync("adapter-backend");
        await using var orgBackend = await TestBackend.StartAsync("org-backend");
        await using var oddBackend = await TestBackend.StartAsync("odd-backend");
        TestBackend[] all = [baseBackend, adapterBackend, orgBackend, oddBackend];
        var odd = TestGateway.Endpoint("a:b/c:d", "c-odd", upstream: "a:b/c:d-up");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]>
            {
                ["c-base"] = [baseBackend.Url], ["c-adapter"] = [adapterBackend.Url], ["c-org"] = [orgBackend.Url], ["c-odd"] = [oddBackend.Url],
            },
            [
                E2EHelpers.Endpoint("base", "c-base", "base", isDefault: true),
                E2EHelpers.Endpoint("base:adapter", "c-adapter", "base", adapter: "adapter", aliases: "team/alias:v2"),
                E2EHelpers.Endpoint("org/model", "c-org", "org/model"),
                odd,
            ]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat(model));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expectedBackend, response.Headers.GetValues("x-backend").Single());
        foreach (var backend in all)
        {
            if (backend.Name == expectedBackend)
            {
                Assert.Equal(expectedUpstream, Assert.Single(backend.Requests).Model);
            }
            else
            {
                Assert.Empty(backend.Requests);
            }
        }
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("x-gzip")]
    [InlineData("deflate")]
    [InlineData("br")]
    public async Task CompressedRequest_IsDecodedAndRouted_BackendGetsDecodedBody(string encoding)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var other = await TestBackend.StartAsync("b");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["cb"] = [other.Url], ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "cb", isDefault: true), TestGateway.Endpoint("m2", "ca", upstream: "up-2", aliases: "friendly")]));
        var plain = Encoding.UTF8.GetBytes(OddBodyTemplate.Replace("MODEL", "\"friendly\"", StringComparison.Ordinal));

        using var response = await gateway.PostBytesAsync("/v1/chat/completions", Compress(plain, encoding), contentEncoding: encoding);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("m2", response.Headers.GetValues("x-gateway-endpoint").Single());
        var seen = Assert.Single(backend.Requests);
        E2EHelpers.AssertOnlyModelReplaced(plain, seen.Body, "\"friendly\"", "up-2");
        Assert.False(seen.Headers.ContainsKey("Content-Encoding"), "the backend got a decoded body, so no Content-Encoding: " + seen.Headers.GetValueOrDefault("Content-Encoding"));
        Assert.Equal(seen.Body.Length.ToString(CultureInfo.InvariantCulture), seen.Headers["Content-Length"]);
        Assert.Empty(other.Requests);
    }

    private static Task<TestGateway> StartAsync(TestBackend backend) => TestGateway.StartAsync(TestGateway.Config(
        new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
        [
            TestGateway.Endpoint("m1", "ca", isDefault: true),
            TestGateway.Endpoint("m2", "ca", upstream: "up-2", aliases: "friendly"),
            E2EHelpers.Endpoint("base", "ca", "base-weights"),
            E2EHelpers.Endpoint("base:sql", "ca", "base-weights", adapter: "sql"),
            TestGateway.Endpoint("org/model", "ca", upstream: "org/real-model"),
        ]));

    private static byte[] Compress(byte[] data, string encoding)
    {
        using var output = new MemoryStream();
        using (Stream compressor = encoding switch
        {
            "gzip" or "x-gzip" => new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true),
            "deflate" => new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true),
            "br" => new BrotliStream(output, CompressionLevel.Optimal, leaveOpen: true),
            _ => throw new ArgumentOutOfRangeException(nameof(encoding)),
        })
        {
            compressor.Write(data);
        }

        return output.ToArray();
    }
}
