using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Tests.Admin;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;
using static ModelRouting.Tests.Keys.ClientKeyTests;

namespace ModelRouting.Tests.Keys;

/// <summary>SPEC §14 end to end: limits per key and per endpoint, the 429 and the x-ratelimit-* headers, usage.</summary>
public sealed class RateLimitTests
{
    private static readonly string[] s_sixHeaders =
    [
        "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
    ];

    private static JsonObject Limits(int? rpm = null, long? tpm = null, int? concurrent = null)
    {
        var node = new JsonObject();
        if (rpm is not null)
        {
            node["RequestsPerMinute"] = rpm;
        }

        if (tpm is not null)
        {
            node["TokensPerMinute"] = tpm;
        }

        if (concurrent is not null)
        {
            node["MaxConcurrent"] = concurrent;
        }

        return node;
    }

    private static Task<TestGateway> StartAsync(TestBackend pool, JsonArray keys, JsonObject? endpointLimits = null, JsonObject? modelRouting = null)
    {
        var endpoint = TestGateway.Endpoint("m", "pool", isDefault: true);
        if (endpointLimits is not null)
        {
            endpoint["Limits"] = endpointLimits;
        }

        modelRouting ??= [];
        modelRouting["Keys"] = keys;
        return TestGateway.StartAsync(TestGateway.Config(new Dictionary<string, string[]> { ["pool"] = [pool.Url] }, [endpoint], modelRouting));
    }

    // A backend that answers "hi", except that a request whose body says "hold" waits for release (entered says it came).
    private static Task<TestBackend> HoldingBackendAsync(string name, TaskCompletionSource entered, TaskCompletionSource release)
    {
        var responder = OpenAIChatResponder("hi");
        return TestBackend.StartAsync(name, async (context, recorded) =>
        {
            if (recorded.BodyText.Contains("hold", StringComparison.Ordinal))
            {
                entered.TrySetResult();
                await release.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }

            await responder(context, recorded);
        });
    }

    private static async Task<HttpResponseMessage> ChatAsync(TestGateway gateway, string? secret, string? body = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(body ?? E2EHelpers.Chat("m"), Encoding.UTF8, "application/json"),
        };
        if (secret is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        }

