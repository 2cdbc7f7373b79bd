using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Admin;

/// <summary>
/// A default set (or cleared) at runtime is scoped to the configuration default it replaced: visible in
/// <c>GET /admin/endpoints</c> (<c>default_source</c>), warned about at start-up and reload while it hides
/// configuration's default, and lapsing when configuration's default changes.
/// </summary>
public sealed class AdminDefaultOverrideTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private TestBackend _backend = null!;

    private string StateFile => _dir.File("state.json");

    public async Task InitializeAsync() => _backend = await TestBackend.StartAsync("b");

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    public void Dispose() => _dir.Dispose();

    private JsonObject Config(string configuredDefault, string? extra = null)
    {
        var endpoints = new JsonArray
        {
            TestGateway.Endpoint("base", "pool", isDefault: configuredDefault == "base"),
            TestGateway.Endpoint("other", "pool", isDefault: configuredDefault == "other"),
            TestGateway.Endpoint("third", "pool", isDefault: configuredDefault == "third"),
        };
        if (extra is not null)
        {
            endpoints.Add(TestGateway.Endpoint(extra, "pool"));
        }

        var config = TestGateway.Config(new Dictionary<string, string[]> { ["pool"] = [_backend.Url] }, endpoints, AdminSection(StateFile));
        config["Logging"] = new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Warning", ["ModelRouting"] = "Information" } };
        return config;
    }

    private static async Task<JsonNode> ListAsync(TestGateway gateway) => (await gateway.AdminAsync(HttpMethod.Get, "/admin/endpoints")).Body!;

    private static async Task ReloadAsync(TestGateway gateway, JsonObject config, string marker)
    {
        await File.WriteAllTextAsync(gateway.ConfigFile, config.ToJsonString());
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync(marker), s => s == HttpStatusCode.OK, "the reloaded configuration");
    }

    [Fact]
    public async Task List_NoRuntimeChange_DefaultSourceIsConfiguration()
    {
        await using var gateway = await TestGateway.StartAsync(Config("base"));

        var list = await ListAsync(gateway);

        Assert.Equal("base", list["default"]!.GetValue<string>());
        Assert.Equal("configuration", list["default_source"]!.GetValue<string>());
        Assert.Equal("base", list["configured_default"]!.GetValue<string>());
    }

    [Fact]
    public async Task DeleteDefault_IsVisible_AndLapsesWhenConfigurationDefaultChanges()
    {
        await using var gateway = await TestGateway.StartAsync(Config("base"));
        var logs = gateway.CaptureLogs();

        Assert.Equal(HttpStatusCode.OK, (await gateway.AdminAsync(HttpMethod.Delete, EndpointPath("base"))).Status);
        var list = await ListAsync(gateway);
        Assert.Null(list["default"]);
        Assert.Equal("runtime", list["default_source"]!.GetValue<string>());
        Assert.Equal("base", list["configured_default"]!.GetValue<string>());

        // Configuration names another default: the runtime "no default" lapses, logged.
        await ReloadAsync(gateway, Config("other", extra: "marker1"), "marker1");

        list = await ListAsync(gateway);
        Assert.Equal("other", list["default"]!.GetValue<string>());
        Assert.Equal("configuration", list["default_source"]!.GetValue<string>());
        using var noModel = await gateway.PostRawAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("other", noModel.Headers.GetValues("x-gateway-endpoint").Single());
        Assert.Contains(logs.Entries, e => e.EventName == "AdminDefaultOverrideLapsed" && e.Level == LogLevel.Information && e.Message.Contains("'other'", StringComparison.Ordinal));
        Assert.DoesNotContain("\"Default\"", await File.ReadAllTextAsync(StateFile));

        // It does not come back when configuration returns to the default it replaced; the unregistration stays.
        await ReloadAsync(gateway, Config("third", extra: "marker2"), "marker2");
        Assert.Equal("third", (await ListAsync(gateway))["default"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, await gateway.ChatStatusAsync("base"));
    }

    [Fact]
    public async Task RuntimeDefault_HidingConfiguration_WarnsOnReload_AndStaysWhileConfigurationDefaultIsUnchanged()
    {
        await using var gateway = await TestGateway.StartAsync(Config("base"));
        var logs = gateway.CaptureLogs();
        Assert.Equal(HttpStatusCode.OK, (await gateway.AdminAsync(HttpMethod.Put, "/admin/default", new JsonObject { ["id"] = "other" })).Status);

        await ReloadAsync(gateway, Config("base", extra: "marker"), "marker");

        var list = await ListAsync(gateway);
        Assert.Equal("other", list["default"]!.GetValue<string>());
        Assert.Equal("runtime", list["default_source"]!.GetValue<string>());
        Assert.Contains(logs.Entries, e => e.EventName == "AdminDefaultOverridden" && e.Level == LogLevel.Warning
            && e.Message.Contains("'base'", StringComparison.Ordinal) && e.Message.Contains("'other'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RuntimeDefault_LapsesAcrossARestart_WhenConfigurationDefaultChangedMeanwhile()
    {
        await using (var first = await TestGateway.StartAsync(Config("base")))
        {
            Assert.Equal(HttpStatusCode.OK, (await first.AdminAsync(HttpMethod.Put, "/admin/default", new JsonObject { ["id"] = "third" })).Status);
        }

        await using (var same = await TestGateway.StartAsync(Config("base")))
        {
            Assert.Equal("third", (await ListAsync(same))["default"]!.GetValue<string>());
        }

        await using var changed = await TestGateway.StartAsync(Config("other"));
        var list = await ListAsync(changed);
        Assert.Equal("other", list["default"]!.GetValue<string>());
        Assert.Equal("configuration", list["default_source"]!.GetValue<string>());
    }

    [Fact]
    public async Task OldStateFile_WithoutReplaces_Loads_AndIsScopedToTheCurrentConfigurationDefault()
    {
        await File.WriteAllTextAsync(StateFile, """{ "Version": 1, "Default": { "Id": null } }""");

        await using (var gateway = await TestGateway.StartAsync(Config("base")))
        {
            var list = await ListAsync(gateway);
            Assert.Null(list["default"]);
            Assert.Equal("runtime", list["default_source"]!.GetValue<string>());
        }

        var state = JsonNode.Parse(await File.ReadAllTextAsync(StateFile))!;
        Assert.Equal("base", state["Default"]!["Replaces"]!["Id"]!.GetValue<string>());

        await using var changed = await TestGateway.StartAsync(Config("other"));
        Assert.Equal("other", (await ListAsync(changed))["default"]!.GetValue<string>());
    }
}
