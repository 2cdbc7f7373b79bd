using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Backends;
using ModelRouting.Tests.Adapters;
using ModelRouting.Tests.EndToEnd.Support;
using Yarp.ReverseProxy;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Backends;

/// <summary>SPEC §12: the gateway's own calls to a backend carry that cluster's backend key.</summary>
public sealed class BackendClientTests
{
    private static JsonObject VllmConfig(FakeVllm vllm, string? key, JsonObject? metadata = null)
    {
        var modelRouting = AdminSection();
        if (key is not null)
        {
            modelRouting["Backends"] = new JsonObject { ["vllm"] = new JsonObject { ["ApiKey"] = key } };
        }

        modelRouting["Discovery"] = new JsonObject { ["Interval"] = "00:00:00.050", ["Ttl"] = "00:00:05" };
        var config = TestGateway.Config(
            new Dictionary<string, string[]> { ["vllm"] = [vllm.Url] },
            [
                E2EHelpers.Endpoint("qwen", "vllm", FakeVllm.BaseModel, isDefault: true),
                E2EHelpers.Endpoint("qwen:sql", "vllm", FakeVllm.BaseModel, adapter: "sql-lora"),
            ],
            modelRouting);
        config["ReverseProxy"]!["Clusters"]!["vllm"]!["Metadata"] = metadata ?? new JsonObject { ["ModelRouting.Discovery"] = "true" };
        return config;
    }

    [Fact]
    public async Task Discovery_BackendRequiresKey_WorksWithTheClustersKey()
    {
        await using var vllm = await FakeVllm.StartAsync("v", requiredKey: "vllm-key");
        vllm.Adapters["sql-lora"] = "/loras/sql";
        await using var gateway = await TestGateway.StartAsync(VllmConfig(vllm, "vllm-key"));

        // The context length can only come from the authenticated GET /v1/models.
        await E2EHelpers.PollAsync(
            async () => (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("qwen"))).Body!["max_context_length"]!.GetValue<int>(),
            n => n == 40960,
            "discovery to read the context length");
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("qwen:sql"));
        Assert.All(vllm.Requests, r => Assert.Equal("Bearer vllm-key", r.Headers["Authorization"]));
    }

    [Fact]
    public async Task Discovery_NoKeyConfigured_SendsNoAuthorization_LearnsNothingFromA401()
    {
        await using var vllm = await FakeVllm.StartAsync("v", requiredKey: "vllm-key");
        await using var gateway = await TestGateway.StartAsync(VllmConfig(vllm, key: null));

        await E2EHelpers.PollAsync(() => Task.FromResult(vllm.Requests.Count(r => r.Path == "/v1/models")), n => n >= 2, "discovery polls");
        Assert.All(vllm.Requests, r => Assert.False(r.Headers.ContainsKey("Authorization")));
        Assert.Equal(4096, (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("qwen"))).Body!["max_context_length"]!.GetValue<int>());
    }

    [Fact]
    public async Task SendAsync_SlowDestination_ThrowsTimeoutException()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var slow = await TestBackend.StartAsync("slow", async (context, _) => await release.Task.WaitAsync(context.RequestAborted));
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["slow"] = [slow.Url] }, [TestGateway.Endpoint("m", "slow", isDefault: true)]));
        var proxy = gateway.Services.GetRequiredService<IProxyStateLookup>();
        Assert.True(proxy.TryGetCluster("slow", out var cluster));
        var client = gateway.Services.GetRequiredService<BackendClient>();
        try
        {
            var started = DateTime.UtcNow;
            await Assert.ThrowsAsync<TimeoutException>(() => client.SendAsync(
                cluster, cluster.Destinations.Values.Single(), HttpMethod.Get, "v1/models", null, TimeSpan.FromMilliseconds(200), CancellationToken.None));
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        }
        finally
        {
            release.TrySetResult();
        }
    }
}