        return await gateway.Client.SendAsync(request);
    }

    [Fact]
    public async Task RequestsPerMinute_NextIs429_WithRetryAfterAndTheSixHeaders_AlsoOn200s()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await StartAsync(pool, [Key("k", "sk-k", ["*"], Limits(rpm: 3, tpm: 100_000))]);

        for (var i = 0; i < 3; i++)
        {
            using var ok = await ChatAsync(gateway, "sk-k");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            foreach (var header in s_sixHeaders)
            {
                Assert.True(ok.Headers.Contains(header), header);
            }

            Assert.Equal("3", ok.Headers.GetValues("x-ratelimit-limit-requests").Single());
            Assert.Equal((2 - i).ToString(System.Globalization.CultureInfo.InvariantCulture), ok.Headers.GetValues("x-ratelimit-remaining-requests").Single());
            Assert.Equal("100000", ok.Headers.GetValues("x-ratelimit-limit-tokens").Single());
        }

        using var refused = await ChatAsync(gateway, "sk-k");
        var error = await E2EHelpers.AssertErrorAsync(refused, HttpStatusCode.TooManyRequests, "requests", "rate_limit_exceeded");
        Assert.Contains("requests per minute", error.Message, StringComparison.Ordinal);
        var retryAfter = int.Parse(refused.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 61);
        foreach (var header in s_sixHeaders)
        {
            Assert.True(refused.Headers.Contains(header), header);
        }

        Assert.Equal("0", refused.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        Assert.EndsWith("s", refused.Headers.GetValues("x-ratelimit-reset-requests").Single(), StringComparison.Ordinal);
        Assert.Equal(3, pool.Requests.Count);
    }

    [Fact]
    public async Task Sdk_Sees429_AsTheOpenAIRateLimitError()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await StartAsync(pool, [Key("k", "sk-k", ["*"], Limits(rpm: 1))]);
        var chat = Sdk(gateway, "sk-k").GetChatClient("m");

        await chat.CompleteChatAsync("hello");
        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync("hello"));
        Assert.Equal(429, e.Status);
        Assert.Contains("rate_limit_exceeded", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.GetRawResponse()?.Headers.TryGetValue("Retry-After", out var value) == true ? value : null);
    }

    [Fact]
    public async Task TokensPerMinute_ReservationIsCorrectedToUsage_SoSmallRequestsKeepFlowing()
    {
        // Each request reserves its prompt + DefaultOutputTokens (400) against 1,000 tokens per minute; the backend
        // reports 7 tokens used, so after the correction there is room again. Without it, the third would be refused.
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await StartAsync(pool, [Key("k", "sk-k", ["*"], Limits(tpm: 1000))], modelRouting: new JsonObject
        {
            ["Limits"] = new JsonObject { ["DefaultOutputTokens"] = 400 },
        });

        for (var i = 0; i < 10; i++)
        {
            using var ok = await ChatAsync(gateway, "sk-k");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // A request that cannot fit even in an empty minute says so.
        using var tooLarge = await ChatAsync(gateway, "sk-k", """{"model":"m","max_tokens":2000,"messages":[{"role":"user","content":"hi"}]}""");
        var error = await E2EHelpers.AssertErrorAsync(tooLarge, HttpStatusCode.TooManyRequests, "tokens", "rate_limit_exceeded");
        Assert.Contains("Request too large", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokensPerMinute_WithoutCorrection_WouldRefuse_ResponsesWithoutUsageKeepTheEstimate()
    {
        // The backend reports no usage: each request keeps its reservation (prompt + 400), so the third is refused.
        await using var pool = await TestBackend.StartAsync("pool", async (context, _) =>
            await context.Response.WriteAsJsonAsync(new { id = "x", choices = new[] { new { index = 0, message = new { role = "assistant", content = "no usage" } } } }));
        await using var gateway = await StartAsync(pool, [Key("k", "sk-k", ["*"], Limits(tpm: 1000))], modelRouting: new JsonObject
        {
            ["Limits"] = new JsonObject { ["DefaultOutputTokens"] = 400 },
        });

        using (var first = await ChatAsync(gateway, "sk-k"))
        using (var second = await ChatAsync(gateway, "sk-k"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }

        using var third = await ChatAsync(gateway, "sk-k");
        await E2EHelpers.AssertErrorAsync(third, HttpStatusCode.TooManyRequests, "tokens", "rate_limit_exceeded");
    }

    [Fact]
    public async Task MaxConcurrent_SecondWhileFirstInFlight_Is429_ThenFreed()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var pool = await HoldingBackendAsync("pool", entered, release);
        await using var gateway = await StartAsync(pool, [Key("k", "sk-k", ["*"], Limits(concurrent: 1))]);

        var held = ChatAsync(gateway, "sk-k", """{"model":"m","messages":[{"role":"user","content":"hold"}]}""");
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        using (var second = await ChatAsync(gateway, "sk-k"))
        {
            var error = await E2EHelpers.AssertErrorAsync(second, HttpStatusCode.TooManyRequests, "requests", "rate_limit_exceeded");
            Assert.Contains("concurrent", error.Message, StringComparison.Ordinal);
        }

        release.SetResult();
        using (var first = await held)
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var third = await ChatAsync(gateway, "sk-k");
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
    }

    [Fact]
    public async Task EndpointLimits_HoldOverEveryClient_EvenOnAnOpenGateway()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await StartAsync(pool, [], endpointLimits: Limits(rpm: 2));

        for (var i = 0; i < 2; i++)
        {
            using var ok = await ChatAsync(gateway, null);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("2", ok.Headers.GetValues("x-ratelimit-limit-requests").Single());
        }

        using var refused = await ChatAsync(gateway, null);
        var error = await E2EHelpers.AssertErrorAsync(refused, HttpStatusCode.TooManyRequests, "requests", "rate_limit_exceeded");
        Assert.Contains("endpoint:m", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failover_ToAFallbackWithLimits_IsAdmittedAgainstThem_AndLetsGoOfTheFailedEndpointAtOnce()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var live = await HoldingBackendAsync("live", entered, release);
        var primary = TestGateway.Endpoint("m", "dead", isDefault: true);
        primary["Limits"] = Limits(concurrent: 1);
        primary["Fallbacks"] = new JsonArray("f");
        var fallback = TestGateway.Endpoint("f", "live", upstream: "up-f");
        fallback["Limits"] = Limits(rpm: 3);
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["dead"] = [DeadLoopbackUrl()], ["live"] = [live.Url] },
            [primary, fallback],
            new JsonObject { ["Failover"] = new JsonObject { ["Cooldown"] = "00:00:30" } }));

        // The first request fails on m and is served by f, where it stays: m's one concurrent slot is not its any more.
        var held = ChatAsync(gateway, null, """{"model":"m","messages":[{"role":"user","content":"hold"}]}""");
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        using (var second = await ChatAsync(gateway, null))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
            Assert.Equal("f", second.Headers.GetValues("x-gateway-endpoint").Single());
            Assert.Equal("3", second.Headers.GetValues("x-ratelimit-limit-requests").Single()); // f's limit, which counted it
            Assert.Equal("1", second.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        }

        release.SetResult();
        using (var first = await held)
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("failover", first.Headers.GetValues("x-gateway-fallback").Single());
        }

        // f's own limit, 3 requests per minute, holds over what fails over to it.
        using (var third = await ChatAsync(gateway, null))
        {
            Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        }

        using var fourth = await ChatAsync(gateway, null);
        var error = await E2EHelpers.AssertErrorAsync(fourth, HttpStatusCode.TooManyRequests, "requests", "rate_limit_exceeded");
        Assert.Contains("endpoint:f", error.Message, StringComparison.Ordinal);
        Assert.True(fourth.Headers.Contains("Retry-After"));
        Assert.Equal("3", fourth.Headers.GetValues("x-ratelimit-limit-requests").Single());
        Assert.Equal("f", fourth.Headers.GetValues("x-gateway-endpoint").Single());
        Assert.Equal("0", fourth.Headers.GetValues("x-gateway-attempts").Single()); // m cooling down: not tried again
        Assert.Equal(3, live.Requests.Count);
        Assert.All(live.Requests, r => Assert.Equal("up-f", r.Model));
    }

    [Fact]
    public async Task Failover_ToAFallbackWhoseBackendsAreAllCoolingDown_DoesNotCountAgainstItsLimits()
    {
        var primary = TestGateway.Endpoint("m", "dead", isDefault: true);
        primary["Fallbacks"] = new JsonArray("f");
        var fallback = TestGateway.Endpoint("f", "also-dead");
        fallback["Limits"] = Limits(rpm: 2);
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["dead"] = [DeadLoopbackUrl()], ["also-dead"] = [DeadLoopbackUrl()] },
            [primary, fallback],
            new JsonObject { ["Failover"] = new JsonObject { ["Cooldown"] = "00:00:30" } }));

        for (var i = 0; i < 4; i++)
        {
            // The first tries both and cools them down; the others are answered at once. None is f's 429.
            using var response = await ChatAsync(gateway, null);
            await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "upstream_unavailable");
            Assert.NotNull(response.Headers.RetryAfter);
        }
    }

    [Fact]
    public async Task Usage_PerKeyAndEndpoint_FromTheBackendsUsage_StreamingIncluded_AndAbortedStreamsGiveBack()
    {
        var hang = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var responder = OpenAIChatResponder("one two three");
        await using var pool = await TestBackend.StartAsync("pool", async (context, recorded) =>
        {
            if (recorded.BodyText.Contains("abort-me", StringComparison.Ordinal))
            {
                StartEventStream(context.Response);
                await WriteEventAsync(context.Response, """{"choices":[{"index":0,"delta":{"content":"a"}}]}""", context.RequestAborted);
                await WriteEventAsync(context.Response, """{"choices":[{"index":0,"delta":{"content":"b"}}]}""", context.RequestAborted);
                await hang.Task.WaitAsync(TimeSpan.FromSeconds(30), context.RequestAborted);
                return;
            }

            await responder(context, recorded);
        });
        var modelRouting = AdminTestSupport.AdminSection();
        modelRouting["Limits"] = new JsonObject { ["DefaultOutputTokens"] = 100 };
        await using var gateway = await StartAsync(pool, [Key("k", "sk-k", ["*"], Limits(tpm: 100_000))], modelRouting: modelRouting);

        using (var plain = await ChatAsync(gateway, "sk-k"))
        {
            Assert.Equal(HttpStatusCode.OK, plain.StatusCode); // usage 3 + 4
        }

        using (var request = StreamingPost("/v1/chat/completions", StreamingChatBody("m", "hello")))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-k");
            using var stream = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new SseReader(await stream.Content.ReadAsStreamAsync());
            var events = await reader.ReadAllAsync().WaitAsync(Prompt);
            Assert.DoesNotContain(events, e => e.Contains("\"usage\"", StringComparison.Ordinal)); // stripped: the client did not ask
        }

        // A stream the client abandons after two events: its prompt and two tokens are counted, not the reservation.
        using (var cts = new CancellationTokenSource())
        using (var request = StreamingPost("/v1/chat/completions", StreamingChatBody("m", "abort-me")))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-k");
            using var stream = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var reader = new SseReader(await stream.Content.ReadAsStreamAsync(cts.Token));
            await reader.ReadDataAsync(cts.Token);
            await reader.ReadDataAsync(cts.Token);
            await cts.CancelAsync();
        }

        var usage = await E2EHelpers.PollAsync(
            async () => (await gateway.ManagementClient.AdminAsync(HttpMethod.Get, "/admin/usage")).Body!,
            body => body["keys"]?["k"]?["requests"]?.GetValue<long>() == 3,
            "three requests in the usage");
        var key = usage["keys"]!["k"]!;
        var words = "one two three model=m".Split(' ').Length;
        var abortedPrompt = usage["keys"]!["k"]!["prompt_tokens"]!.GetValue<long>() - 3 - 3;
        Assert.True(abortedPrompt > 0, "the aborted stream's prompt estimate is counted");
        Assert.Equal(4 + words + 2, key["completion_tokens"]!.GetValue<long>());
        Assert.Equal(1, key["requests_without_usage"]!.GetValue<long>());
        Assert.Equal(3, usage["endpoints"]!["m"]!["requests"]!.GetValue<long>());
        hang.TrySetResult();
    }
}

