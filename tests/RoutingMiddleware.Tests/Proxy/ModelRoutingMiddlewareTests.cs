using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelRouting.Configuration;
using ModelRouting.Registry;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Tests.Proxy;

public sealed class ModelRoutingMiddlewareTests
{
    [Fact]
    public async Task Route_ModelOnOtherCluster_ReassignsToCloneRouteBoundToThatCluster()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("a", "c1", 4096, true), ("b", "c2", 4096, false));

        var echo = await host.PostAsync("/v1/chat/completions", """{"model":"b","messages":[]}""");

        Assert.Equal(200, echo.Status);
        Assert.Equal("c2", echo.Cluster);
        Assert.Equal("c2", echo.RouteCluster);
        Assert.StartsWith("__model-routing/clone/", echo.Route, StringComparison.Ordinal);
        Assert.Equal("b", echo.Header("x-gateway-endpoint"));
    }

    [Fact]
    public async Task Route_ModelOnRouteCluster_KeepsRoute()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("a", "c1", 4096, true), ("b", "c2", 4096, false));

        var echo = await host.PostAsync("/v1/completions", """{"model":"a","prompt":"x"}""");

        Assert.Equal("c1", echo.Cluster);
        Assert.Equal("openai", echo.Route);
        Assert.Equal("""{"model":"a","prompt":"x"}""", echo.Body);
        Assert.Equal(echo.Body.Length, echo.ContentLength);
    }

    [Fact]
    public async Task Route_RewritesModelAndContentLength()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o => o.Endpoints.Add(new ModelEndpointOptions { Id = "short", Cluster = "c1", BaseModel = "a-much-longer-upstream-name", Aliases = ["s"] }), "c1");

        var echo = await host.PostAsync("/v1/embeddings", """{"input":"x","model":"s"}""");

        Assert.Equal("""{"input":"x","model":"a-much-longer-upstream-name"}""", echo.Body);
        Assert.Equal(Encoding.UTF8.GetByteCount(echo.Body), echo.ContentLength);
    }

    [Theory]
    [InlineData("GET", "/v1/chat/completions")]
    [InlineData("POST", "/v1/files")]
    [InlineData("POST", "/v1/audio/transcriptions")]
    [InlineData("POST", "/v1/load_lora_adapter")]
    public async Task OffTheClientSurface_Returns404UnknownPath_WithoutForwarding(string method, string path)
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("a", "c1", 4096, true));

        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent("not json at all") };
        using var response = await host.Client.SendAsync(request);
        var echo = await ModelRoutingTestHost.Echo.ReadAsync(response);

        Assert.Equal(404, echo.Status);
        Assert.Equal("unknown_path", echo.ErrorCode);
        Assert.Null(echo.Route);
    }

    [Theory]
    [InlineData("GET", "/v1/files/file-abc")]
    [InlineData("POST", "/v1/files")]
    [InlineData("DELETE", "/v1/files/file-abc")]
    public async Task PassThroughPath_WithoutModel_IsForwardedUntouched(string method, string path)
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o =>
            {
                o.Endpoints.Add(new ModelEndpointOptions { Id = "a", Cluster = "c1", IsDefault = true });
                o.PassThroughPaths = ["/v1/files", "/v1/files/*"];
            },
            "c1");
        const string body = "not json at all";

        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(body) };
        using var response = await host.Client.SendAsync(request);
        var echo = await ModelRoutingTestHost.Echo.ReadAsync(response);

        Assert.Equal(200, echo.Status);
        Assert.Equal("openai", echo.Route);
        Assert.Equal(body, echo.Body);
        Assert.Null(echo.Header("x-gateway-endpoint"));
    }

    [Theory]
    [InlineData("/v1/load_lora_adapter")]
    [InlineData("/v1/unload_lora_adapter/")]
    [InlineData("/V1/Load_Lora_Adapter")]
    [InlineData("/v1/load%5Flora_adapter")]
    [InlineData("/v1/sleep")]
    [InlineData("/v1/files%2F..%2Fload_lora_adapter")]
    [InlineData("/v1/x%2F..%2F..%2Fsleep")]
    public async Task ManagementPath_UnderAPassThroughPrefix_IsNeverForwarded(string path)
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o =>
            {
                o.Endpoints.Add(new ModelEndpointOptions { Id = "a", Cluster = "c1", IsDefault = true });
                o.PassThroughPaths = ["/v1/*"];
            },
            "c1");

        var echo = await host.PostAsync(path, """{"lora_name":"x","lora_path":"/tmp/x"}""");

        Assert.Equal(404, echo.Status);
        Assert.Equal("unknown_path", echo.ErrorCode);
        Assert.Null(echo.Route);
    }

    [Fact]
    public async Task PassThroughPost_NamingAModel_IsResolvedAndRewritten()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o =>
            {
                o.Endpoints.Add(new ModelEndpointOptions { Id = "a", Cluster = "c1", IsDefault = true });
                o.Endpoints.Add(new ModelEndpointOptions { Id = "rr", Cluster = "c2", UpstreamModel = "bge-reranker", Aliases = ["rerank"] });
                o.PassThroughPaths = ["/v1/rerank"];
            },
            "c1",
            "c2");

        var routed = await host.PostAsync("/v1/rerank", """{"model":"rerank","query":"q","documents":["a"]}""");
        var unknown = await host.PostAsync("/v1/rerank", """{"model":"nope","query":"q"}""");

        Assert.Equal(200, routed.Status);
        Assert.Equal("c2", routed.Cluster);
        Assert.Equal("""{"model":"bge-reranker","query":"q","documents":["a"]}""", routed.Body);
        Assert.Equal("rr", routed.Header("x-gateway-endpoint"));
        Assert.Equal(404, unknown.Status);
        Assert.Equal("model_not_found", unknown.ErrorCode);
    }

    [Fact]
    public async Task PassThroughMultipart_NamingAModel_IsResolvedAndOnlyTheFieldRewritten()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o =>
            {
                o.Endpoints.Add(new ModelEndpointOptions { Id = "a", Cluster = "c1", IsDefault = true });
                o.Endpoints.Add(new ModelEndpointOptions { Id = "whisper", Cluster = "c2", UpstreamModel = "openai/whisper-large-v3", Aliases = ["whisper-1"] });
                o.PassThroughPaths = ["/v1/audio/transcriptions"];
            },
            "c1",
            "c2");
        using var form = new MultipartFormDataContent("----boundary42")
        {
            { new ByteArrayContent([0x52, 0x49, 0x46, 0x46, 0x00, 0xFF, 0x0D, 0x0A]), "file", "a.wav" },
            { new StringContent("whisper-1"), "model" },
            { new StringContent("json"), "response_format" },
        };
        var sent = await form.ReadAsByteArrayAsync();

        using var response = await host.Client.PostAsync("/v1/audio/transcriptions", form);
        var echo = await ModelRoutingTestHost.Echo.ReadAsync(response);

        Assert.Equal(200, echo.Status);
        Assert.Equal("c2", echo.Cluster);
        Assert.Equal("whisper", echo.Header("x-gateway-endpoint"));
        var expected = Encoding.Latin1.GetString(sent).Replace("\r\n\r\nwhisper-1\r\n", "\r\n\r\nopenai/whisper-large-v3\r\n", StringComparison.Ordinal);
        Assert.Equal(expected, Encoding.Latin1.GetString(echo.BodyBytes));
    }

    [Fact]
    public async Task InspectedPaths_AreConfigurable()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o =>
            {
                o.Endpoints.Add(new ModelEndpointOptions { Id = "a", Cluster = "c1", IsDefault = true });
                o.InspectedPaths = ["/v1/rerank"];
            },
            "c1");

        var reranked = await host.PostAsync("/v1/rerank", """{"model":"nope"}""");
        var chat = await host.PostAsync("/v1/chat/completions", """{"model":"nope"}""");

        Assert.Equal("model_not_found", reranked.ErrorCode);
        Assert.Equal(404, chat.Status);
        Assert.Equal("unknown_path", chat.ErrorCode);
    }

    [Theory]
    [InlineData("""{"model":"zzz"}""", 404, "model_not_found")]
    [InlineData("""{"model":"a","max_tokens":5000}""", 400, "context_length_exceeded")]
    [InlineData("""{"model":"loading"}""", 503, "model_not_ready")]
    [InlineData("""{"model":1}""", 400, "invalid_request")]
    [InlineData("""{"model":"a","model":"a"}""", 400, "invalid_request")]
    [InlineData("""nope""", 400, "invalid_request")]
    public async Task Errors_AreOpenAIShaped(string body, int status, string code)
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o =>
            {
                o.Endpoints.Add(new ModelEndpointOptions { Id = "a", Cluster = "c1", MaxContextLength = 4096 });
                o.Endpoints.Add(new ModelEndpointOptions { Id = "loading", Cluster = "c1", Status = "Loading" });
            },
            "c1");

        var echo = await host.PostAsync("/v1/chat/completions", body);

        Assert.Equal(status, echo.Status);
        Assert.Equal(code, echo.ErrorCode);
        Assert.Equal("application/json", echo.Response.Content.Headers.ContentType?.MediaType);
        Assert.Null(echo.Cluster);
    }

    [Fact]
    public async Task NoModel_NoDefault_ReturnsMissingModel()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("a", "c1", 4096, false));

        var echo = await host.PostAsync("/v1/chat/completions", """{"messages":[]}""");

        Assert.Equal(400, echo.Status);
        Assert.Equal("missing_model", echo.ErrorCode);
    }

    [Fact]
    public async Task ContextFallback_SetsHeaderAndInsertsUpstreamModel()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("small", "c1", 100, true), ("big", "c2", 100_000, false));
        var prompt = string.Join(' ', Enumerable.Repeat("word", 400));

        var echo = await host.PostAsync("/v1/chat/completions", $$"""{"messages":[{"role":"user","content":"{{prompt}}"}]}""");

        Assert.Equal(200, echo.Status);
        Assert.Equal("c2", echo.Cluster);
        Assert.Equal("context", echo.Header("x-gateway-fallback"));
        Assert.StartsWith("""{"model":"big","messages":""", echo.Body, StringComparison.Ordinal);
        Assert.True(int.Parse(echo.Header("x-gateway-estimated-tokens")!, System.Globalization.CultureInfo.InvariantCulture) > 100);
    }

    [Fact]
    public async Task CloneRoute_RequestedDirectly_Returns404()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("a", "c1", 4096, true), ("b", "c2", 4096, false));

        using var response = await host.Client.PostAsync("/__model-routing/clone/0", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task RuntimeUpdate_IsSeenByTheNextRequest()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("a", "c1", 4096, true));
        var source = host.Services.GetRequiredService<ModelRegistrySource>();

        var before = await host.PostAsync("/v1/chat/completions", """{"model":"a"}""");
        var result = source.Update(r => RegistryResult.Ok(r.SetStatus("a", EndpointStatus.Disabled).Registry));
        var after = await host.PostAsync("/v1/chat/completions", """{"model":"a"}""");

        Assert.True(result.Succeeded);
        Assert.Equal(200, before.Status);
        Assert.Equal(503, after.Status);
    }

    [Fact]
    public async Task UseModelRouting_WithoutAddModelRouting_ThrowsNamingIt()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddReverseProxy().LoadFromMemory([], []);
        await using var app = builder.Build();

        var error = Assert.Throws<InvalidOperationException>(() => app.MapReverseProxy(p => p.UseModelRouting()));
        Assert.Contains("AddModelRouting", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddModelRouting_BeforeLoadFromConfig_ThrowsNamingIt()
    {
        var services = new ServiceCollection();
        var error = Assert.Throws<InvalidOperationException>(() => services.AddReverseProxy().AddModelRouting(_ => { }));
        Assert.Contains("LoadFromConfig", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidConfiguration_StopsStartupWithEveryError()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddReverseProxy()
            .LoadFromMemory([], [new ClusterConfig { ClusterId = "c1" }])
            .AddModelRouting(o =>
            {
                o.Endpoints.Add(new ModelEndpointOptions { Id = "a", Cluster = "missing" });
                o.Endpoints.Add(new ModelEndpointOptions { Id = "b", Cluster = "c1", MaxContextLength = 0 });
            });
        await using var app = builder.Build();

        var error = await Assert.ThrowsAsync<ModelRoutingConfigurationException>(() => app.StartAsync());
        Assert.Equal(2, error.Errors.Count);
        Assert.Contains(error.Errors, e => e.Contains("Endpoints[0] ('a')", StringComparison.Ordinal) && e.Contains("Cluster 'missing'", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.Contains("Endpoints[1] ('b')", StringComparison.Ordinal) && e.Contains("MaxContextLength", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{"model":"blend","messages":[]}""", """{"model":"qwen","merged_adapters":{"ids":["sql","code"],"weights":[0.75,0.25],"merge_strategy":"linear"},"messages":[]}""")]
    [InlineData("""{"messages":[],"model":"qwen"}""", """{"messages":[],"model":"qwen","merged_adapters":{"ids":["sql","code"],"weights":[0.75,0.25],"merge_strategy":"linear"}}""")]
    [InlineData("""{}""", """{"model":"qwen","merged_adapters":{"ids":["sql","code"],"weights":[0.75,0.25],"merge_strategy":"linear"}}""")]
    public async Task AdapterStack_ForwardsNormalizedMergedAdapters(string sent, string forwarded)
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o => o.Endpoints.Add(new ModelEndpointOptions
            {
                Id = "blend",
                BaseModel = "qwen",
                Cluster = "c1",
                IsDefault = true,
                Aliases = ["qwen"],
                Adapters = [new AdapterOptions { Name = "sql", Weight = 3 }, new AdapterOptions { Name = "code", Weight = 1 }],
            }),
            "c1");

        var echo = await host.PostAsync("/v1/chat/completions", sent);

        Assert.Equal(200, echo.Status);
        Assert.Equal(forwarded, echo.Body);
        Assert.Equal(Encoding.UTF8.GetByteCount(forwarded), echo.ContentLength);
    }

    [Fact]
    public async Task AdapterStack_ClientMergedAdapters_IsRefused()
    {
        await using var host = await ModelRoutingTestHost.StartAsync(
            o => o.Endpoints.Add(new ModelEndpointOptions
            {
                Id = "blend",
                Cluster = "c1",
                Adapters = [new AdapterOptions { Name = "sql", Weight = 1 }],
            }),
            "c1");

        var echo = await host.PostAsync("/v1/chat/completions", """{"model":"blend","merged_adapters":{"ids":["x"],"weights":[1]}}""");

        Assert.Equal(400, echo.Status);
        Assert.Equal("invalid_request", echo.ErrorCode);
    }

    [Theory]
    [InlineData("9223372036854775807")]
    [InlineData("99999999999999999999")]
    [InlineData("1e9")]
    [InlineData("5000.5")]
    public async Task HugeOrNonIntegerMaxTokens_AreRefusedAsTooLong_NotWrappedAround(string maxTokens)
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("small", "c1", 4096, true));

        var echo = await host.PostAsync("/v1/chat/completions", $$"""{"model":"small","max_tokens":{{maxTokens}},"messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(400, echo.Status);
        Assert.Equal("context_length_exceeded", echo.ErrorCode);
    }

    [Theory]
    [InlineData("br")]
    [InlineData("gzip")]
    [InlineData("deflate")]
    public async Task CorruptCompressedBody_Returns400(string encoding)
    {
        await using var host = await ModelRoutingTestHost.StartAsync(("a", "c1", 4096, true));
        using var content = new StringContent("""{"model":"a","messages":[]} not compressed at all""", Encoding.UTF8, "application/json");
        content.Headers.ContentEncoding.Add(encoding);

        using var response = await host.Client.PostAsync("/v1/chat/completions", content);
        var echo = await ModelRoutingTestHost.Echo.ReadAsync(response);

        Assert.Equal(400, echo.Status);
        Assert.Equal("invalid_request", echo.ErrorCode);
    }
}
