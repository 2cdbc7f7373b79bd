using System.Net;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>SPEC §7: responses, SSE included, pass through unbuffered; a client that disconnects cancels the upstream request.</summary>
public sealed class StreamingTests
{
    private static JsonObject OneModel(TestBackend front, TestBackend backend) => TestGateway.Config(
        new Dictionary<string, string[]> { ["front"] = [front.Url], ["pool"] = [backend.Url] },
        [TestGateway.Endpoint("front-model", "front", isDefault: true), TestGateway.Endpoint("chat:stream", "pool", upstream: "up-stream")]);

    [Fact]
    public async Task Sse_FirstChunkReachesClient_BeforeBackendSendsSecond()
    {
        var secondMayGo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var backendSentSecond = false;
        await using var front = await TestBackend.StartAsync("front");
        await using var backend = await TestBackend.StartAsync("pool", async (context, _) =>
        {
            StartEventStream(context.Response);
            await WriteEventAsync(context.Response, "chunk-1", context.RequestAborted);
            await secondMayGo.Task.WaitAsync(TimeSpan.FromSeconds(30), context.RequestAborted);
            backendSentSecond = true;
            await WriteEventAsync(context.Response, "chunk-2", context.RequestAborted);
            await WriteEventAsync(context.Response, "[DONE]", context.RequestAborted);
        });
        await using var gateway = await TestGateway.StartAsync(OneModel(front, backend));
        try
        {
            using var request = StreamingPost("/v1/chat/completions", StreamingChatBody("chat:stream", "hello"));
            using var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Prompt);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("chat:stream", response.Headers.GetValues("x-gateway-endpoint").Single());
            await using var stream = await response.Content.ReadAsStreamAsync();
            using var reader = new SseReader(stream);

            // The backend is parked before its second chunk: the first one can only arrive if the gateway
            // forwards it without waiting for more.
            Assert.Equal("chunk-1", await reader.ReadDataAsync().WaitAsync(Prompt));
            Assert.False(backendSentSecond);

            secondMayGo.SetResult();
            Assert.Equal("chunk-2", await reader.ReadDataAsync().WaitAsync(Prompt));
            Assert.Equal("[DONE]", await reader.ReadDataAsync().WaitAsync(Prompt));
            Assert.Null(await reader.ReadDataAsync().WaitAsync(Prompt));
        }
        finally
        {
            secondMayGo.TrySetResult();
        }