/// <summary>SPEC §14: usage above the reservation is charged, so the next request waits for it.</summary>
public sealed class RateLimitOverrunTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task UsageAboveTheReservation_IsCharged_TheNextRequestIsRefused(bool stream)
    {
        await using var pool = await TestBackend.StartAsync("pool", async (context, recorded) =>
        {
            const string usage = """{"prompt_tokens":400,"completion_tokens":500,"total_tokens":900}""";
            if (recorded.BodyText.Contains("\"stream\":true", StringComparison.Ordinal))
            {
                StartEventStream(context.Response);
                await WriteEventAsync(context.Response, """{"choices":[{"index":0,"delta":{"content":"a"}}]}""", context.RequestAborted);
                await WriteEventAsync(context.Response, """{"choices":[],"usage":""" + usage + "}", context.RequestAborted);
                await WriteEventAsync(context.Response, "[DONE]", context.RequestAborted);
                return;
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("""{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"usage":""" + usage + "}");
        });
        var modelRouting = new JsonObject
        {
            ["Limits"] = new JsonObject { ["DefaultOutputTokens"] = 100 },
            ["Keys"] = new JsonArray(Key("k", "sk-k", ["*"], new JsonObject { ["TokensPerMinute"] = 1000 })),
        };
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [pool.Url] }, [TestGateway.Endpoint("m", "pool", isDefault: true)], modelRouting));
        var body = stream ? StreamingChatBody("m", "hi") : E2EHelpers.Chat("m");

        async Task<HttpResponseMessage> Send()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-k");
            var response = await gateway.Client.SendAsync(request);
            await response.Content.LoadIntoBufferAsync();
            return response;
        }

        using (var first = await Send())
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var second = await Send();
        await E2EHelpers.AssertErrorAsync(second, HttpStatusCode.TooManyRequests, "tokens", "rate_limit_exceeded");
        Assert.Equal("100", second.Headers.GetValues("x-ratelimit-remaining-tokens").Single());
    }
}

