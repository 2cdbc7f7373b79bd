using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>
/// SPEC §17 through the real gateway: a cluster with <c>"LoadBalancingPolicy": "ModelAware"</c> sends adapter
/// requests where vLLM's metrics say the adapter runs, keeps a prompt prefix on one destination, balances on
/// its own signals when metrics are missing, slow, huge or malformed (logged once), and composes with failover.
/// </summary>
public sealed class ModelAwareBalancingTests
{
    private static JsonObject Balancing(string maxMetricsBytes = "4194304") => new()
    {
        ["LoadBalancing"] = new JsonObject { ["ScrapeInterval"] = "00:00:00.050", ["ScrapeTimeout"] = "00:00:01", ["MaxMetricsBytes"] = maxMetricsBytes },
        ["Failover"] = new JsonObject { ["Cooldown"] = "00:00:05" },
    };

    private static Action<JsonObject> ModelAware => c => c["LoadBalancingPolicy"] = "ModelAware";

    // A backend whose GET /metrics answers metrics() (null: 404) and which otherwise answers as TestBackend does.
    private static Task<TestBackend> StartAsync(string name, Func<string?> metrics, TimeSpan? metricsDelay = null) =>
        TestBackend.StartAsync(name, async (context, recorded) =>
        {
            if (recorded.Path == "/metrics")
            {
                if (metricsDelay is { } delay)
                {
                    await Task.Delay(delay, context.RequestAborted);
                }

                var page = metrics();
                context.Response.StatusCode = page is null ? StatusCodes.Status404NotFound : StatusCodes.Status200OK;
                await context.Response.WriteAsync(page ?? "");
                return;
            }

            context.Response.Headers["x-backend"] = name;
            await context.Response.WriteAsJsonAsync(new
            {
                id = "chatcmpl-test",
                @object = "chat.completion",
                model = recorded.Model,
                backend = name,
                choices = new[] { new { index = 0, message = new { role = "assistant", content = "ok" }, finish_reason = "stop" } },
            });
        });

    private static string Vllm(string running = "", int waiting = 0) =>
        $"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{model_name=\"base\"}} {waiting}\n"
        + $"vllm:kv_cache_usage_perc{{model_name=\"base\"}} 0.1\n"
        + $"vllm:lora_requests_info{{max_lora=\"4\",running_lora_adapters=\"{running}\",waiting_lora_adapters=\"\"}} 1.7e9\n";

    private static int Scrapes(TestBackend backend) => backend.Requests.Count(r => r.Path == "/metrics");

