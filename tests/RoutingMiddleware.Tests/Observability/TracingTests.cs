using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Observability;

/// <summary>
/// SPEC §15 traces: one <c>gateway.route</c> activity per routed request with the decision as attributes, joined to
/// YARP's forwarding activity (YARP 2.3 starts <c>proxy.forwarder</c> around its whole proxy pipeline, so it is the
/// parent, and ours the span the backend call is made under), and the W3C trace context forwarded to the backend.
/// </summary>
public sealed class TracingTests
{
    [Fact]
    public async Task RoutedRequest_OneActivityWithTheDecision_JoinedToYarps_TraceContextReachesTheBackend()
    {
        var traceId = ActivityTraceId.CreateRandom();
        var clientSpan = ActivitySpanId.CreateRandom();
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "ModelRouting" or "Yarp.ReverseProxy" or "System.Net.Http",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.TraceId == traceId)
                {
                    stopped.Enqueue(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        await using var backend = await TestBackend.StartAsync("pool");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true, upstream: "org/m", aliases: "gpt-x")]));

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(MetricsEndToEndTests.Chat("gpt-x", stream: false), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{clientSpan}-01");
        using var response = await gateway.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // The backend got the client's trace, with a parent span the gateway made (not the client's own span).
        var seen = Assert.Single(backend.Requests);
        var traceparent = seen.Headers["traceparent"].Split('-');
        Assert.Equal(4, traceparent.Length);
        Assert.Equal(traceId.ToHexString(), traceparent[1]);
        Assert.NotEqual(clientSpan.ToHexString(), traceparent[2]);

        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!stopped.Any(a => a.Source.Name == "ModelRouting") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        var route = Assert.Single(stopped, a => a.Source.Name == "ModelRouting");
        Assert.Equal("gateway.route", route.OperationName);
        Assert.Equal("chat m", route.DisplayName);
        Assert.Equal("chat", route.GetTagItem("gen_ai.operation.name"));
        Assert.Equal("gpt-x", route.GetTagItem("gen_ai.request.model"));
        Assert.Equal("org/m", route.GetTagItem("gen_ai.response.model"));
        Assert.Equal("m", route.GetTagItem("gateway.endpoint"));
        Assert.Equal("pool", route.GetTagItem("gateway.cluster"));
        Assert.Equal(1, route.GetTagItem("gateway.attempts"));
        Assert.True((long)route.GetTagItem("gateway.estimated_prompt_tokens")! > 0);
        Assert.Equal(200, route.GetTagItem("http.response.status_code"));

        var forward = Assert.Single(stopped, a => a.Source.Name == "Yarp.ReverseProxy");
        Assert.Equal(forward.SpanId, route.ParentSpanId);

        // The backend call (HttpClient's activity, whose id the traceparent carries) is made under the routing span.
        var call = Assert.Single(stopped, a => a.Source.Name == "System.Net.Http");
        Assert.Equal(route.SpanId, call.ParentSpanId);
        Assert.Equal(call.SpanId.ToHexString(), traceparent[2]);
    }
}