/// <summary>SPEC §14 with §15: refusals and key usage show in the metrics and the admin usage of the real host.</summary>
public sealed class RateLimitMetricsTests
{
    [Fact]
    public async Task RateLimitRefusals_AndUnauthorized_AreCounted_ByCode()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        var modelRouting = AdminTestSupport.AdminSection();
        modelRouting["Keys"] = new JsonArray(Key("k", "sk-k", ["*"], new JsonObject { ["RequestsPerMinute"] = 1 }));
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [pool.Url] }, [TestGateway.Endpoint("m", "pool", isDefault: true)], modelRouting));

        for (var i = 0; i < 3; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(E2EHelpers.Chat("m"), Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-k");
            using var response = await gateway.Client.SendAsync(request);
            Assert.Equal(i == 0 ? HttpStatusCode.OK : HttpStatusCode.TooManyRequests, response.StatusCode);
        }

        using (var anonymous = await gateway.Client.PostAsync("/v1/chat/completions", new StringContent(E2EHelpers.Chat("m"), Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        var scrape = await ModelRouting.Tests.Observability.MetricsEndToEndTests.ScrapeUntilAsync(gateway, s => s.Sum("gateway_requests_total") >= 4);
        Assert.Equal(2, scrape.Sum("gateway_rate_limit_refusals_total", ("gateway_rate_limit_type", "requests")));
        Assert.Equal(2, scrape.Sum("gateway_requests_total", ("error_type", "rate_limit_exceeded")));
        Assert.Equal(1, scrape.Sum("gateway_requests_total", ("error_type", "invalid_api_key")));
    }
}
