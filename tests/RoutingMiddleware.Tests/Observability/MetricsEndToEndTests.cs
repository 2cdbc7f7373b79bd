using System.Net;
using System.Text.Json.Nodes;
using ModelRouting.Tests.Admin;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.Observability;

/// <summary>
/// SPEC §15 end to end: the real host, real backends, traffic through the gateway, then a Prometheus scrape of
/// <c>/metrics</c> on the management listener shows the GenAI and gateway series with the right counts.
/// </summary>
public sealed class MetricsEndToEndTests
{
    [Fact]
    public async Task Scrape_AfterTraffic_ShowsGenAIAndGatewaySeriesWithCorrectCounts()
    {
        await using var backend = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        var modelRouting = AdminTestSupport.AdminSection();
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [
                TestGateway.Endpoint("m", "pool", isDefault: true, upstream: "org/m-upstream", aliases: "gpt-x"),
                TestGateway.Endpoint("off", "pool", status: "Disabled"),
            ],
            modelRouting));

        // 3 plain chat requests to the id, 2 streams through the alias, 1 to a disabled endpoint, 4 unknown names.
        for (var i = 0; i < 3; i++)
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat("m", stream: false));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        for (var i = 0; i < 2; i++)
        {
            using var request = StreamingPost("/v1/chat/completions", Chat("gpt-x", stream: true));
            using var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Prompt);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await response.Content.ReadAsStringAsync();
        }

        using (var refused = await gateway.PostRawAsync("/v1/chat/completions", Chat("off", stream: false)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        }

        for (var i = 0; i < 4; i++)
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat("client-made-up-model-" + i, stream: false));
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        // The listener runs as each request ends, and the exporter caches a scrape briefly: poll until all are in.
        var scrape = await ScrapeUntilAsync(gateway, s => s.Sum("gateway_requests_total") >= 10);

        Assert.Equal(5, scrape.Sum("gateway_requests_total", ("gateway_endpoint", "m"), ("http_response_status_code", "200"), ("gen_ai_operation_name", "chat")));
        Assert.Equal(1, scrape.Sum("gateway_requests_total", ("gateway_endpoint", "(none)"), ("http_response_status_code", "503"), ("error_type", "model_not_ready")));
        Assert.Equal(4, scrape.Sum("gateway_requests_total", ("gateway_endpoint", "(none)"), ("http_response_status_code", "404"), ("error_type", "model_not_found")));
        Assert.Equal(10, scrape.Sum("gateway_requests_total"));
        Assert.Equal(5, scrape.Sum("gateway_attempts_total", ("gateway_endpoint", "m")));

        // GenAI conventions: the requested model as the client named it (id or alias), the served model upstream.
        var input = ("gen_ai_token_type", "input");
        var output = ("gen_ai_token_type", "output");
        Assert.Equal(3, scrape.Sum("gen_ai_client_token_usage_count", ("gen_ai_request_model", "m"), ("gen_ai_response_model", "org/m-upstream"), input));
        Assert.Equal(9, scrape.Sum("gen_ai_client_token_usage_sum", ("gen_ai_request_model", "m"), input));
        Assert.Equal(12, scrape.Sum("gen_ai_client_token_usage_sum", ("gen_ai_request_model", "m"), output));
        Assert.Equal(2, scrape.Sum("gen_ai_client_token_usage_count", ("gen_ai_request_model", "gpt-x"), input));
        Assert.Equal(6, scrape.Sum("gen_ai_client_token_usage_sum", ("gen_ai_request_model", "gpt-x"), input));
        Assert.Equal(4, scrape.Sum("gen_ai_client_token_usage_sum", ("gen_ai_request_model", "gpt-x"), output)); // "hi model=…": 2 words each
        Assert.Equal(3, scrape.Sum("gen_ai_server_request_duration_seconds_count", ("gen_ai_request_model", "m"), ("gen_ai_operation_name", "chat")));
        Assert.Equal(10, scrape.Sum("gen_ai_server_request_duration_seconds_count"));
        Assert.Equal(2, scrape.Sum("gen_ai_server_time_to_first_token_seconds_count", ("gen_ai_request_model", "gpt-x")));
        Assert.Equal(0, scrape.Sum("gen_ai_server_time_to_first_token_seconds_count", ("gen_ai_request_model", "m")));
        Assert.True(scrape.Sum("gen_ai_server_time_to_first_token_seconds_sum") > 0);

        // Unknown names share one label: a client cannot create series.
        Assert.Equal(4, scrape.Sum("gen_ai_server_request_duration_seconds_count", ("gen_ai_request_model", "(unknown)")));
        Assert.DoesNotContain(scrape.Samples, s => s.Labels.Values.Any(v => v.Contains("made-up", StringComparison.Ordinal)));

        // The estimate's accuracy, and every endpoint's status.
        Assert.Equal(5, scrape.Sum("gateway_token_estimate_ratio_count", ("gateway_endpoint", "m")));
        Assert.Equal(1, scrape.Sum("gateway_endpoint_status", ("gateway_endpoint", "m"), ("gateway_endpoint_status", "ready")));
        Assert.Equal(1, scrape.Sum("gateway_endpoint_status", ("gateway_endpoint", "off"), ("gateway_endpoint_status", "disabled")));
        Assert.Equal(0, scrape.Sum("gateway_endpoint_status", ("gateway_endpoint", "off"), ("gateway_endpoint_status", "ready")));
    }

    [Fact]
    public async Task TwoGatewaysInOneProcess_EachScrapesOnlyItsOwnTraffic()
    {
        // Tests run many hosts in one process: a host's scrape must not count another's requests (nor would a
        // host that embeds two gateways).
        await using var backend = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        var clusters = new Dictionary<string, string[]> { ["pool"] = [backend.Url] };
        await using var busy = await TestGateway.StartAsync(TestGateway.Config(clusters, [TestGateway.Endpoint("m", "pool", isDefault: true)], AdminTestSupport.AdminSection()));
        await using var idle = await TestGateway.StartAsync(TestGateway.Config(clusters, [TestGateway.Endpoint("m", "pool", isDefault: true)], AdminTestSupport.AdminSection()));

        for (var i = 0; i < 3; i++)
        {
            using var response = await busy.PostRawAsync("/v1/chat/completions", Chat("m", stream: false));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var scrape = await ScrapeUntilAsync(busy, s => s.Sum("gateway_requests_total", ("gateway_endpoint", "m")) >= 3);
        Assert.Equal(3, scrape.Sum("gateway_requests_total", ("gateway_endpoint", "m")));
        using var idleResponse = await idle.ManagementClient.GetAsync("/metrics");
        var idleScrape = PrometheusText.Parse(await idleResponse.Content.ReadAsStringAsync());
        Assert.Equal(0, idleScrape.Sum("gateway_requests_total"));
        Assert.Equal(1, idleScrape.Sum("gateway_endpoint_status", ("gateway_endpoint", "m"), ("gateway_endpoint_status", "ready")));
    }

    [Fact]
    public async Task MetricsAndStatus_OnThePublicListener_Are404()
    {
        await using var backend = await TestBackend.StartAsync("pool");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [backend.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true)],
            AdminTestSupport.AdminSection()));

        foreach (var path in new[] { "/metrics", "/status", "/status/data" })
        {
            using var onPublic = await gateway.Client.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, onPublic.StatusCode);
            using var onManagement = await gateway.ManagementClient.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, onManagement.StatusCode);
        }

        Assert.Empty(backend.Requests);
    }

    internal static string Chat(string model, bool stream) => new JsonObject
    {
        ["model"] = model,
        ["stream"] = stream,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hello there, how are you today?" }),
    }.ToJsonString();

    internal static async Task<PrometheusText> ScrapeUntilAsync(TestGateway gateway, Func<PrometheusText, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            using var response = await gateway.ManagementClient.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var scrape = PrometheusText.Parse(await response.Content.ReadAsStringAsync());
            if (done(scrape) || DateTime.UtcNow > deadline)
            {
                return scrape;
            }

            await Task.Delay(100);
        }
    }
}
