using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;
using Xunit.Abstractions;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Adapters;

/// <summary>
/// Issue 9: runtime adapters on vLLM are reconciled: loaded again after a vLLM restart, on a destination added to the
/// cluster and after a gateway restart; requests for an adapter go only to destinations that have it loaded.
/// </summary>
public sealed class AdapterReconciliationTests(ITestOutputHelper output)
{
    private const string Interval = "00:00:00.100";

    private static JsonObject Config(IEnumerable<FakeVllm> destinations, string stateFile, string? key = null)
    {
        var modelRouting = AdminSection(stateFile);
        var backend = new JsonObject { ["AdapterReconcileInterval"] = Interval };
        if (key is not null)
        {
            backend["ApiKey"] = key;
        }

        modelRouting["Backends"] = new JsonObject { ["vllm"] = backend };
        var config = TestGateway.Config(
            new Dictionary<string, string[]> { ["vllm"] = [.. destinations.Select(d => d.Url)] },
            [E2EHelpers.Endpoint("qwen", "vllm", FakeVllm.BaseModel, isDefault: true)],
            modelRouting);
        config["ReverseProxy"]!["Clusters"]!["vllm"]!["Metadata"] = new JsonObject { ["ModelRouting.Backend"] = "vllm" };
        return config;
    }

    private static async Task RegisterAdapterAsync(TestGateway gateway)
    {
        var definition = Definition("vllm", baseModel: FakeVllm.BaseModel, adapter: "sql");
        definition["SourcePath"] = "/loras/sql";
        var put = await gateway.AdminAsync(HttpMethod.Put, EndpointPath("qwen:sql"), definition);
        Assert.Equal(HttpStatusCode.Created, put.Status);
    }

    private static Task<string> StatusAsync(TestGateway gateway) =>
        gateway.AdminAsync(HttpMethod.Get, EndpointPath("qwen:sql")).ContinueWith(t => t.Result.Body!["status"]!.GetValue<string>(), TaskScheduler.Default);

    [Fact]
    public async Task VllmRestarted_AdapterLoadedAgainWithinIntervals_RequestsSucceedAgain()
    {
        using var dir = new TempDirectory();
        await using var vllm = await FakeVllm.StartAsync("v", requiredKey: "vllm-key");
        await using var gateway = await TestGateway.StartAsync(Config([vllm], dir.File("state.json"), key: "vllm-key"));
        await RegisterAdapterAsync(gateway);
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("qwen:sql"), s => s == HttpStatusCode.OK, "the adapter to be loaded");
        Assert.Equal(1, vllm.Loads("sql"));

