using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.Backends;

/// <summary>SPEC §12 "Headers": x-gateway-* response headers are the gateway's alone; a backend's copies are dropped.</summary>
public sealed class GatewayHeaderTests
{
    private static void SendEvilHeaders(HttpResponse response)
    {
        response.Headers["x-gateway-endpoint"] = "evil";
        response.Headers["x-gateway-estimated-tokens"] = "1";
        response.Headers["X-Gateway-Other"] = "x";
        response.Headers["x-gateway-fallback"] = "evil";
    }

    private static JsonObject Config(TestBackend backend) => TestGateway.Config(
        new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
        [TestGateway.Endpoint("small", "pool", maxContext: 64, isDefault: true), TestGateway.Endpoint("large", "pool", maxContext: 100_000)],
        new JsonObject { ["PassThroughPaths"] = new JsonArray("/v1/files") });

    private static string LongChat(string? model) =>
        new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = string.Join(' ', Enumerable.Repeat("words to count", 40)) }),
        }.ToJsonString();

    private static string[] Values(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? [.. values] : [];

    [Fact]
    public async Task BackendSendsGatewayHeaders_ClientSeesOnlyTheGatewaysOnce()
    {
        await using var backend = await TestBackend.StartAsync("pool", (context, _) =>
        {
            SendEvilHeaders(context.Response);
            return context.Response.WriteAsJsonAsync(new { ok = true });
        });
        await using var gateway = await TestGateway.StartAsync(Config(backend));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", LongChat("large"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["large"], Values(response, "x-gateway-endpoint"));
        var estimate = Assert.Single(Values(response, "x-gateway-estimated-tokens"));
        Assert.True(long.Parse(estimate, System.Globalization.CultureInfo.InvariantCulture) > 64, estimate);
        Assert.Empty(Values(response, "x-gateway-other"));
        Assert.Empty(Values(response, "x-gateway-fallback"));
    }

    [Fact]
    public async Task ContextFallback_BackendSendsFallbackHeader_ClientSeesContextOnce()
    {
        await using var backend = await TestBackend.StartAsync("pool", (context, _) =>
        {
            SendEvilHeaders(context.Response);
            return context.Response.WriteAsJsonAsync(new { ok = true });
        });
        await using var gateway = await TestGateway.StartAsync(Config(backend));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", LongChat(null));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["large"], Values(response, "x-gateway-endpoint"));
        Assert.Equal(["context"], Values(response, "x-gateway-fallback"));
        Assert.Empty(Values(response, "x-gateway-other"));
    }

    [Fact]
    public async Task PassThroughRequest_BackendGatewayHeadersDropped()
    {
        await using var backend = await TestBackend.StartAsync("pool", (context, _) =>
        {
            SendEvilHeaders(context.Response);
            context.Response.Headers["x-backend-own"] = "kept";
            return context.Response.WriteAsync("files");
        });
        await using var gateway = await TestGateway.StartAsync(Config(backend));

        using var response = await gateway.Client.GetAsync("/v1/files");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain(response.Headers, h => h.Key.StartsWith("x-gateway-", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(["kept"], Values(response, "x-backend-own"));
    }

    [Fact]
    public async Task StreamingResponse_BackendGatewayHeadersDropped_ChunksStillArriveOneByOne()
    {
        var secondMayGo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync("pool", async (context, _) =>
        {
            SendEvilHeaders(context.Response);
            StartEventStream(context.Response);
            await WriteEventAsync(context.Response, "chunk-1", context.RequestAborted);
            await secondMayGo.Task.WaitAsync(TimeSpan.FromSeconds(30), context.RequestAborted);
            await WriteEventAsync(context.Response, "[DONE]", context.RequestAborted);
        });
        await using var gateway = await TestGateway.StartAsync(Config(backend));
        try
        {
            using var request = StreamingPost("/v1/chat/completions", StreamingChatBody("large", "hello"));
            using var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Prompt);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(["large"], Values(response, "x-gateway-endpoint"));
            Assert.Single(Values(response, "x-gateway-estimated-tokens"));
            Assert.NotEqual(["1"], Values(response, "x-gateway-estimated-tokens"));
            Assert.Empty(Values(response, "x-gateway-other"));
            await using var stream = await response.Content.ReadAsStreamAsync();
            using var reader = new SseReader(stream);
            Assert.Equal("chunk-1", await reader.ReadDataAsync().WaitAsync(Prompt));
            secondMayGo.SetResult();
            Assert.Equal("[DONE]", await reader.ReadDataAsync().WaitAsync(Prompt));
            Assert.Null(await reader.ReadDataAsync().WaitAsync(Prompt));
        }
        finally
        {
            secondMayGo.TrySetResult();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task BackendSendsRateLimitHeaders_TheGatewaysAloneWhenItLimits_TheBackendsOtherwise(bool limited)
    {
        await using var backend = await TestBackend.StartAsync("pool", (context, _) =>
        {
            context.Response.Headers["X-RateLimit-Limit-Requests"] = "50";
            context.Response.Headers["x-ratelimit-remaining-requests"] = new Microsoft.Extensions.Primitives.StringValues(["49", "48"]);
            context.Response.Headers["x-ratelimit-limit-tokens"] = "7000";
            return context.Response.WriteAsJsonAsync(new { ok = true });
        });
        var endpoint = TestGateway.Endpoint("m", "pool", isDefault: true);
        if (limited)
        {
            endpoint["Limits"] = new JsonObject { ["RequestsPerMinute"] = 3 }; // requests only: the gateway writes no token headers
        }

        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(new Dictionary<string, string[]> { ["pool"] = [backend.Url] }, [endpoint]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        if (limited)
        {
            Assert.Equal(["3"], Values(response, "x-ratelimit-limit-requests"));
            Assert.Equal(["2"], Values(response, "x-ratelimit-remaining-requests"));
            Assert.Single(Values(response, "x-ratelimit-reset-requests"));
        }
        else
        {
            Assert.Equal(["50"], Values(response, "x-ratelimit-limit-requests"));
            Assert.Equal(["49", "48"], Values(response, "x-ratelimit-remaining-requests"));
        }

        Assert.Equal(["7000"], Values(response, "x-ratelimit-limit-tokens")); // a kind the gateway did not limit: the backend's
    }
}
