using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Adapters;

/// <summary>Issue 6: adapters registered through the admin API with a source path are loaded on (and unloaded from) vLLM destinations.</summary>
public sealed class VllmAdapterTests
{
    [Fact]
    public async Task PutAdapterWithSourcePath_LoadsOnEveryDestination_LoadingUntilDone_ErrorIfRefused_DeleteUnloads()
    {
        using var dir = new TempDirectory();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loaded = new ConcurrentBag<string>();
        async Task Vllm(HttpContext context, RecordedRequest request)
        {
            switch (request.Path)
            {
                case "/v1/load_lora_adapter":
                    var body = JsonNode.Parse(request.Body)!;
                    if (body["lora_name"]!.GetValue<string>() == "bad")
                    {
                        context.Response.StatusCode = 400;
                        await context.Response.WriteAsync("{\"message\":\"adapter not found\"}");
                        return;
                    }

                    await release.Task;
                    loaded.Add(body["lora_name"]!.GetValue<string>());
                    await context.Response.WriteAsync("Success: LoRA adapter loaded.");
                    return;
                case "/v1/unload_lora_adapter":
                    await context.Response.WriteAsync("Success");
                    return;
                default:
                    await context.Response.WriteAsJsonAsync(new { model = request.Model });
                    return;
            }
        }

        await using var v1 = await TestBackend.StartAsync("v1", Vllm);
        await using var v2 = await TestBackend.StartAsync("v2", Vllm);
        var config = TestGateway.Config(
            new Dictionary<string, string[]> { ["vllm"] = [v1.Url, v2.Url] },
            [E2EHelpers.Endpoint("qwen", "vllm", "Qwen/Qwen3-8B", isDefault: true)],
            AdminSection(dir.File("state.json")));
        config["ReverseProxy"]!["Clusters"]!["vllm"]!["Metadata"] = new JsonObject { ["ModelRouting.Backend"] = "vllm" };
        await using var gateway = await TestGateway.StartAsync(config);

        var definition = Definition("vllm", baseModel: "Qwen/Qwen3-8B", adapter: "sql");
        definition["SourcePath"] = "/models/loras/sql";
        var put = await gateway.AdminAsync(HttpMethod.Put, EndpointPath("qwen:sql"), definition);
        Assert.Equal(HttpStatusCode.Created, put.Status);
        Assert.Equal("loading", put.Body!["status"]!.GetValue<string>());
        Assert.Equal("/models/loras/sql", put.Body["source_path"]!.GetValue<string>());
        using (var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("qwen:sql")))
        {
            await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "model_not_ready");
            Assert.NotNull(response.Headers.RetryAfter);
        }

        release.SetResult();
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("qwen:sql"), s => s == HttpStatusCode.OK, "the adapter to be loaded");
        Assert.Equal(2, loaded.Count);
        foreach (var backend in new[] { v1, v2 })
        {
            var load = JsonNode.Parse(backend.Requests.Single(r => r.Path == "/v1/load_lora_adapter").Body)!;
            Assert.Equal("sql", load["lora_name"]!.GetValue<string>());
            Assert.Equal("/models/loras/sql", load["lora_path"]!.GetValue<string>());
        }

        // A destination refuses: Error.
        var bad = Definition("vllm", baseModel: "Qwen/Qwen3-8B", adapter: "bad");
        bad["SourcePath"] = "/nowhere";
        Assert.Equal(HttpStatusCode.Created, (await gateway.AdminAsync(HttpMethod.Put, EndpointPath("qwen:bad"), bad)).Status);
        var failed = await E2EHelpers.PollAsync(
            async () => (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("qwen:bad"))).Body!,
            b => b["status"]!.GetValue<string>() == "error",
            "the refused adapter to read as Error");
        Assert.Contains("400", failed["status_reason"]!.GetValue<string>());

        // Unregistering unloads from every destination.
        Assert.Equal(HttpStatusCode.OK, (await gateway.AdminAsync(HttpMethod.Delete, EndpointPath("qwen:sql"))).Status);
        await E2EHelpers.PollAsync(
            () => Task.FromResult(v1.Requests.Concat(v2.Requests).Count(r => r.Path == "/v1/unload_lora_adapter")),
            n => n == 2,
            "the unload calls");
        Assert.All(v1.Requests.Concat(v2.Requests).Where(r => r.Path == "/v1/unload_lora_adapter"),
            r => Assert.Equal("sql", JsonNode.Parse(r.Body)!["lora_name"]!.GetValue<string>()));
    }

    [Fact]
    public async Task ClusterNotMarkedVllm_NoLoadCalls_ReadyAtOnce()
    {
        using var dir = new TempDirectory();
        await using var backend = await TestBackend.StartAsync("plain");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["plain"] = [backend.Url] },
            [TestGateway.Endpoint("base", "plain")],
            AdminSection(dir.File("state.json"))));
        var definition = Definition("plain", baseModel: "base", adapter: "sql");
        definition["SourcePath"] = "/x";

        var put = await gateway.AdminAsync(HttpMethod.Put, EndpointPath("base:sql"), definition);

        Assert.Equal("ready", put.Body!["status"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("base:sql"));
        Assert.DoesNotContain(backend.Requests, r => r.Path.Contains("lora", StringComparison.Ordinal));
    }
}