        var seen = Assert.Single(backend.Requests);
        Assert.Equal("up-stream", seen.Model);
        Assert.Empty(front.Requests);
    }

    [Fact]
    public async Task Sse_HundredConcurrentStreams_AllCompleteWithEveryChunkIntact()
    {
        const int streams = 100;
        const int chunks = 6;
        var started = 0;
        var allStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var front = await TestBackend.StartAsync("front");
        await using var backend = await TestBackend.StartAsync("pool", async (context, recorded) =>
        {
            var name = LastUserText(recorded);
            StartEventStream(context.Response);
            await WriteEventAsync(context.Response, Payload(name, 0), context.RequestAborted);

            // Hold every stream open until all of them have started: the 100 streams are in flight at once.
            if (Interlocked.Increment(ref started) == streams)
            {
                allStarted.TrySetResult();
            }

            await allStarted.Task.WaitAsync(TimeSpan.FromSeconds(30), context.RequestAborted);
            for (var k = 1; k < chunks; k++)
            {
                await WriteEventAsync(context.Response, Payload(name, k), context.RequestAborted);
            }

            await WriteEventAsync(context.Response, "[DONE]", context.RequestAborted);
        });
        await using var gateway = await TestGateway.StartAsync(OneModel(front, backend));

        async Task<(string Name, HttpStatusCode Status, List<string> Events)> RunAsync(int i)
        {
            var name = $"stream-{i:D3}";
            using var request = StreamingPost("/v1/chat/completions", StreamingChatBody("chat:stream", name));
            using var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            await using var stream = await response.Content.ReadAsStreamAsync();
            using var reader = new SseReader(stream);
            return (name, response.StatusCode, await reader.ReadAllAsync());
        }

        var results = await Task.WhenAll(Enumerable.Range(0, streams).Select(RunAsync)).WaitAsync(Scenario);

        Assert.True(allStarted.Task.IsCompletedSuccessfully, $"only {started} of {streams} streams were open at once");
        foreach (var (name, status, events) in results)
        {
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal([.. Enumerable.Range(0, chunks).Select(k => Payload(name, k)), "[DONE]"], events);
        }

        Assert.Equal(streams, backend.Requests.Count);
        Assert.All(backend.Requests, r => Assert.Equal("up-stream", r.Model));
    }

    [Fact]
    public async Task ClientAbortMidStream_CancelsBackendRequest()
    {
        var backendAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var front = await TestBackend.StartAsync("front");
        await using var backend = await TestBackend.StartAsync("pool", async (context, _) =>
        {
            context.RequestAborted.Register(() => backendAborted.TrySetResult());
            StartEventStream(context.Response);
            await WriteEventAsync(context.Response, "chunk-1", context.RequestAborted);
            try
            {
                // A long generation: it only ends early if the gateway cancels the request.
                await Task.Delay(TimeSpan.FromSeconds(30), context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            await WriteEventAsync(context.Response, "[DONE]", CancellationToken.None);
        });
        await using var gateway = await TestGateway.StartAsync(OneModel(front, backend));

        using (var cts = new CancellationTokenSource())
        {
            using var request = StreamingPost("/v1/chat/completions", StreamingChatBody("chat:stream", "abort me"));
            using var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).WaitAsync(Prompt);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var stream = await response.Content.ReadAsStreamAsync(cts.Token);
            using var reader = new SseReader(stream);
            Assert.Equal("chunk-1", await reader.ReadDataAsync(cts.Token).WaitAsync(Prompt));

            // Cancel a pending read: HttpClient closes the connection instead of draining the response.
            var pending = reader.ReadDataAsync(cts.Token);
            await cts.CancelAsync();
            var thrown = await Record.ExceptionAsync(() => pending.WaitAsync(Prompt));
            Assert.True(thrown is OperationCanceledException or IOException, $"expected the read to be cancelled, got {thrown}");
        }

        var observed = await Record.ExceptionAsync(() => backendAborted.Task.WaitAsync(Prompt));
        Assert.True(observed is null, "the backend request was not aborted within 5 s after the client disconnected");

        // The gateway keeps serving afterwards.
        using var next = await gateway.PostRawAsync("/v1/chat/completions", """{"model":"front-model","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task ClientAbortBeforeFirstByte_CancelsBackendRequest()
    {
        var backendGotRequest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var backendAborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var front = await TestBackend.StartAsync("front");
        await using var backend = await TestBackend.StartAsync("pool", async (context, _) =>
        {
            context.RequestAborted.Register(() => backendAborted.TrySetResult());
            backendGotRequest.TrySetResult();
            try
            {
                // A long prefill: no byte of the response is sent yet.
                await Task.Delay(TimeSpan.FromSeconds(30), context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            StartEventStream(context.Response);
            await WriteEventAsync(context.Response, "[DONE]", CancellationToken.None);
        });
        await using var gateway = await TestGateway.StartAsync(OneModel(front, backend));

        using (var cts = new CancellationTokenSource())
        {
            using var request = StreamingPost("/v1/chat/completions", StreamingChatBody("chat:stream", "abort during prefill"));
            var send = gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            await backendGotRequest.Task.WaitAsync(Prompt);
            await cts.CancelAsync();
            var thrown = await Record.ExceptionAsync(() => send.WaitAsync(Prompt));
            Assert.IsAssignableFrom<OperationCanceledException>(thrown);
        }

        var observed = await Record.ExceptionAsync(() => backendAborted.Task.WaitAsync(Prompt));
        Assert.True(observed is null, "the backend request was not aborted within 5 s after the client disconnected");
    }

    private static string Payload(string name, int k) =>
        new JsonObject { ["stream"] = name, ["index"] = k, ["text"] = string.Concat(Enumerable.Repeat($"{name}/{k};", 40)) }.ToJsonString();
}
