using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Discovery;

/// <summary>Issue 6: discovery polls a vLLM-shaped GET /v1/models to mark adapters Loading until listed and to learn context lengths.</summary>
public sealed class DiscoveryTests
{
    [Fact]
    public async Task AdapterLoadingUntilListed_ContextLengthsLearned_AdapterInheritsParent()
    {
        using var dir = new TempDirectory();
        var listAdapter = false;
        Task Vllm(HttpContext context, RecordedRequest request)
        {
            if (request.Path == "/v1/models")
            {
                var data = new JsonArray { new JsonObject { ["id"] = "Qwen/Qwen3-8B", ["object"] = "model", ["parent"] = null, ["max_model_len"] = 40960 } };
                if (Volatile.Read(ref listAdapter))
                {
                    data.Add(new JsonObject { ["id"] = "sql-lora", ["object"] = "model", ["parent"] = "Qwen/Qwen3-8B", ["max_model_len"] = null });
                }

                return context.Response.WriteAsync(new JsonObject { ["object"] = "list", ["data"] = data }.ToJsonString());
            }

            return context.Response.WriteAsJsonAsync(new { model = request.Model });
        }

        await using var backend = await TestBackend.StartAsync("vllm", Vllm);
        var config = TestGateway.Config(
            new Dictionary<string, string[]> { ["vllm"] = [backend.Url] },
            [
                E2EHelpers.Endpoint("qwen", "vllm", "Qwen/Qwen3-8B", isDefault: true),
                E2EHelpers.Endpoint("qwen:sql", "vllm", "Qwen/Qwen3-8B", adapter: "sql-lora"),
            ],
            AdminSection(dir.File("state.json")));
        config["ModelRouting"]!["Discovery"] = new JsonObject { ["Interval"] = "00:00:00.050", ["Ttl"] = "00:00:05" };
        config["ReverseProxy"]!["Clusters"]!["vllm"]!["Metadata"] = new JsonObject { ["ModelRouting.Discovery"] = "true" };
        await using var gateway = await TestGateway.StartAsync(config);

        var adapter = await E2EHelpers.PollAsync(
            async () => (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("qwen:sql"))).Body!,
            b => b["status"]!.GetValue<string>() == "loading",
            "the unlisted adapter to read as Loading");
        Assert.Contains("sql-lora", adapter["status_reason"]!.GetValue<string>());
        Assert.Equal(40960, (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("qwen"))).Body!["max_context_length"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await gateway.ChatStatusAsync("qwen:sql"));

        Volatile.Write(ref listAdapter, true);
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("qwen:sql"), s => s == HttpStatusCode.OK, "the listed adapter to be Ready");
        Assert.Equal(40960, (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("qwen:sql"))).Body!["max_context_length"]!.GetValue<int>());
        Assert.Contains("40960", await gateway.Client.GetStringAsync("/v1/models/qwen:sql"));
    }
}