    private static async Task<string> ServedByAsync(TestGateway gateway, string body)
    {
        using var response = await gateway.PostRawAsync("/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response.Headers.GetValues("x-backend").Single();
    }

    private static string Chat(string model, string content) =>
        JsonSerializer.Serialize(new { model, messages = new[] { new { role = "system", content }, new { role = "user", content = "question" } } });

    [Fact]
    public async Task ModelAware_AdapterRequests_GoWhereVllmRunsTheAdapter()
    {
        await using var a = await StartAsync("a", () => Vllm());
        await using var b = await StartAsync("b", () => Vllm(running: "sql-lora"));
        await using var c = await StartAsync("c", () => "vllm:num_requests_waiting lots\n");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [a.Url, b.Url, c.Url] },
            [E2EHelpers.Endpoint("base", "pool", "base", isDefault: true), E2EHelpers.Endpoint("base:sql-lora", "pool", "base", adapter: "sql-lora")],
            Balancing(), ModelAware));

        await E2EHelpers.PollAsync(() => Task.FromResult(Scrapes(b)), n => n >= 3, "b's metrics to be scraped");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("b", await ServedByAsync(gateway, Chat("base:sql-lora", "question " + i)));
        }

        Assert.All(b.Requests.Where(r => r.Path != "/metrics"), r => Assert.Equal("sql-lora", r.Model));
    }

    [Fact]
    public async Task ModelAware_UnusableMetrics_PrefixStillSticks_AndRequestsSpread()
    {
        await using var missing = await StartAsync("missing", () => null);
        await using var slow = await StartAsync("slow", () => Vllm(), metricsDelay: TimeSpan.FromSeconds(30));
        await using var huge = await StartAsync("huge", () => Vllm() + new string('#', 8192) + "\n");
        await using var other = await StartAsync("other", () => "tgi_queue_size 3\n");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [missing.Url, slow.Url, huge.Url, other.Url] },
            [E2EHelpers.Endpoint("base", "pool", "base", isDefault: true)],
            Balancing(maxMetricsBytes: "4096"), ModelAware));

        await E2EHelpers.PollAsync(() => Task.FromResult(Scrapes(huge)), n => n >= 3, "scrapes");

        // One long system prompt: every request after the first goes where the first went.
        var system = string.Concat(Enumerable.Range(0, 300).Select(i => $"rule {i}; "));
        var first = await ServedByAsync(gateway, Chat("base", system));
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(first, await ServedByAsync(gateway, Chat("base", system + " turn " + i)));
        }

        // Different prompts, sent at once: no metrics, so the tokens in flight spread them over every destination.
        var served = new HashSet<string>();
        var tasks = Enumerable.Range(0, 40).Select(async i => await ServedByAsync(gateway, Chat("base", Guid.NewGuid().ToString("N") + new string('x', 2000))));
        foreach (var name in await Task.WhenAll(tasks))
        {
            served.Add(name);
        }

        Assert.True(served.Count >= 3, "served by " + string.Join(", ", served));
    }

    [Fact]
    public async Task ModelAware_MetricsTurnMalformed_LoggedOnceUntilTheyRecover()
    {
        var page = Vllm();
        await using var a = await StartAsync("a", () => Volatile.Read(ref page));
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [a.Url] },
            [E2EHelpers.Endpoint("base", "pool", "base", isDefault: true)],
            Balancing(), ModelAware));
        var logs = gateway.CaptureLogs();
        await E2EHelpers.PollAsync(() => Task.FromResult(Scrapes(a)), n => n >= 2, "scrapes");

        Volatile.Write(ref page, "vllm:kv_cache_usage_perc NaN\n");
        var before = Scrapes(a);
        await E2EHelpers.PollAsync(() => Task.FromResult(Scrapes(a)), n => n >= before + 6, "scrapes of the malformed page");
        Assert.True(logs.Entries.Count(e => e.EventName == "MetricsUnusable") == 1, string.Join("\n", logs.Entries.Select(e => e.Message)));
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("base"));

        // A good scrape ends the failure (logged at Information, below the test host's level): the next one is logged.
        Volatile.Write(ref page, Vllm());
        before = Scrapes(a);
        await E2EHelpers.PollAsync(() => Task.FromResult(Scrapes(a)), n => n >= before + 3, "scrapes of the recovered page");
        Assert.Single(logs.Entries, e => e.EventName == "MetricsUnusable");
        Volatile.Write(ref page, null!);
        before = Scrapes(a);
        await E2EHelpers.PollAsync(() => Task.FromResult(Scrapes(a)), n => n >= before + 6, "scrapes of the missing page");
        Assert.Equal(2, logs.Entries.Count(e => e.EventName == "MetricsUnusable"));
    }

    [Fact]
    public async Task ModelAware_DeadDestination_FailoverServesEveryRequest()
    {
        await using var a = await StartAsync("a", () => Vllm());
        var dead = $"http://127.0.0.1:{E2EHelpers.ClosedLoopbackPort()}";
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [dead, a.Url] },
            [E2EHelpers.Endpoint("base", "pool", "base", isDefault: true)],
            Balancing(), ModelAware));

        var system = string.Concat(Enumerable.Range(0, 300).Select(i => $"rule {i}; "));
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("a", await ServedByAsync(gateway, Chat("base", system + i)));
        }
    }
}