        await vllm.RestartAsync();
        var clock = Stopwatch.StartNew();
        await E2EHelpers.PollAsync(() => Task.FromResult(vllm.Adapters.ContainsKey("sql")), loaded => loaded, "the adapter to be loaded again");
        var reloaded = clock.Elapsed;
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("qwen:sql"), s => s == HttpStatusCode.OK, "requests to succeed again");
        output.WriteLine($"adapter loaded again {reloaded.TotalMilliseconds:0} ms after the vLLM restart (interval {Interval}); requests OK after {clock.Elapsed.TotalMilliseconds:0} ms");

        Assert.Equal(2, vllm.Loads("sql"));
        Assert.True(reloaded < TimeSpan.FromSeconds(5), $"reloaded after {reloaded}");

        // vllm --api-key: every call the gateway made, its own and proxied ones, carried the cluster's key.
        Assert.All(vllm.Requests, r => Assert.Equal("Bearer vllm-key", r.Headers.GetValueOrDefault("Authorization")));
    }

    [Fact]
    public async Task DestinationAddedByReload_GetsTheAdapter_ThenServesIt()
    {
        using var dir = new TempDirectory();
        await using var v1 = await FakeVllm.StartAsync("v1");
        await using var v2 = await FakeVllm.StartAsync("v2");
        await using var gateway = await TestGateway.StartAsync(Config([v1], dir.File("state.json")));
        await RegisterAdapterAsync(gateway);
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("qwen:sql"), s => s == HttpStatusCode.OK, "the adapter to be loaded");

        await File.WriteAllTextAsync(gateway.ConfigFile, Config([v1, v2], dir.File("state.json")).ToJsonString());

        await E2EHelpers.PollAsync(() => Task.FromResult(v2.Adapters.ContainsKey("sql")), loaded => loaded, "the new destination to get the adapter");
        await E2EHelpers.PollAsync(
            async () =>
            {
                Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("qwen:sql"));
                return v2.Chats("sql");
            },
            n => n > 0,
            "the new destination to serve the adapter");
        Assert.Equal(1, v2.Loads("sql"));
    }

    [Fact]
    public async Task GatewayRestarted_StateFileListsAdapter_LoadedAgainOnlyWhereMissing()
    {
        using var dir = new TempDirectory();
        await using var vllm = await FakeVllm.StartAsync("v");
        var config = Config([vllm], dir.File("state.json"));
        await using (var first = await TestGateway.StartAsync(config))
        {
            await RegisterAdapterAsync(first);
            await E2EHelpers.PollAsync(() => first.ChatStatusAsync("qwen:sql"), s => s == HttpStatusCode.OK, "the adapter to be loaded");
        }

        // vLLM kept it: the gateway finds it listed and loads nothing.
        await using (var second = await TestGateway.StartAsync(config))
        {
            await E2EHelpers.PollAsync(() => second.ChatStatusAsync("qwen:sql"), s => s == HttpStatusCode.OK, "the listed adapter to be Ready");
            Assert.Equal(1, vllm.Loads("sql"));
        }

        // vLLM restarted too: the gateway loads it again, and it reads as Loading (never Ready) until then.
        await vllm.RestartAsync();
        vllm.LoadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var chatsBefore = vllm.Chats("sql");
        await using var third = await TestGateway.StartAsync(config);
        Assert.Equal("loading", await StatusAsync(third));
        using (var response = await third.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("qwen:sql")))
        {
            await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "model_not_ready");
        }

        Assert.Equal(chatsBefore, vllm.Chats("sql"));

        vllm.LoadGate.SetResult();
        await E2EHelpers.PollAsync(() => third.ChatStatusAsync("qwen:sql"), s => s == HttpStatusCode.OK, "the adapter to be loaded again");
        Assert.Equal(2, vllm.Loads("sql"));
    }

    [Fact]
    public async Task DestinationWithoutTheAdapter_GetsNoRequestForIt_UntilLoaded()
    {
        using var dir = new TempDirectory();
        await using var v1 = await FakeVllm.StartAsync("v1");
        await using var v2 = await FakeVllm.StartAsync("v2");
        v2.LoadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var gateway = await TestGateway.StartAsync(Config([v1, v2], dir.File("state.json")));
        await RegisterAdapterAsync(gateway);
        await E2EHelpers.PollAsync(() => StatusAsync(gateway), s => s == "ready", "the adapter to be Ready on one destination");

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("qwen:sql"));
            Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("qwen"));
        }

        Assert.Equal(0, v2.Chats("sql"));
        Assert.Equal(20, v1.Chats("sql"));
        Assert.True(v2.Chats(FakeVllm.BaseModel) > 0, "the base model is balanced over both destinations");

        v2.LoadGate.SetResult();
        await E2EHelpers.PollAsync(
            async () =>
            {
                Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("qwen:sql"));
                return v2.Chats("sql");
            },
            n => n > 0,
            "the second destination to serve the adapter once loaded");
    }

    [Fact]
    public async Task UnregisteredWhileLoading_AdapterNotLeftLoadedOnVllm()
    {
        using var dir = new TempDirectory();
        await using var vllm = await FakeVllm.StartAsync("v");
        vllm.LoadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var gateway = await TestGateway.StartAsync(Config([vllm], dir.File("state.json")));
        await RegisterAdapterAsync(gateway);
        await E2EHelpers.PollAsync(() => Task.FromResult(vllm.Loads("sql")), n => n == 1, "the load to be under way");

        Assert.Equal(HttpStatusCode.OK, (await gateway.AdminAsync(HttpMethod.Delete, EndpointPath("qwen:sql"))).Status);
        await E2EHelpers.PollAsync(() => Task.FromResult(vllm.Requests.Count(r => r.Path == "/v1/unload_lora_adapter")), n => n == 1, "the admin API's unload");
        vllm.LoadGate.SetResult();

        // The load finishes after the unload: the reconciler unloads what nobody wants any more.
        await E2EHelpers.PollAsync(
            () => Task.FromResult((vllm.Requests.Count(r => r.Path == "/v1/unload_lora_adapter"), vllm.Adapters.ContainsKey("sql"))),
            r => r.Item1 == 2 && !r.Item2,
            "the late-loaded adapter to be unloaded");
        Assert.Equal(1, vllm.Loads("sql"));
    }

    [Fact]
    public async Task EveryDestinationDown_AdapterReadsLoading_WithReason()
    {
        using var dir = new TempDirectory();
        await using var vllm = await FakeVllm.StartAsync("v");
        await using var gateway = await TestGateway.StartAsync(Config([vllm], dir.File("state.json")));
        await RegisterAdapterAsync(gateway);
        await E2EHelpers.PollAsync(() => StatusAsync(gateway), s => s == "ready", "the adapter to be Ready");

        await vllm.DisposeAsync();

        var body = await E2EHelpers.PollAsync(
            async () => (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("qwen:sql"))).Body!,
            b => b["status"]!.GetValue<string>() == "loading",
            "the adapter to read as Loading");
        Assert.Contains("unreachable", body["status_reason"]!.GetValue<string>());
        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("qwen:sql"));
        await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "model_not_ready");
        Assert.NotNull(response.Headers.RetryAfter);
    }
}
