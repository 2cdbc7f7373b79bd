using System.Net;
using System.Text.Json.Nodes;
using ModelRouting.Configuration;
using ModelRouting.Tests.EndToEnd.Support;
using ProxyHost;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Admin;

/// <summary>
/// Issue 6: runtime changes persist in the state file across a real restart of the host, and combine with
/// configuration as documented: the configuration's registry with the runtime overlay re-applied (also on
/// every reload); runtime wins for the same id; an item that no longer applies is left out and logged but
/// kept in the state file.
/// </summary>
public sealed class AdminPersistenceTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private TestBackend _backend = null!;

    private string StateFile => _dir.File("state.json");

    public async Task InitializeAsync() => _backend = await TestBackend.StartAsync("b");

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private JsonObject Config(bool withOther = true, int baseContext = 8192, string? extra = null)
    {
        var clusters = new Dictionary<string, string[]> { ["pool"] = [_backend.Url] };
        if (withOther)
        {
            clusters["other"] = [_backend.Url];
        }

        var endpoints = new JsonArray
        {
            TestGateway.Endpoint("base", "pool", maxContext: baseContext, isDefault: true, aliases: "gpt"),
            TestGateway.Endpoint("doomed", "pool"),
        };
        if (extra is not null)
        {
            endpoints.Add(TestGateway.Endpoint(extra, "pool"));
        }

        return TestGateway.Config(clusters, endpoints, AdminSection(StateFile));
    }

    [Fact]
    public async Task RuntimeChanges_SurviveARestartOfTheHost()
    {
        long created;
        await using (var first = await TestGateway.StartAsync(Config()))
        {
            var put = await first.AdminAsync(HttpMethod.Put, EndpointPath("org/rt:lora"), Definition("other", baseModel: "org/rt", adapter: "lora", maxContext: 1234, "rt-alias"));
            Assert.Equal(HttpStatusCode.Created, put.Status);
            created = put.Body!["created"]!.GetValue<long>();
            Assert.Equal(HttpStatusCode.OK, (await first.AdminAsync(HttpMethod.Delete, EndpointPath("doomed"))).Status);
            Assert.Equal(HttpStatusCode.OK, (await first.AdminAsync(HttpMethod.Put, "/admin/aliases/gpt", new JsonObject { ["target"] = "org/rt:lora" })).Status);
            Assert.Equal(HttpStatusCode.OK, (await first.AdminAsync(HttpMethod.Put, "/admin/status/base", new JsonObject { ["status"] = "Disabled" })).Status);
            Assert.Equal(HttpStatusCode.OK, (await first.AdminAsync(HttpMethod.Put, "/admin/default", new JsonObject { ["id"] = "org/rt:lora" })).Status);
        }

        Assert.True(File.Exists(StateFile));
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp"));

        await using var second = await TestGateway.StartAsync(Config());
        var rt = (await second.AdminAsync(HttpMethod.Get, EndpointPath("org/rt:lora"))).Body!;
        Assert.Equal("runtime", rt["source"]!.GetValue<string>());
        Assert.Equal(1234, rt["max_context_length"]!.GetValue<int>());
        Assert.Equal(created, rt["created"]!.GetValue<long>());
        Assert.Equal(["gpt", "rt-alias"], rt["aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.True(rt["is_default"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.NotFound, await second.ChatStatusAsync("doomed"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await second.ChatStatusAsync("base"));
        using var response = await second.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("gpt"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("org/rt:lora", response.Headers.GetValues("x-gateway-endpoint").Single());
        Assert.Equal("lora", _backend.Requests.Last().Model);
    }

    [Fact]
    public async Task ConfigReload_ReappliesOverlay_RuntimeWinsForTheSameId()
    {
        await using var gateway = await TestGateway.StartAsync(Config());
        Assert.Equal(HttpStatusCode.OK, (await gateway.AdminAsync(HttpMethod.Put, EndpointPath("base"), Definition("pool", maxContext: 1111))).Status);
        Assert.Equal(HttpStatusCode.Created, (await gateway.AdminAsync(HttpMethod.Put, EndpointPath("rt"), Definition("pool"))).Status);

        // The configuration changes base's context and adds an endpoint.
        await File.WriteAllTextAsync(gateway.ConfigFile, Config(baseContext: 99, extra: "added").ToJsonString());
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("added"), s => s == HttpStatusCode.OK, "the reloaded configuration");

        var b = (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("base"))).Body!;
        Assert.Equal(1111, b["max_context_length"]!.GetValue<int>());
        Assert.Equal("runtime", b["source"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("rt"));
        Assert.Equal("configuration", (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("added"))).Body!["source"]!.GetValue<string>());
    }

    [Fact]
    public async Task OverlayItemInvalidAfterReload_IsLeftOutAndLogged_ButKeptAndRestored()
    {
        await using var gateway = await TestGateway.StartAsync(Config());
        var logs = gateway.CaptureLogs();
        Assert.Equal(HttpStatusCode.Created, (await gateway.AdminAsync(HttpMethod.Put, EndpointPath("on-other"), Definition("other"))).Status);
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("on-other"));

        // The cluster it needs disappears from configuration.
        var configFile = gateway.ConfigFile; // the user's --config file; appsettings.json is never written
        await File.WriteAllTextAsync(configFile, Config(withOther: false, extra: "marker1").ToJsonString());
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("marker1"), s => s == HttpStatusCode.OK, "the reload without cluster 'other'");
        Assert.Equal(HttpStatusCode.NotFound, await gateway.ChatStatusAsync("on-other"));
        Assert.Contains(logs.Entries, e => e.EventName == "OverlayItemSkipped" && e.Message.Contains("on-other", StringComparison.Ordinal) && e.Message.Contains("Cluster", StringComparison.Ordinal));
        Assert.Contains("on-other", await File.ReadAllTextAsync(StateFile));

        // The cluster comes back: so does the endpoint.
        await File.WriteAllTextAsync(configFile, Config(withOther: true, extra: "marker2").ToJsonString());
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("on-other"), s => s == HttpStatusCode.OK, "the endpoint's return");
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("""{"Version":99}""")]
    [InlineData("""{"Endpoints":[{"Definition":{}}]}""")]
    public async Task CorruptStateFile_StopsStartUp_WithAClearMessage(string content)
    {
        await File.WriteAllTextAsync(StateFile, content);
        var configFile = _dir.File("gateway.json");
        await File.WriteAllTextAsync(configFile, Config().ToJsonString());

        // The state is loaded while the host is built or started (the proxy pipeline resolves the registry).
        var e = await Assert.ThrowsAsync<ModelRoutingConfigurationException>(async () =>
        {
            await using var app = await GatewayApp.BuildAsync(
                ["--urls", "http://127.0.0.1:0", "--config", configFile, "--ModelRouting:Admin:Urls="], AppContext.BaseDirectory);
            await app.StartAsync();
            await app.StopAsync();
        });
        Assert.Contains(StateFile, e.Message);
        Assert.Contains("StateFile", e.Message);
        Assert.True(GatewayApp.IsStartupError(e));

        Assert.Equal(content, await File.ReadAllTextAsync(StateFile));
    }

    [Fact]
    public async Task StateFile_IsReplacedAtomically_NoTempFilesLeft()
    {
        await using var gateway = await TestGateway.StartAsync(Config());
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await gateway.AdminAsync(HttpMethod.Put, EndpointPath($"e{i}"), Definition("pool"))).Status);
            var state = JsonNode.Parse(await File.ReadAllTextAsync(StateFile))!;
            Assert.Equal(i + 1, state["Endpoints"]!.AsArray().Count);
        }

        Assert.Equal([StateFile], Directory.GetFiles(_dir.Path));
    }
}
