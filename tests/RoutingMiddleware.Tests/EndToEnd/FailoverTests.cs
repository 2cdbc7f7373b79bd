using System.ClientModel;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;
using OpenAI;
using OpenAI.Chat;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>
/// SPEC §13 with real Kestrel backends: a failed attempt before the first response byte is retried on another
/// destination, then on the endpoint's fallbacks; failed destinations cool down (Retry-After honoured); a stream
/// that breaks ends with an OpenAI-shaped error event and no [DONE].
/// </summary>
public sealed class FailoverTests
{
    private static JsonObject Failover(string cooldown = "00:00:05") => new() { ["Failover"] = new JsonObject { ["Cooldown"] = cooldown } };

    private const string HundredTokensOut = """{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}""";

    // The first endpoint of a TestGateway.Config, given fallbacks; the gateway started on it.
    private static Task<TestGateway> StartWithFallbacksAsync(JsonObject config, params string[] fallbacks)
    {
        config["ModelRouting"]!["Endpoints"]![0]!["Fallbacks"] = new JsonArray([.. fallbacks.Select(f => (JsonNode)f)]);
        return TestGateway.StartAsync(config);
    }

    private static int Attempts(HttpResponseMessage response) =>
        int.Parse(response.Headers.GetValues("x-gateway-attempts").Single(), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task DestinationKilledAndRestartedOnTheSamePort_UnderLoad_NoRequestFails()
    {
        await using var a = await TestBackend.StartAsync("a");
        var url = $"http://127.0.0.1:{E2EHelpers.ClosedLoopbackPort()}";
        var b = await TestBackend.StartAsync("b", url: url);
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [a.Url, url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true)],
            Failover(cooldown: "00:00:00.300"),
            cluster: c => c["LoadBalancingPolicy"] = "RoundRobin"));

        var statuses = new ConcurrentQueue<HttpStatusCode>();
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m"));
                statuses.Enqueue(response.StatusCode);
            }
        })).ToList();
        try
        {
            await E2EHelpers.PollAsync(() => Task.FromResult(b.Requests.Count), n => n >= 20, "b to serve");
            await b.DisposeAsync();
            var killedAt = statuses.Count;
            await E2EHelpers.PollAsync(() => Task.FromResult(statuses.Count), n => n >= killedAt + 200, "requests while b is down");
            b = await TestBackend.StartAsync("b", url: url);
            await E2EHelpers.PollAsync(() => Task.FromResult(b.Requests.Count), n => n >= 20, "b to serve again after its restart");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(clients);
            await b.DisposeAsync();
        }

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
    }

    [Fact]
    public async Task OnlyDestinationDead_ServedByTheFallback_WithItsUpstreamModel_AndHeaders()
    {
        await using var live = await TestBackend.StartAsync("live");
        await using var gateway = await StartWithFallbacksAsync(
            TestGateway.Config(
                new Dictionary<string, string[]> { ["dead"] = [DeadLoopbackUrl()], ["live"] = [live.Url] },
                [TestGateway.Endpoint("m", "dead", isDefault: true), TestGateway.Endpoint("f", "live", upstream: "up-f")],
                Failover()),
            "f");

        using (var first = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("f", first.Headers.GetValues("x-gateway-endpoint").Single());
            Assert.Equal("failover", first.Headers.GetValues("x-gateway-fallback").Single());
            Assert.Equal(2, Attempts(first));
        }

        // The dead destination cools down: the next request goes to the fallback without trying it.
        using (var second = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m")))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
            Assert.Equal(1, Attempts(second));
            Assert.Equal("failover", second.Headers.GetValues("x-gateway-fallback").Single());
        }

        Assert.All(live.Requests, r => Assert.Equal("up-f", r.Model));
        Assert.Equal(2, live.Requests.Count);
    }

    [Fact]
    public async Task FallbackTooSmallForTheRequest_IsNotTried()
    {
        await using var small = await TestBackend.StartAsync("small");
        await using var gateway = await StartWithFallbacksAsync(
            TestGateway.Config(
                new Dictionary<string, string[]> { ["dead"] = [DeadLoopbackUrl()], ["small"] = [small.Url] },
                [TestGateway.Endpoint("m", "dead", maxContext: 8000, isDefault: true), TestGateway.Endpoint("tiny", "small", maxContext: 16)],
                Failover()),
            "tiny");

        using var response = await gateway.PostRawAsync("/v1/chat/completions", HundredTokensOut);

        await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "upstream_unavailable");
        Assert.Empty(small.Requests);
    }

    [Fact]
    public async Task NamedModelTooSmall_WithFallbacks_IsRefusedBeforeAnyAttempt()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await StartWithFallbacksAsync(
            TestGateway.Config(
                new Dictionary<string, string[]> { ["c"] = [backend.Url] },
                [TestGateway.Endpoint("m", "c", maxContext: 16, isDefault: true), TestGateway.Endpoint("big", "c", maxContext: 100_000)],
                Failover()),
            "big");

        using var response = await gateway.PostRawAsync("/v1/chat/completions", HundredTokensOut);

        await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error", "context_length_exceeded");
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task EveryDestinationDead_503WithRetryAfter_AndNoFurtherConnectionsDuringTheCooldown()
    {
        // A port that accepts and closes at once: the backend "dies" on every request; accepts are counted.
        using var dead = new TcpListener(IPAddress.Loopback, 0);
        dead.Start();
        var accepts = 0;
        using var stop = new CancellationTokenSource();
        var acceptLoop = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var socket = await dead.AcceptSocketAsync(stop.Token);
                    Interlocked.Increment(ref accepts);
                    socket.LingerState = new LingerOption(true, 0);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["dead"] = [$"http://127.0.0.1:{((IPEndPoint)dead.LocalEndpoint).Port}"] },
            [TestGateway.Endpoint("m", "dead", isDefault: true)],
            Failover(cooldown: "00:00:30")));

        for (var i = 0; i < 6; i++)
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m"));
            var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "upstream_unavailable");
            Assert.InRange(response.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 1, 30);
            Assert.Contains("cooling down", error.Message, StringComparison.Ordinal);
        }

        await stop.CancelAsync();
        await acceptLoop;
        Assert.Equal(1, accepts);
    }

    [Fact]
    public async Task RetryableStatus_IsRetriedElsewhere_AndItsRetryAfterHonoured()
    {
        await using var busy = await TestBackend.StartAsync("busy", (context, _) =>
        {
            context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            context.Response.Headers.RetryAfter = "30";
            return context.Response.WriteAsync("""{"error":{"message":"slow down"}}""");
        });
        await using var ok = await TestBackend.StartAsync("ok");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [busy.Url, ok.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true)],
            Failover(cooldown: "00:00:00.100"),
            cluster: c => c["LoadBalancingPolicy"] = "RoundRobin"));

        for (var i = 0; i < 10; i++)
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("ok", response.Headers.GetValues("x-backend").Single());
        }

        // Its Retry-After (30 s) outlasts the 100 ms cooldown: the busy destination was asked once.
        Assert.Single(busy.Requests);
    }

    [Fact]
    public async Task NonRetryableStatus_PassesThrough_OnTheFirstAttempt()
    {
        await using var backend = await TestBackend.StartAsync("b", (context, _) =>
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return context.Response.WriteAsync("""{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"bad"}}""");
        });
        await using var other = await TestBackend.StartAsync("other");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true)],
            Failover()));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(1, Attempts(response));
        Assert.Contains("\"bad\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackendDiesAfterThreeChunks_StreamEndsWithAnErrorEvent_NoDone()
    {
        await using var backend = await TestBackend.StartAsync("b", DiesAfterThreeChunks);
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true)]));

        using var request = StreamingPost("/v1/chat/completions", StreamingChatBody("m", "hi"));
        using var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = new List<string>();
        var ended = false;
        try
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    events.Add(line["data: ".Length..]);
                }
            }

            ended = true;
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            // The connection is aborted after the error event: the stream does not end as if complete.
        }

        Assert.Equal(4, events.Count);
        Assert.All(events.Take(3), e => Assert.Equal("chat.completion.chunk", JsonNode.Parse(e)!["object"]!.GetValue<string>()));
        var error = JsonNode.Parse(events[3])!["error"]!;
        Assert.Equal("upstream_disconnected", error["code"]!.GetValue<string>());
        Assert.Equal("server_error", error["type"]!.GetValue<string>());
        Assert.DoesNotContain("[DONE]", events);
        Assert.False(ended, "the stream ended as if it were complete");
    }

    [Fact]
    public async Task BackendDiesMidStream_TheOpenAISdkRaises_InsteadOfAShortAnswer()
    {
        await using var backend = await TestBackend.StartAsync("b", DiesAfterThreeChunks);
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true)]));
        var client = new OpenAIClient(new ApiKeyCredential("test"), new OpenAIClientOptions { Endpoint = new Uri(gateway.BaseAddress, "/v1"), NetworkTimeout = TimeSpan.FromSeconds(30) });
        var text = new StringBuilder();

        var raised = await Record.ExceptionAsync(async () =>
        {
            await foreach (var update in client.GetChatClient("m").CompleteChatStreamingAsync("hi"))
            {
                foreach (var part in update.ContentUpdate)
                {
                    text.Append(part.Text);
                }
            }
        });

        Assert.NotNull(raised);
        Assert.Equal("one two three", text.ToString());
    }

    [Fact]
    public async Task BackendDiesMidBody_NonStreaming_TheClientSeesABrokenResponse()
    {
        await using var backend = await TestBackend.StartAsync("b", async (context, _) =>
        {
            context.Response.ContentLength = 1000;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"id\":\"chatcmpl-1\",");
            await context.Response.Body.FlushAsync();
            await Task.Delay(200);
            context.Abort();
        });
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true)]));

        var raised = await Record.ExceptionAsync(async () =>
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m"));
            await response.Content.ReadAsStringAsync();
        });

        Assert.True(raised is HttpRequestException or IOException, $"expected a broken response, got {raised?.GetType().Name ?? "a complete one"}");
    }

    // Three chunks ("one", " two", " three"), then the connection is aborted without [DONE].
    private static async Task DiesAfterThreeChunks(HttpContext context, RecordedRequest recorded)
    {
        StartEventStream(context.Response);
        string[] words = ["one", " two", " three"];
        foreach (var word in words)
        {
            var chunk = new JsonObject
            {
                ["id"] = "chatcmpl-1",
                ["object"] = "chat.completion.chunk",
                ["created"] = 1,
                ["model"] = "m",
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = new JsonObject { ["content"] = word }, ["finish_reason"] = null }),
            };
            await WriteEventAsync(context.Response, chunk.ToJsonString(), context.RequestAborted);
        }

        // A flush hands the bytes to Kestrel's transport, not to the wire; an abort right away would reset the
        // connection before they are sent (the gateway would rightly retry a backend that sent nothing).
        await Task.Delay(200);
        context.Abort();
    }
}
